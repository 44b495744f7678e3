#include "bootstrap_list.h"

#include <charconv>

namespace rill::client::internal {

namespace {

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// The port of an entry: 1..65535, digits only; -1 otherwise.
int32_t ParsePort(std::string_view text) {
  int32_t port = -1;
  if (text.empty() || text.size() > 5) return -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) return -1;
  return port;
}

}  // namespace

Result<std::vector<std::string>> ParseBootstrapList(std::string_view text) {
  std::vector<std::string> out;
  if (Trim(text).empty()) {
    return Status::InvalidArgument(
        "the bootstrap list is empty (give host:port, e.g. localhost:9092; several as "
        "host:port,host:port)");
  }
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string entry(Trim(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    const auto colon = entry.rfind(':');
    const bool bracketed = !entry.empty() && entry.front() == '[';
    const bool has_port = colon != std::string::npos && (!bracketed || entry[colon - 1] == ']');
    if (entry.empty() || !has_port || colon == 0 || (bracketed && colon <= 2)) {
      return Status::InvalidArgument(
          "bootstrap address '" + entry + "' in '" + std::string(text) +
          "' is not host:port (give the port too, e.g. localhost:9092; several as "
          "host:port,host:port)");
    }
    if (!bracketed && entry.find(':') != colon) {
      return Status::InvalidArgument("bootstrap address '" + entry +
                                     "': put an IPv6 host in brackets, e.g. [::1]:9092");
    }
    if (ParsePort(std::string_view(entry).substr(colon + 1)) < 0) {
      return Status::InvalidArgument("bootstrap address '" + entry + "' has a bad port '" +
                                     entry.substr(colon + 1) + "' (1..65535)");
    }
    out.push_back(entry);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace rill::client::internal
