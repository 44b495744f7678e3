#include "server/data_dir_identity.h"

#include <charconv>

#include "rill/storage/file_system.h"

namespace rill::broker {

namespace {

constexpr char kFileName[] = "meta.properties";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

Result<int32_t> ParseDataDirIdentity(std::string_view text) {
  std::string_view version, node;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Status::Corruption("line without '=': '" + std::string(line) + "'");
    }
    std::string_view key = Trim(line.substr(0, eq)), value = Trim(line.substr(eq + 1));
    if (key == "version") version = value;
    if (key == "node.id") node = value;
  }
  if (version != "1") {
    return Status::Corruption("version is '" + std::string(version) + "', expected 1");
  }
  int32_t id = -1;
  auto [p, ec] = std::from_chars(node.data(), node.data() + node.size(), id);
  if (node.empty() || ec != std::errc() || p != node.data() + node.size() || id < 0) {
    return Status::Corruption("node.id is '" + std::string(node) + "', not a node id");
  }
  return id;
}

Status ClaimDataDir(const std::string& data_dir, int32_t node_id) {
  storage::FileSystem* fs = storage::DefaultFileSystem();
  const std::string path = storage::JoinPath(data_dir, kFileName);
  Result<std::string> text = storage::ReadWholeFile(fs, path);
  if (text.ok()) {
    Result<int32_t> owner = ParseDataDirIdentity(*text);
    if (!owner.ok()) {
      return Status::Corruption(path + ": " + owner.status().message() +
                                " (fix or remove the file if this data dir is this node's)");
    }
    if (*owner != node_id) {
      return Status::InvalidArgument(
          "data dir " + data_dir + " belongs to node " + std::to_string(*owner) + " (" + path +
          "), and this broker is node " + std::to_string(node_id) + ": start it with --node.id " +
          std::to_string(*owner) + " or give it its own --data.dir");
    }
    return Status::OK();
  }
  if (!text.status().IsNotFound()) return text.status();
  const std::string contents =
      "# Rill broker data dir: written at its first start. Do not edit.\nversion=1\nnode.id=" +
      std::to_string(node_id) + "\n";
  return storage::WriteFileAtomically(fs, path, contents);  // syncs the directory too
}

}  // namespace rill::broker
