// Recovery of a Log (docs/STORAGE.md, Recovery): Log::Recover, run by Open, and the two small
// files it trusts: the recovery checkpoint a clean Close writes (LoadCheckpoint, WriteCheckpoint)
// and the recovery point the flusher raises after syncing rolled segments (LoadRecoveryPoint,
// RemoveRecoveryPoint, AdvanceRecoveryPoint), both sealed with a CRC32C.
// Locks: Recover and LoadCheckpoint run inside Open, before the flusher exists; Recover takes
// segments_mu_ only to publish and count the segments. WriteCheckpoint runs in Open and in Close
// (under write_mu_). AdvanceRecoveryPoint runs on the flusher without write_mu_: it holds
// recovery_point_mu_ for the check and the write, and takes durable_mu_ inside it to compare
// truncation counts. RemoveRecoveryPoint expects recovery_point_mu_ held (or Open).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "rill/proto/crc32c.h"
#include "rill/storage/file_remover.h"
#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

namespace {
constexpr std::string_view kCheckpointFile = "recovery-checkpoint";
constexpr std::string_view kCheckpointMagic = "rill-recovery-checkpoint 1";
constexpr std::string_view kRecoveryPointFile = "recovery-point";
constexpr std::string_view kRecoveryPointMagic = "rill-recovery-point 1";

bool ParseOffsetName(const std::string& name, std::string_view ext, int64_t* base) {
  if (name.size() != 20 + ext.size() || name.substr(20) != ext) return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + 20, *base);
  return ec == std::errc() && p == name.data() + 20 && *base >= 0;
}
bool ParseSegmentName(const std::string& name, int64_t* base) {
  return ParseOffsetName(name, ".log", base);
}
}  // namespace

// What a clean Close leaves behind: enough to trust every segment without scanning it.
struct Checkpoint {
  int64_t log_start_offset = -1;
  int64_t log_end_offset = -1;
  int64_t active_base = -1;
  int64_t active_size = -1;
};

namespace {

// The small text files of a log (recovery-checkpoint, recovery-point): a magic first line,
// `key value` lines, and a last line "crc <CRC32C of everything before it>".
std::string Sealed(std::string body) {
  body += "crc " + std::to_string(crc32c::Value(body)) + "\n";
  return body;
}

// The `key value` pairs of a sealed file, after its crc and magic line check out.
Result<std::map<std::string, int64_t>> Unseal(std::string_view text, std::string_view magic) {
  const auto at = text.rfind("crc ");
  if (at == std::string_view::npos) return Status::Corruption("no crc line");
  uint32_t crc = 0;
  if (std::sscanf(std::string(text.substr(at)).c_str(), "crc %" SCNu32, &crc) != 1 ||
      crc != crc32c::Value(text.substr(0, at))) {
    return Status::Corruption("crc mismatch");
  }
  std::istringstream in{std::string(text.substr(0, at))};
  std::string line;
  std::getline(in, line);
  if (line != magic) return Status::Corruption("bad magic line '" + line + "'");
  std::map<std::string, int64_t> values;
  std::string key;
  int64_t v;
  while (in >> key >> v) values[key] = v;
  return values;
}

}  // namespace

Status Log::RemoveDurably(std::string_view name) {
  Status st = fs_->Remove(JoinPath(dir_, name));
  if (st.IsNotFound()) return Status::OK();
  RILL_RETURN_IF_ERROR(st);
  return fs_->SyncDir(dir_);
}

Status Log::LoadCheckpoint(Checkpoint* cp) {
  auto text = ReadWholeFile(fs_, JoinPath(dir_, kCheckpointFile));
  if (!text.ok()) return text.status();
  auto values = Unseal(*text, kCheckpointMagic);
  if (!values.ok()) return Status::Corruption("checkpoint: " + values.status().message());
  auto get = [&](const char* key) {
    auto it = values->find(key);
    return it == values->end() ? int64_t{-1} : it->second;
  };
  cp->log_start_offset = get("log_start_offset");
  cp->log_end_offset = get("log_end_offset");
  cp->active_base = get("active_base");
  cp->active_size = get("active_size");
  if (cp->log_start_offset < 0 || cp->log_end_offset < cp->log_start_offset ||
      cp->active_base < 0 || cp->active_size < 0) {
    return Status::Corruption("incomplete checkpoint");
  }
  return Status::OK();
}

Status Log::WriteCheckpoint(bool clean) {
  if (!clean) return RemoveDurably(kCheckpointFile);
  auto act = active();
  return WriteFileAtomically(
      fs_, JoinPath(dir_, kCheckpointFile),
      Sealed(std::string(kCheckpointMagic) + "\n" + "log_start_offset " +
             std::to_string(log_start_offset().value()) + "\n" + "log_end_offset " +
             std::to_string(log_end_offset().value()) + "\n" + "active_base " +
             std::to_string(act->base_offset().value()) + "\n" + "active_size " +
             std::to_string(act->size()) + "\n"));
}

int64_t Log::LoadRecoveryPoint() {
  auto text = ReadWholeFile(fs_, JoinPath(dir_, kRecoveryPointFile));
  if (!text.ok()) {
    if (!text.status().IsNotFound()) {
      spdlog::warn("partition {}: unreadable recovery point ({}); scanning every segment", name_,
                   text.status().ToString());
    }
    return -1;
  }
  auto values = Unseal(*text, kRecoveryPointMagic);
  if (values.ok()) {
    auto it = values->find("offset");
    if (it != values->end() && it->second >= 0) return it->second;
  }
  spdlog::warn("partition {}: damaged recovery point ({}); scanning every segment", name_,
               values.ok() ? "no offset" : values.status().message());
  return -1;
}

Status Log::RemoveRecoveryPoint() {
  RILL_RETURN_IF_ERROR(RemoveDurably(kRecoveryPointFile));
  recovery_point_ = -1;
  return Status::OK();
}

void Log::AdvanceRecoveryPoint(Offset point, uint64_t truncations_seen) {
  // Not under write_mu_: appends go on while the file is written (the flusher's next round
  // waits for it, once per roll). A truncation waits for recovery_point_mu_, so none can slip
  // between the check and the write.
  std::lock_guard lock(recovery_point_mu_);
  {
    std::lock_guard dl(durable_mu_);
    if (stopping_ || truncations_seen != truncations_) return;
  }
  if (point.value() <= recovery_point_) return;
  // Not a failure of the log: without it the next unclean open scans more.
  Status st = WriteFileAtomically(fs_, JoinPath(dir_, kRecoveryPointFile),
                                  Sealed(std::string(kRecoveryPointMagic) + "\noffset " +
                                         std::to_string(point.value()) + "\n"));
  if (!st.ok()) {
    spdlog::warn("partition {}: cannot write the recovery point: {}", name_, st.ToString());
    return;
  }
  recovery_point_ = point.value();
}

Status Log::Recover() {
  RILL_ASSIGN_OR_RETURN(auto names, fs_->ListDir(dir_));
  std::vector<int64_t> bases;
  for (const auto& n : names) {
    int64_t base;
    if (ParseSegmentName(n, &base)) bases.push_back(base);
  }
  std::sort(bases.begin(), bases.end());

  Checkpoint cp;
  Status cp_st = LoadCheckpoint(&cp);
  bool clean = cp_st.ok() && !bases.empty() && bases.back() == cp.active_base;
  if (!cp_st.ok() && !cp_st.IsNotFound()) {
    spdlog::warn("partition {}: unreadable recovery checkpoint ({}); scanning every segment", name_,
                 cp_st.message());
  }

  std::vector<std::shared_ptr<Segment>> segs;
  for (int64_t b : bases) {
    RILL_ASSIGN_OR_RETURN(
        auto s, Segment::OpenExisting(fs_, dir_, Offset(b),
                                      index_interval_bytes_.load(std::memory_order_relaxed)));
    segs.push_back(std::move(s));
  }
  if (clean) {
    if (segs.back()->prepared_end() != static_cast<uint64_t>(cp.active_size)) clean = false;
  }
  if (clean) {
    for (size_t i = 0; i < segs.size() && clean; ++i) {
      Offset next = i + 1 < segs.size() ? segs[i + 1]->base_offset() : Offset(cp.log_end_offset);
      if (!segs[i]->LoadTrusted(name_, next).ok()) clean = false;
    }
    if (!clean) {
      spdlog::warn("partition {}: segments disagree with the recovery checkpoint; scanning all",
                   name_);
    }
  }
  recovery_point_ = LoadRecoveryPoint();
  if (!clean) {
    // Segments that end at or below the recovery point were complete and durable (data, trimmed
    // size, indexes) when it was written: they load like a clean open's, without a scan, so a
    // crash costs a scan of the newest segments only and bit rot in an old segment never cuts
    // the log there (a consumer's CRC check finds it). An inconsistent one ends the trusted part.
    size_t trusted = 0;
    while (trusted + 1 < segs.size() &&
           segs[trusted + 1]->base_offset().value() <= recovery_point_ &&
           segs[trusted]->LoadTrusted(name_, segs[trusted + 1]->base_offset()).ok()) {
      ++trusted;
    }
    if (trusted > 0) {
      spdlog::info("partition {}: {} segment(s) below the recovery point {} loaded without a scan",
                   name_, trusted, recovery_point_);
    }
    // Scan the rest; the log ends at the first torn or corrupt batch, or at the first gap
    // between one segment's end and the next one's base offset.
    size_t keep = segs.size();
    for (size_t i = trusted; i < segs.size(); ++i) {
      if (i > 0 && segs[i]->base_offset() != segs[i - 1]->next_offset()) {
        spdlog::warn(
            "partition {}: segment {} starts at offset {} but the log ends at {}; "
            "dropping it and every later segment",
            name_, segs[i]->log_path(), segs[i]->base_offset().value(),
            segs[i - 1]->next_offset().value());
        keep = i;
        break;
      }
      // A scan that stops early (corruption, torn write) ends before the next segment's base,
      // and the check above then drops every later segment. When the scan still reached exactly
      // the next segment's base, every offset of this segment is present and what it stopped at
      // lies past the data (recycled or zero-filled space whose trim was not yet durable).
      Status st = segs[i]->Recover(name_);
      if (!st.ok() && i + 1 < segs.size() && segs[i + 1]->base_offset() == segs[i]->next_offset()) {
        spdlog::info(
            "partition {}: segment {} is complete; the bytes after its data were not "
            "batches of the log",
            name_, segs[i]->log_path());
      }
    }
    for (size_t i = keep; i < segs.size(); ++i) RILL_RETURN_IF_ERROR(RemoveSegmentFiles(segs[i]));
    segs.resize(keep);
    // Empty segments other than the last carry nothing; drop them.
    for (size_t i = 0; i + 1 < segs.size();) {
      if (segs[i]->empty()) {
        RILL_RETURN_IF_ERROR(RemoveSegmentFiles(segs[i]));
        segs.erase(segs.begin() + static_cast<ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    for (size_t i = 0; i + 1 < segs.size(); ++i) RILL_RETURN_IF_ERROR(segs[i]->Trim());
  }
  if (recovery_point_ > (segs.empty() ? -1 : segs.back()->next_offset().value())) {
    // Recovery cut the log below the point (a segment under it was damaged): the offsets above
    // the cut will be written again, so the point no longer describes the files.
    RILL_RETURN_IF_ERROR(RemoveRecoveryPoint());
  }
  // Index files without a .log are leftovers of an interrupted deletion.
  for (const auto& n : names) {
    bool stray = n.ends_with(".tmp");
    int64_t b;
    if ((n.size() == 26 && n.ends_with(".index")) ||
        (n.size() == 30 && n.ends_with(".timeindex"))) {
      stray = !ParseSegmentName(n.substr(0, 20) + ".log", &b) ||
              !std::any_of(segs.begin(), segs.end(),
                           [&](const auto& s) { return s->base_offset().value() == b; });
    }
    if (stray) (void)fs_->Remove(JoinPath(dir_, n));
    // A file the remover had not finished with when the process stopped.
    if (n.ends_with(FileRemover::kDeletedSuffix)) {
      if (config_.remover != nullptr) {
        config_.remover->Enqueue(JoinPath(dir_, n));
      } else {
        (void)fs_->Remove(JoinPath(dir_, n));
      }
    }
  }

  int64_t start = clean ? cp.log_start_offset : (segs.empty() ? 0 : segs[0]->base_offset().value());
  if (!segs.empty()) start = std::max(start, segs[0]->base_offset().value());
  if (segs.empty()) {
    if (cp_st.ok()) start = cp.log_start_offset;
    RILL_ASSIGN_OR_RETURN(auto s,
                          Segment::Create(fs_, dir_, Offset(start),
                                          index_interval_bytes_.load(std::memory_order_relaxed)));
    segs.push_back(std::move(s));
  }
  // Pool files: kept only while their end offset is <= the log start offset (then no offset
  // in them can ever be expected again); anything else, or beyond the bound, is deleted.
  {
    std::vector<std::pair<int64_t, std::string>> pool;
    for (const auto& n : names) {
      int64_t e;
      if (!ParseOffsetName(n, kPoolExt, &e)) continue;
      if (config_.recycle_segments && e <= start) {
        pool.emplace_back(e, JoinPath(dir_, n));
      } else {
        RILL_RETURN_IF_ERROR(fs_->Remove(JoinPath(dir_, n)));
      }
    }
    std::sort(pool.begin(), pool.end());
    while (pool.size() > static_cast<size_t>(std::max(config_.recycle_pool_files, 0))) {
      RILL_RETURN_IF_ERROR(fs_->Remove(pool.front().second));
      pool.erase(pool.begin());
    }
    for (auto& [e, path] : pool) {
      // A standby left by the last run counts against the store's budget like a new one
      // (docs/STORAGE.md, Standby segments); with too little budget left it goes.
      if (path == standby_path_ && config_.standby_budget != nullptr) {
        // It holds no data: one that cannot be read is removed, not a reason to fail the open.
        auto f = fs_->Open(path, /*create=*/false, /*truncate=*/false);
        Result<uint64_t> size_or = f.ok() ? (*f)->Size() : Result<uint64_t>(f.status());
        if (!size_or.ok()) {
          spdlog::warn("partition {}: standby segment {} is unreadable ({}); removing it", name_,
                       path, size_or.status().ToString());
          RILL_RETURN_IF_ERROR(fs_->Remove(path));
          continue;
        }
        const uint64_t size = *size_or;
        const auto bytes = static_cast<int64_t>(size);
        const int64_t granted =
            bytes > 0 ? config_.standby_budget->TakeUpTo(bytes, bytes) : int64_t{0};
        if (granted == 0) {
          RILL_RETURN_IF_ERROR(fs_->Remove(path));
          continue;
        }
        standby_reserved_.store(granted);
        standby_last_size_ = size;
      }
      pool_.push_back({std::move(path), Offset(e), nullptr});
    }
  }
  int64_t end = segs.back()->next_offset().value();
  {
    std::unique_lock lock(segments_mu_);
    segments_ = std::move(segs);
  }
  log_start_.store(start);
  log_end_.store(end);
  durable_.store(end);
  flush_requested_ = end;
  // From here on the files change: the checkpoint no longer describes them.
  RILL_RETURN_IF_ERROR(WriteCheckpoint(/*clean=*/false));
  RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  if (!clean && bases.size() > 0) {
    spdlog::info("partition {}: recovered {} segment(s), offsets [{}, {})", name_, segment_count(),
                 start, end);
  }
  return Status::OK();
}

}  // namespace rill::storage
