#include "disk_faults.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace rill::fault {
namespace {

namespace fs = std::filesystem;

// RecordBatch v2: baseOffset (int64), batchLength (int32, big-endian; bytes after this field),
// then the 49 bytes of the rest of the header.
constexpr int64_t kLengthFieldEnd = 12;
constexpr int64_t kHeaderBytes = 61;

}  // namespace

bool CorruptActiveSegmentTail(const std::string& partition_dir, std::mt19937_64& rng,
                              std::string* what) {
  std::vector<fs::path> segments;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(partition_dir, ec)) {
    if (e.path().extension() == ".log") segments.push_back(e.path());
  }
  if (segments.empty()) return false;
  std::sort(segments.begin(), segments.end());
  const fs::path active = segments.back();
  int fd = ::open(active.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const int64_t size = static_cast<int64_t>(fs::file_size(active, ec));
  // Walk the batches to the last one.
  int64_t pos = 0, last_start = -1, last_end = -1;
  while (pos + kHeaderBytes <= size) {
    unsigned char len[4];
    if (::pread(fd, len, 4, pos + 8) != 4) break;
    const int64_t length = (int64_t{len[0]} << 24) | (len[1] << 16) | (len[2] << 8) | len[3];
    if (length < kHeaderBytes - kLengthFieldEnd || pos + kLengthFieldEnd + length > size) break;
    last_start = pos;
    last_end = pos + kLengthFieldEnd + length;
    pos = last_end;
  }
  if (last_start < 0) {
    ::close(fd);
    return false;
  }
  const std::string where = active.filename().string() + " bytes [" + std::to_string(last_start) +
                            ", " + std::to_string(last_end) + ")";
  if (rng() % 2 == 0) {
    // A flipped byte after the length field (in the CRC'd part, or the CRC itself).
    const int64_t at = last_start + 17 + static_cast<int64_t>(rng() % (last_end - last_start - 17));
    unsigned char b = 0;
    (void)!::pread(fd, &b, 1, at);
    b ^= 0x5a;
    (void)!::pwrite(fd, &b, 1, at);
    *what = "flipped byte " + std::to_string(at) + " of the last batch, " + where;
  } else {
    const int64_t from = last_start + (last_end - last_start) / 2;
    std::vector<char> zeros(last_end - from, 0);
    (void)!::pwrite(fd, zeros.data(), zeros.size(), from);
    *what = "zeroed from byte " + std::to_string(from) + " of the last batch, " + where;
  }
  ::fsync(fd);
  ::close(fd);
  return true;
}

std::vector<std::string> RemovePartitionDirs(const std::string& data_dir,
                                             const std::vector<std::string>& topics) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    const auto dash = name.rfind('-');
    if (dash == std::string::npos) continue;
    const std::string topic = name.substr(0, dash);
    const std::string number = name.substr(dash + 1);
    if (number.empty() || !std::all_of(number.begin(), number.end(), ::isdigit)) continue;
    if (std::find(topics.begin(), topics.end(), topic) == topics.end()) continue;
    fs::remove_all(e.path(), ec);
    removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace rill::fault
