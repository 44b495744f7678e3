#include "tool_util.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>

namespace rill::tools {

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kNotFound:
      return 3;
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
      return 4;
    default:
      return 1;
  }
}

int Fail(std::string_view tool, const Status& s) {
  std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(tool.size()), tool.data(),
               s.message().empty() ? s.ToString().c_str() : s.message().c_str());
  return ExitCodeFor(s);
}

std::string JsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // Pass well-formed UTF-8 sequences through; escape stray bytes.
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len - 1;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    }
  }
  out += '"';
  return out;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view kv) {
  const auto eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument("expected key=value, got '" + std::string(kv) + "'");
  }
  return std::make_pair(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
}

Result<TopicPartitionsArg> ParseTopicPartitions(std::string_view arg) {
  TopicPartitionsArg out;
  const auto colon = arg.rfind(':');
  out.topic = std::string(arg.substr(0, colon));
  if (out.topic.empty()) {
    return Status::InvalidArgument("expected TOPIC or TOPIC:P,P,..., got '" + std::string(arg) +
                                   "'");
  }
  if (colon == std::string_view::npos) return out;
  std::string_view rest = arg.substr(colon + 1);
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    int32_t p = -1;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), p);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || p < 0) {
      return Status::InvalidArgument("bad partition '" + std::string(item) + "' in '" +
                                     std::string(arg) +
                                     "' (expected TOPIC:P,P,... with partitions >= 0)");
    }
    if (std::find(out.partitions.begin(), out.partitions.end(), p) == out.partitions.end()) {
      out.partitions.push_back(p);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::string FormatTopicPartitions(const std::vector<client::TopicPartition>& tps) {
  if (tps.empty()) return "-";
  std::vector<std::string> order;
  std::map<std::string, std::vector<int32_t>> by_topic;
  for (const auto& tp : tps) {
    auto [it, inserted] = by_topic.try_emplace(tp.topic);
    if (inserted) order.push_back(tp.topic);
    it->second.push_back(tp.partition);
  }
  std::string out;
  for (const auto& topic : order) {
    auto& parts = by_topic[topic];
    std::sort(parts.begin(), parts.end());
    if (!out.empty()) out += ' ';
    out += topic + ':';
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + std::to_string(parts[i]);
  }
  return out;
}

std::string OffsetCell(int64_t offset) { return offset < 0 ? "-" : std::to_string(offset); }

}  // namespace rill::tools
