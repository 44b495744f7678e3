// The leader-epoch history's file format and its pure edits (rill/storage/leader_epoch.h).

#include "rill/storage/leader_epoch.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <string>

#include "rill/proto/crc32c.h"

namespace rill::storage {

namespace {
constexpr std::string_view kMagic = "rill-leader-epoch-checkpoint 1";
// Bound on the entries a file may claim (a corrupt count must not allocate without limit).
constexpr int64_t kMaxEntries = 1 << 20;
}  // namespace

std::string EncodeEpochCheckpoint(const std::vector<EpochEntry>& history) {
  std::string body(kMagic);
  body += "\ncount " + std::to_string(history.size()) + "\n";
  for (const auto& e : history) {
    body += std::to_string(e.epoch.value()) + " " + std::to_string(e.start_offset.value()) + "\n";
  }
  body += "crc " + std::to_string(crc32c::Value(body)) + "\n";
  return body;
}

Result<std::vector<EpochEntry>> DecodeEpochCheckpoint(std::string_view text) {
  const auto at = text.rfind("crc ");
  if (at == std::string_view::npos) return Status::Corruption("epoch checkpoint: no crc line");
  // The crc line is exactly "crc <decimal>\n" and ends the file.
  const std::string_view tail = text.substr(at + 4);
  uint32_t crc = 0;
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), crc);
  if (ec != std::errc() || std::string_view(p, tail.data() + tail.size() - p) != "\n" ||
      crc != crc32c::Value(text.substr(0, at))) {
    return Status::Corruption("epoch checkpoint: crc mismatch");
  }
  std::istringstream in{std::string(text.substr(0, at))};
  std::string line;
  std::getline(in, line);
  if (line != kMagic) return Status::Corruption("epoch checkpoint: bad magic line '" + line + "'");
  std::string key;
  int64_t count = -1;
  if (!(in >> key >> count) || key != "count" || count < 0 || count > kMaxEntries) {
    return Status::Corruption("epoch checkpoint: bad count line");
  }
  std::vector<EpochEntry> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    int64_t epoch, start;
    if (!(in >> epoch >> start)) return Status::Corruption("epoch checkpoint: missing entries");
    if (epoch < 0 || epoch > INT32_MAX || start < 0 ||
        (!out.empty() &&
         (epoch <= out.back().epoch.value() || start <= out.back().start_offset.value()))) {
      return Status::Corruption("epoch checkpoint: entry " + std::to_string(i) + " (" +
                                std::to_string(epoch) + " " + std::to_string(start) +
                                ") out of order");
    }
    out.push_back({LeaderEpoch(static_cast<int32_t>(epoch)), Offset(start)});
  }
  if (in >> key) return Status::Corruption("epoch checkpoint: trailing data");
  return out;
}

bool TruncateEpochHistory(std::vector<EpochEntry>* history, Offset end) {
  const size_t before = history->size();
  std::erase_if(*history, [&](const EpochEntry& e) { return e.start_offset >= end; });
  return history->size() != before;
}

bool TrimEpochHistoryBelow(std::vector<EpochEntry>* history, Offset start) {
  // The last entry starting at or below `start` covers it; everything before it goes.
  auto covering =
      std::upper_bound(history->begin(), history->end(), start,
                       [](Offset s, const EpochEntry& e) { return s < e.start_offset; });
  if (covering == history->begin()) return false;  // every entry starts above `start`
  --covering;
  bool changed = covering != history->begin() || covering->start_offset != start;
  covering->start_offset = start;
  history->erase(history->begin(), covering);
  return changed;
}

}  // namespace rill::storage
