#include "rill/storage/log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <sstream>
#include <thread>

#include "rill/proto/batch_header.h"
#include "rill/proto/crc32c.h"
#include "rill/proto/thread_name.h"
#include "rill/storage/file_remover.h"
#include "segment.h"

namespace rill::storage {

namespace {
constexpr std::string_view kCheckpointFile = "recovery-checkpoint";
constexpr std::string_view kCheckpointMagic = "rill-recovery-checkpoint 1";
constexpr std::string_view kRecoveryPointFile = "recovery-point";
constexpr std::string_view kRecoveryPointMagic = "rill-recovery-point 1";

constexpr std::string_view kPoolExt = ".recycle";

bool ParseOffsetName(const std::string& name, std::string_view ext, int64_t* base) {
  if (name.size() != 20 + ext.size() || name.substr(20) != ext) return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + 20, *base);
  return ec == std::errc() && p == name.data() + 20 && *base >= 0;
}
bool ParseSegmentName(const std::string& name, int64_t* base) {
  return ParseOffsetName(name, ".log", base);
}
}  // namespace

std::string_view FlushPolicyName(FlushPolicy p) {
  switch (p) {
    case FlushPolicy::kGroup:
      return "group";
    case FlushPolicy::kInterval:
      return "interval";
    case FlushPolicy::kNone:
      return "none";
  }
  return "?";
}

Result<FlushPolicy> ParseFlushPolicy(std::string_view name) {
  if (name == "group") return FlushPolicy::kGroup;
  if (name == "interval") return FlushPolicy::kInterval;
  if (name == "none") return FlushPolicy::kNone;
  return Status::InvalidArgument("unknown flush.policy '" + std::string(name) +
                                 "' (expected group, interval or none)");
}

Clock SystemClock() {
  return [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
}

// What a clean Close leaves behind: enough to trust every segment without scanning it.
struct Checkpoint {
  int64_t log_start_offset = -1;
  int64_t log_end_offset = -1;
  int64_t active_base = -1;
  int64_t active_size = -1;
};

Log::Log(FileSystem* fs, std::string dir, std::string name, LogConfig config, Clock clock)
    : fs_(fs),
      dir_(std::move(dir)),
      name_(std::move(name)),
      config_(config),
      clock_(std::move(clock)),
      standby_path_(JoinPath(dir_, SegmentFileName(Offset(0), kPoolExt))),
      segment_bytes_(config.segment_bytes),
      segment_ms_(config.segment_ms),
      retention_ms_(config.retention_ms),
      retention_bytes_(config.retention_bytes),
      flush_policy_(config.flush_policy),
      flush_interval_ms_(config.flush_interval_ms),
      index_interval_bytes_(config.index_interval_bytes),
      max_batch_bytes_(config.max_batch_bytes),
      // Presumed large until a few small groups have shown the regime.
      group_bytes_avg_(2 * config.standby_max_group_bytes) {}

Status Log::ValidateConfig(const LogConfig& config) {
  if (config.segment_bytes < 1024 || config.segment_bytes > (int64_t{1} << 32) - 1) {
    return Status::InvalidArgument("segment.bytes must be in [1 KiB, 4 GiB)");
  }
  if (config.max_batch_bytes <= 0 || config.index_interval_bytes <= 0) {
    return Status::InvalidArgument("max.message.bytes and index.interval.bytes must be > 0");
  }
  if (config.segment_ms <= 0 || config.flush_interval_ms <= 0) {
    return Status::InvalidArgument("segment.ms and flush.interval.ms must be > 0");
  }
  return Status::OK();
}

Result<std::unique_ptr<Log>> Log::Open(FileSystem* fs, std::string dir, std::string name,
                                       LogConfig config, Clock clock) {
  RILL_RETURN_IF_ERROR(ValidateConfig(config));
  std::unique_ptr<Log> log(new Log(fs, std::move(dir), std::move(name), config, std::move(clock)));
  RILL_RETURN_IF_ERROR(fs->CreateDir(log->dir_));
  RILL_RETURN_IF_ERROR(log->Recover());
  log->active_created_ms_ = log->clock_();
  // Every policy gets the flusher: ApplyConfig may switch a `none` log to `group` later.
  log->flusher_ = std::thread([l = log.get()] {
    SetCurrentThreadName("rill-flush");
    l->FlusherLoop();
  });
  return log;
}

LogConfig Log::config() const {
  LogConfig c = config_;
  c.segment_bytes = segment_bytes_.load(std::memory_order_relaxed);
  c.segment_ms = segment_ms_.load(std::memory_order_relaxed);
  c.retention_ms = retention_ms_.load(std::memory_order_relaxed);
  c.retention_bytes = retention_bytes_.load(std::memory_order_relaxed);
  c.flush_policy = flush_policy();
  c.flush_interval_ms = flush_interval_ms_.load(std::memory_order_relaxed);
  c.index_interval_bytes = index_interval_bytes_.load(std::memory_order_relaxed);
  c.max_batch_bytes = max_batch_bytes_.load(std::memory_order_relaxed);
  return c;
}

Status Log::ApplyConfig(const LogConfig& config) {
  RILL_RETURN_IF_ERROR(ValidateConfig(config));
  std::lock_guard lock(write_mu_);  // no append runs while the settings change
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  if (failed_.load(std::memory_order_acquire)) return health();
  if (config.flush_policy == FlushPolicy::kNone && flush_policy() != FlushPolicy::kNone &&
      log_end_offset() > durable_offset()) {
    // Appends made under group/interval were promised an fsync: give it to them before `none`
    // lets later appends move the durable offset past them. (The flusher may sync the same
    // files at the same time; fsync is idempotent.)
    std::vector<std::shared_ptr<Segment>> segs = unsynced_closed_;
    segs.push_back(active());
    RILL_RETURN_IF_ERROR(
        SyncAndAdvance(segs, dir_dirty_, log_end_offset().value(), truncations_, -1));
  }
  segment_bytes_.store(config.segment_bytes, std::memory_order_relaxed);
  segment_ms_.store(config.segment_ms, std::memory_order_relaxed);
  retention_ms_.store(config.retention_ms, std::memory_order_relaxed);
  retention_bytes_.store(config.retention_bytes, std::memory_order_relaxed);
  flush_interval_ms_.store(config.flush_interval_ms, std::memory_order_relaxed);
  index_interval_bytes_.store(config.index_interval_bytes, std::memory_order_relaxed);
  max_batch_bytes_.store(config.max_batch_bytes, std::memory_order_relaxed);
  {
    std::lock_guard dl(durable_mu_);
    flush_policy_.store(config.flush_policy, std::memory_order_release);
    config_changed_ = true;
  }
  flusher_cv_.notify_all();
  return Status::OK();
}

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
  Status st = WriteFileAtomically(
      fs_, JoinPath(dir_, kRecoveryPointFile),
      Sealed(std::string(kRecoveryPointMagic) + "\noffset " + std::to_string(point.value()) +
             "\n"));
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
    for (auto& [e, path] : pool) pool_.push_back({std::move(path), Offset(e), nullptr});
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

Log::~Log() {
  {
    std::lock_guard lock(durable_mu_);
    stopping_ = true;
  }
  flusher_cv_.notify_all();
  durable_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  FailWaiters(Status::Unavailable("partition " + name_ + ": log closed"), Offset(INT64_MIN));
}

std::shared_ptr<Segment> Log::active() const {
  std::shared_lock lock(segments_mu_);
  return segments_.back();
}

std::shared_ptr<Segment> Log::SegmentFor(Offset offset) const {
  std::shared_lock lock(segments_mu_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](Offset o, const auto& s) { return o < s->base_offset(); });
  if (it == segments_.begin()) return nullptr;
  return *std::prev(it);
}

uint64_t Log::size_bytes() const {
  std::shared_lock lock(segments_mu_);
  uint64_t n = 0;
  for (const auto& s : segments_) n += s->size();
  return n;
}

size_t Log::segment_count() const {
  std::shared_lock lock(segments_mu_);
  return segments_.size();
}

Status Log::health() const {
  std::lock_guard lock(durable_mu_);
  return failure_;
}

Status Log::Fail(Status cause) {
  std::vector<std::function<void(Status)>> cbs;
  Status failure;
  {
    std::lock_guard lock(durable_mu_);
    if (failure_.ok()) {
      failure_ = Status::Failed("partition " + name_ + " is failed and read-only after " +
                                cause.ToString());
      spdlog::error("{}", failure_.message());
      failed_.store(true, std::memory_order_release);
    }
    failure = failure_;
    for (auto& [o, cb] : callbacks_) cbs.push_back(std::move(cb));
    callbacks_.clear();
  }
  durable_cv_.notify_all();
  for (auto& cb : cbs) cb(failure);
  // The first caller sees the cause itself (kNoSpace, kIOError); later ones kFailed.
  return Status(cause.code(), "partition " + name_ + ": " + cause.message());
}

void Log::AdvanceDurable(Offset durable, uint64_t truncations_seen) {
  std::vector<std::function<void(Status)>> cbs;
  {
    std::lock_guard lock(durable_mu_);
    if (!failure_.ok()) return;
    // A truncation since the caller's snapshot set durable_ itself; `durable` may be stale.
    if (truncations_seen != UINT64_MAX && truncations_seen != truncations_) return;
    if (durable.value() <= durable_.load()) return;
    durable_.store(durable.value(), std::memory_order_release);
    if (!callbacks_.empty()) {
      auto end = callbacks_.lower_bound(durable.value());
      for (auto it = callbacks_.begin(); it != end; ++it) cbs.push_back(std::move(it->second));
      callbacks_.erase(callbacks_.begin(), end);
    }
    if (durable_waiters_ == 0 && cbs.empty()) return;
  }
  durable_cv_.notify_all();
  for (auto& cb : cbs) cb(Status::OK());
}

void Log::FailWaiters(const Status& st, Offset from) {
  std::vector<std::function<void(Status)>> cbs;
  {
    std::lock_guard lock(durable_mu_);
    auto begin = callbacks_.lower_bound(from.value());
    for (auto it = begin; it != callbacks_.end(); ++it) cbs.push_back(std::move(it->second));
    callbacks_.erase(begin, callbacks_.end());
  }
  durable_cv_.notify_all();
  for (auto& cb : cbs) cb(st);
}

Result<AppendResult> Log::Append(std::span<char> batches, LeaderEpoch epoch) {
  // Validate before taking the lock: nothing is written unless every batch is sound.
  // (One reused vector per thread: no allocation per append.)
  thread_local std::vector<BatchMeta> metas;
  metas.clear();
  const int64_t max_batch = max_batch_bytes_.load(std::memory_order_relaxed);
  {
    batch::BatchIterator it(std::string_view(batches.data(), batches.size()));
    size_t covered = 0;
    while (it.Next()) {
      const auto& h = it.header();
      if (h.total_size() > static_cast<size_t>(max_batch)) {
        return Status::InvalidArgument(
            "partition " + name_ + ": batch of " + std::to_string(h.total_size()) +
            " bytes exceeds max.message.bytes " + std::to_string(max_batch));
      }
      metas.push_back(
          {0, h.last_offset_delta, h.max_timestamp, static_cast<uint32_t>(h.total_size())});
      covered = it.position() + h.total_size();
    }
    if (!it.status().ok()) {
      return Status(it.status().code(), "partition " + name_ + ": " + it.status().message());
    }
    if (metas.empty() || covered != batches.size()) {
      return Status::InvalidArgument("partition " + name_ + ": append needs whole batches");
    }
  }
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  if (failed_.load(std::memory_order_acquire)) return health();
  AppendResult result;
  int64_t now = clock_();
  auto seg = active();
  int64_t span = 0;
  for (const auto& m : metas) span += m.last_offset + 1;
  // Beyond its written space the active segment grows, and each group fsync of a growing file
  // commits a journal transaction: roll early into a complete standby (written space) instead.
  const bool grows = seg->size() + batches.size() > seg->prepared_end();
  if (!seg->empty() && (seg->size() + batches.size() >
                            static_cast<uint64_t>(segment_bytes_.load(std::memory_order_relaxed)) ||
                        now - active_created_ms_ >= segment_ms_.load(std::memory_order_relaxed) ||
                        log_end_offset().value() + span - seg->base_offset().value() > INT32_MAX ||
                        (grows && StandbyInPoolLocked()))) {
    Status st = RollLocked(log_end_offset());
    if (!st.ok()) return Fail(st);
    seg = active();
  }
  int64_t next = log_end_offset().value();
  size_t pos = 0;
  for (auto& m : metas) {
    std::span<char> b = batches.subspan(pos, m.size);
    batch::SetBaseOffset(b, next);
    batch::SetPartitionLeaderEpoch(b, epoch.value());
    m.base_offset = next;
    m.last_offset = next + m.last_offset;  // held lastOffsetDelta until now
    next = m.last_offset + 1;
    pos += m.size;
  }
  result.base_offset = Offset(metas.front().base_offset);
  result.last_offset = Offset(metas.back().last_offset);
  result.log_append_time = now;
  result.position = seg->size();
  result.segment_base = seg->base_offset();
  Status st = seg->Write(std::string_view(batches.data(), batches.size()), metas);
  if (!st.ok()) return Fail(st);
  log_end_.store(next, std::memory_order_release);
  appended_since_roll_ += batches.size();
  if (flush_policy() == FlushPolicy::kNone) {
    AdvanceDurable(Offset(next));
  } else {
    {
      std::lock_guard dl(durable_mu_);
      flush_requested_ = next;
    }
    if (flush_policy() == FlushPolicy::kGroup) flusher_cv_.notify_one();
  }
  return result;
}

Status Log::RollLocked(Offset base_offset) {
  auto old = active();
  RILL_RETURN_IF_ERROR(old->Trim());
  RILL_RETURN_IF_ERROR(old->SyncIndexes());
  std::shared_ptr<Segment> seg;
  // Reuse a pool file no reader still holds (a reader of the retired segment must keep seeing
  // its old bytes): the new segment then overwrites already-written space.
  auto it = std::find_if(pool_.begin(), pool_.end(), [&](const PoolFile& f) {
    return f.end <= base_offset && (f.retired == nullptr || f.retired.use_count() == 1);
  });
  if (config_.recycle_segments && it != pool_.end()) {
    RILL_ASSIGN_OR_RETURN(
        seg,
        Segment::CreateRecycled(fs_, dir_, base_offset,
                                index_interval_bytes_.load(std::memory_order_relaxed), it->path));
    pool_.erase(it);
    recycled_count_.fetch_add(1, std::memory_order_relaxed);
    // The pool name must be gone for good before any new batch lands in the file: a crash that
    // reverted the rename would otherwise leave offsets >= the pool file's end under its name.
    RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  } else {
    RILL_ASSIGN_OR_RETURN(seg,
                          Segment::Create(fs_, dir_, base_offset,
                                          index_interval_bytes_.load(std::memory_order_relaxed)));
  }
  {
    std::unique_lock lock(segments_mu_);
    segments_.push_back(std::move(seg));
  }
  unsynced_closed_.push_back(std::move(old));
  dir_dirty_ = true;
  active_created_ms_ = clock_();
  appended_since_roll_ = 0;
  return Status::OK();
}

Status Log::SyncPending(bool* did_work) {
  std::vector<std::shared_ptr<Segment>> segs;
  int64_t target;
  bool dir_dirty;
  uint64_t seen;
  uint64_t synced_active;
  int64_t group_bytes;
  {
    std::lock_guard lock(write_mu_);
    target = log_end_offset().value();
    const uint64_t end_bytes = active()->size();
    const auto group =
        static_cast<int64_t>(end_bytes >= synced_size_ ? end_bytes - synced_size_ : end_bytes);
    last_group_bytes_.store(group, std::memory_order_relaxed);
    group_bytes = group;
    // Average group size (weight 1/8 per group), for the standby's regime check: one small
    // group in a saturating stream must not start zero-filling.
    const int64_t avg = group_bytes_avg_.load(std::memory_order_relaxed);
    group_bytes_avg_.store(avg - avg / 8 + group / 8, std::memory_order_relaxed);
    synced_size_ = end_bytes;
    synced_active = end_bytes;
    segs = std::move(unsynced_closed_);
    unsynced_closed_.clear();
    segs.push_back(active());
    dir_dirty = dir_dirty_;
    dir_dirty_ = false;
    seen = truncations_;
  }
  *did_work = true;
  sync_count_.fetch_add(1, std::memory_order_relaxed);
  RILL_RETURN_IF_ERROR(SyncAndAdvance(segs, dir_dirty, target, seen, group_bytes));
  // Closed segments were part of this round: everything below the active one is durable now.
  if (segs.size() > 1) AdvanceRecoveryPoint(segs.back()->base_offset(), seen);
  if (config_.cache_behind_bytes >= 0) DropCacheBehind(segs.back(), synced_active);
  return Status::OK();
}

Status Log::SyncAndAdvance(const std::vector<std::shared_ptr<Segment>>& segs, bool dir_dirty,
                           int64_t target, uint64_t truncations_seen, int64_t group_bytes) {
  const auto start = std::chrono::steady_clock::now();
  for (const auto& s : segs) {
    Status st = s->Sync();
    if (!st.ok()) return Fail(st);
  }
  if (dir_dirty) {
    Status st = fs_->SyncDir(dir_);
    if (!st.ok()) return Fail(st);
  }
  if (group_bytes >= 0 && config_.on_sync) {
    config_.on_sync(std::chrono::steady_clock::now() - start, static_cast<uint64_t>(group_bytes));
  }
  AdvanceDurable(Offset(target), truncations_seen);
  return Status::OK();
}

void Log::DropCacheBehind(const std::shared_ptr<Segment>& synced, uint64_t synced_bytes) {
  std::unique_lock drop(cache_mu_, std::try_to_lock);
  if (!drop.owns_lock()) return;  // another sync is doing it
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  // Newest first: `synced` up to the bytes synced, older segments whole, until the newest
  // cache_behind_bytes are accounted for; a segment found fully dropped ends the walk.
  uint64_t keep = static_cast<uint64_t>(config_.cache_behind_bytes);
  bool seen_synced = false;
  for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
    if (!seen_synced) {
      if (*it != synced) continue;  // segments newer than the sync: not synced yet
      seen_synced = true;
    }
    uint64_t end = *it == synced ? synced_bytes : (*it)->size();
    uint64_t drop_to = end > keep ? end - keep : 0;
    if (*it != synced && drop_to == end && (*it)->cache_dropped() >= end) break;
    (*it)->DropCacheBefore(drop_to, 4u << 20);
    keep = keep > end ? keep - end : 0;
  }
}

Status Log::Flush() {
  {
    std::lock_guard dl(durable_mu_);
    if (!failure_.ok()) return failure_;
  }
  bool did;
  return SyncPending(&did);
}

bool Log::PreallocateIdle() {
  if (config_.preallocate_bytes <= 0) return false;
  if (last_group_bytes_.load(std::memory_order_relaxed) > config_.preallocate_max_group_bytes) {
    return false;
  }
  std::shared_ptr<Segment> seg;
  uint64_t added = 0;
  {
    // One piece ahead of the write position, and only while no append waits for a sync.
    std::lock_guard lock(write_mu_);
    if (closed_ || log_end_offset() > durable_offset()) return false;
    seg = active();
    uint64_t limit =
        std::min<uint64_t>(static_cast<uint64_t>(segment_bytes_.load(std::memory_order_relaxed)),
                           seg->size() + static_cast<uint64_t>(config_.preallocate_bytes));
    uint64_t from = std::max(seg->prepared_end(), seg->size());
    // Start only when a whole chunk of the window is missing; then fill it piece by piece.
    if (!filling_ && from + static_cast<uint64_t>(config_.preallocate_chunk_bytes) > limit) {
      return false;
    }
    if (from >= limit) {
      filling_ = false;
      return false;
    }
    filling_ = true;
    const uint64_t piece =
        static_cast<uint64_t>(std::max<int64_t>(config_.preallocate_piece_bytes, 4096));
    auto n = seg->Preallocate(std::min(limit, from + piece));
    if (!n.ok()) {
      // A failed zero-fill leaves the file's tail unknown: fail like any write error.
      (void)Fail(n.status());
      return false;
    }
    added = *n;
  }
  if (added == 0) return false;
  Status st = seg->Sync();
  if (!st.ok()) (void)Fail(st);
  return st.ok();
}

bool Log::StandbyInPoolLocked() const {
  return std::any_of(pool_.begin(), pool_.end(),
                     [&](const PoolFile& f) { return f.path == standby_path_; });
}

void Log::AbandonStandby(const Status& cause) {
  spdlog::warn(
      "partition {}: standby segment abandoned ({}); group fsyncs of a new segment will "
      "commit the journal until retention recycles segments",
      name_, cause.ToString());
  standby_.reset();
  (void)fs_->Remove(standby_path_);
  standby_off_ = true;
}

bool Log::StandbyStep() {
  if (config_.standby_min_bytes <= 0 || !config_.recycle_segments ||
      config_.recycle_pool_files <= 0 || standby_off_) {
    return false;
  }
  // Large groups amortise their journal commits; zero-filling would only add writes and CPU
  // to a stream that is busy already (a first version, limited by the last group <= 256 KiB:
  // 1 KiB produce 733 -> 463-549 MB/s; bench/RESULTS.md, broker, session 3).
  // (Read without the writer lock: this runs after every group, and an appender holds the lock
  // for its whole page-cache copy.)
  if (group_bytes_avg_.load(std::memory_order_relaxed) > config_.standby_max_group_bytes) {
    return false;
  }
  const uint64_t piece = std::min<uint64_t>(
      Zeros().size(),
      static_cast<uint64_t>(std::max<int64_t>(config_.preallocate_piece_bytes, 4096)));
  uint64_t allowance;
  uint64_t segment_bytes;
  uint64_t appended;
  {
    std::lock_guard lock(write_mu_);
    // Written space already waiting (a standby or a recycled file) needs no more.
    if (closed_ || failed_.load(std::memory_order_acquire) || !pool_.empty()) return false;
    // Twice the appended bytes, so a standby twice the active one's size is complete by the
    // time the active one is full, plus a head start so that it is complete a little earlier.
    appended = appended_since_roll_;
    allowance = 2 * appended + static_cast<uint64_t>(config_.standby_min_bytes) / 4;
    segment_bytes = static_cast<uint64_t>(segment_bytes_.load(std::memory_order_relaxed));
  }
  if (standby_ == nullptr) {
    // A partition with little traffic gets none: its groups are rare, and zeros are disk space.
    if (appended < static_cast<uint64_t>(config_.standby_min_bytes) / 16) {
      return false;
    }
    uint64_t target = std::max<uint64_t>(static_cast<uint64_t>(config_.standby_min_bytes),
                                         2 * standby_last_size_);
    target = std::min(target, segment_bytes);
    standby_target_ = std::max<uint64_t>(piece, target / piece * piece);
    auto f = fs_->Open(standby_path_, /*create=*/true, /*truncate=*/true);
    if (!f.ok()) {
      AbandonStandby(f.status());
      return false;
    }
    standby_ = std::move(f).value();
    standby_written_ = 0;
    standby_pending_ = 0;
  }
  // The last piece's writeback first: it is usually done by now, and waiting here keeps the
  // zeros out of the next group fsync's way.
  if (standby_pending_ > 0) {
    Status st = standby_->WriteBack(standby_written_ - standby_pending_, standby_pending_, true);
    standby_pending_ = 0;
    if (!st.ok()) {
      AbandonStandby(st);
      return false;
    }
  }
  if (standby_written_ >= standby_target_) {
    // Complete. Not fsynced: its blocks are written and their allocation reaches the journal
    // with the next commit; the roll that takes it syncs the directory.
    standby_.reset();
    std::lock_guard lock(write_mu_);
    if (closed_) return false;
    pool_.push_back({standby_path_, Offset(0), nullptr});
    standby_last_size_ = standby_target_;
    return true;
  }
  if (standby_written_ + piece > allowance) return false;
  Status st = standby_->WriteAt(standby_written_, std::string_view(Zeros()).substr(0, piece));
  if (st.ok()) st = standby_->WriteBack(standby_written_, piece, /*wait=*/false);
  if (!st.ok()) {
    AbandonStandby(st);
    return false;
  }
  standby_written_ += piece;
  standby_pending_ = piece;
  return true;
}

void Log::PollForAppend() {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::microseconds(config_.group_commit_poll_us);
  while (log_end_.load(std::memory_order_acquire) <= durable_.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
}

void Log::FlusherLoop() {
  const auto idle = std::chrono::milliseconds(config_.preallocate_idle_ms);
  auto interval = [&] {
    return std::chrono::milliseconds(flush_interval_ms_.load(std::memory_order_relaxed));
  };
  auto next_tick = std::chrono::steady_clock::now() + interval();
  bool window_full = false;  // the last zero-fill found nothing to do; wait for appends
  while (true) {
    bool work;
    FlushPolicy policy;
    {
      std::unique_lock lock(durable_mu_);
      // The policy is read afresh each round: ApplyConfig may change it (and wakes us).
      config_changed_ = false;
      policy = flush_policy();
      const bool group = policy == FlushPolicy::kGroup;
      auto pred = [&] {
        return stopping_ || config_changed_ ||
               (failure_.ok() && flush_requested_ > durable_.load());
      };
      if (group && !pred() && config_.group_commit_poll_us > 0) {
        lock.unlock();
        PollForAppend();
        lock.lock();
      }
      if (group) {
        // Zero-fill ahead, one piece at a time, only after `preallocate_idle_ms` without
        // appends (docs/STORAGE.md, Preallocation).
        if (window_full) {
          flusher_cv_.wait(lock, pred);
        } else if (!flusher_cv_.wait_for(lock, idle, pred)) {
          lock.unlock();
          window_full = !PreallocateIdle() && !StandbyStep();
          continue;
        }
        window_full = false;
      } else {
        // `interval` syncs once per tick; `none` never syncs, it only waits for a change. A tick
        // is never further away than the current interval (it may have just been shortened, or
        // the log may have just left `group`, whose ticks were not kept).
        next_tick = std::min(next_tick, std::chrono::steady_clock::now() + interval());
        flusher_cv_.wait_until(lock, next_tick, [&] { return stopping_ || config_changed_; });
        next_tick = std::chrono::steady_clock::now() + interval();
      }
      if (stopping_) return;
      work = policy != FlushPolicy::kNone && failure_.ok() && flush_requested_ > durable_.load();
    }
    if (work) {
      bool did;
      (void)SyncPending(&did);
      // One standby piece per group as well: a steady stream may leave the flusher no idle
      // moment, and the piece (a page-cache copy; the last piece's writeback is long done) costs
      // the next group far less than a growing file's journal commit.
      if (policy == FlushPolicy::kGroup) (void)StandbyStep();
    } else if (policy == FlushPolicy::kInterval) {
      while (PreallocateIdle()) {
      }
    }
  }
}

Status Log::WaitDurable(Offset offset, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(durable_mu_);
  while (true) {
    if (durable_.load() > offset.value()) return Status::OK();
    if (!failure_.ok()) return failure_;
    if (stopping_) return Status::Unavailable("partition " + name_ + ": log closed");
    ++durable_waiters_;
    std::cv_status waited = durable_cv_.wait_until(lock, deadline);
    --durable_waiters_;
    if (waited == std::cv_status::timeout) {
      if (durable_.load() > offset.value()) return Status::OK();
      return Status::Timeout("partition " + name_ + ": offset " + std::to_string(offset.value()) +
                             " not durable by the deadline");
    }
  }
}

void Log::OnDurable(Offset offset, std::function<void(Status)> done) {
  Status outcome;
  {
    std::lock_guard lock(durable_mu_);
    if (durable_.load() <= offset.value()) {
      if (!failure_.ok()) {
        outcome = failure_;
      } else if (stopping_) {
        outcome = Status::Unavailable("partition " + name_ + ": log closed");
      } else {
        callbacks_.emplace(offset.value(), std::move(done));
        return;
      }
    }
  }
  done(outcome);
}

Result<ReadResult> Log::Read(Offset from, size_t max_bytes, Offset max_offset) const {
  ReadResult r;
  r.log_start_offset = log_start_offset();
  r.log_end_offset = log_end_offset();
  auto out_of_range = [&] {
    return Status::OutOfRange("partition " + name_ + ": offset " + std::to_string(from.value()) +
                              " outside [" + std::to_string(r.log_start_offset.value()) + ", " +
                              std::to_string(r.log_end_offset.value()) + "]");
  };
  if (from < r.log_start_offset || from > r.log_end_offset) return out_of_range();
  r.next_offset = from;
  while (from < r.log_end_offset) {
    auto seg = SegmentFor(from);
    if (seg == nullptr) {
      // Retention removed the segment holding `from` after the check above (nothing was read
      // yet: a later segment is only visited after an empty one): `from` is below the start now.
      r.log_start_offset = log_start_offset();
      return out_of_range();
    }
    Offset next;
    RILL_RETURN_IF_ERROR(seg->Read(from, max_bytes, max_offset, &r.data, &next));
    if (!r.data.empty()) {
      r.next_offset = next;
      break;
    }
    // Nothing at `from` in this segment: continue in the next one, if any.
    Offset seg_end = seg->next_offset();
    if (seg_end <= from || next > max_offset) break;
    from = seg_end;
  }
  return r;
}

Result<TimestampOffset> Log::OffsetForTimestamp(int64_t timestamp_ms) const {
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  // Records below the log start (segments retention is removing, a truncation below the start)
  // are never answers.
  const Offset start = log_start_offset();
  for (const auto& s : segs) {
    if (s->next_offset() <= start) continue;
    auto found = s->OffsetForTimestamp(timestamp_ms, start);
    if (!found.ok()) {
      return Status(found.status().code(), "partition " + name_ + ": lookup of timestamp " +
                                               std::to_string(timestamp_ms) + ": " +
                                               found.status().message());
    }
    if (found->offset.value() >= 0) return *found;
  }
  return Status::NotFound("partition " + name_ +
                          ": no record with timestamp >= " + std::to_string(timestamp_ms));
}

Status Log::TruncateTo(Offset offset) {
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  {
    std::lock_guard dl(durable_mu_);
    if (!failure_.ok()) return failure_;
  }
  if (offset >= log_end_offset()) return Status::OK();
  Status st = TruncateLocked(offset);
  if (!st.ok()) return Fail(st);
  return Status::OK();
}

Status Log::TruncateLocked(Offset offset) {
  std::lock_guard rp_lock(recovery_point_mu_);
  // Segments below the point are about to change: the point goes first, durably.
  if (recovery_point_ > offset.value()) RILL_RETURN_IF_ERROR(RemoveRecoveryPoint());
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  std::vector<std::shared_ptr<Segment>> doomed;
  Offset new_end;
  // The offsets from `offset` on will be assigned again; below the log start offset that
  // includes offsets the pool files hold. The pool goes, durably with the rest (SyncDir below).
  if (offset < log_start_offset()) RILL_RETURN_IF_ERROR(ClearPoolLocked());
  if (offset <= log_start_offset()) {
    // Everything goes; the log restarts empty at `offset` (whose file name an old segment may
    // hold: remove the old files first).
    for (const auto& s : segs) RILL_RETURN_IF_ERROR(RemoveSegmentFiles(s));
    RILL_ASSIGN_OR_RETURN(
        auto fresh,
        Segment::Create(fs_, dir_, offset, index_interval_bytes_.load(std::memory_order_relaxed)));
    {
      std::unique_lock lock(segments_mu_);
      segments_.assign(1, fresh);
    }
    unsynced_closed_.clear();
    dir_dirty_ = true;
    new_end = offset;
    log_start_.store(offset.value(), std::memory_order_release);
  } else {
    size_t i = segs.size() - 1;
    while (segs[i]->base_offset() > offset) --i;
    uint64_t pos;
    Offset batch_base;
    RILL_RETURN_IF_ERROR(segs[i]->FindBatch(offset, &pos, &batch_base));
    size_t keep = i + 1;
    if (pos == 0 && i > 0) {
      keep = i;  // the whole segment goes; the previous one becomes active again
      new_end = segs[i]->base_offset();
    } else {
      RILL_RETURN_IF_ERROR(segs[i]->TruncateAt(pos, batch_base));
      new_end = batch_base;
    }
    doomed.assign(segs.begin() + static_cast<ptrdiff_t>(keep), segs.end());
    {
      std::unique_lock lock(segments_mu_);
      segments_.resize(keep);
    }
  }
  std::erase_if(unsynced_closed_, [&](const auto& s) {
    return std::find(doomed.begin(), doomed.end(), s) != doomed.end();
  });
  for (const auto& s : doomed) RILL_RETURN_IF_ERROR(RemoveSegmentFiles(s));
  RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  log_end_.store(new_end.value(), std::memory_order_release);
  {
    std::lock_guard dl(durable_mu_);
    ++truncations_;
    if (durable_.load() > new_end.value()) durable_.store(new_end.value());
    flush_requested_ = std::min(flush_requested_, new_end.value());
  }
  // What is left is durable up to what was durable before; what was removed can never be.
  FailWaiters(Status::OutOfRange("partition " + name_ + ": offsets from " +
                                 std::to_string(new_end.value()) + " were truncated"),
              new_end);
  if (flush_policy() == FlushPolicy::kNone) AdvanceDurable(new_end);
  return Status::OK();
}

Result<RetentionResult> Log::ApplyRetention(int64_t now_ms) {
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock2(segments_mu_);
    segs = segments_;
  }
  const int64_t retention_ms = retention_ms_.load(std::memory_order_relaxed);
  const int64_t retention_bytes = retention_bytes_.load(std::memory_order_relaxed);
  size_t drop = 0;
  uint64_t total = 0;
  for (const auto& s : segs) total += s->size();
  while (drop + 1 < segs.size()) {
    const auto& s = segs[drop];
    bool by_time = retention_ms >= 0 && s->max_timestamp() < now_ms - retention_ms;
    bool by_size =
        retention_bytes >= 0 && total - s->size() >= static_cast<uint64_t>(retention_bytes);
    if (!by_time && !by_size) break;
    total -= s->size();
    ++drop;
  }
  if (drop == 0) return RetentionResult{};
  RetentionResult result{static_cast<int>(drop), 0};
  for (size_t i = 0; i < drop; ++i) result.bytes += segs[i]->size();
  {
    std::unique_lock lock2(segments_mu_);
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(drop));
    log_start_.store(std::max(log_start_.load(), segments_.front()->base_offset().value()),
                     std::memory_order_release);
  }
  for (size_t i = 0; i < drop; ++i) {
    std::erase(unsynced_closed_, segs[i]);
    Status st = RetireLocked(segs[i], segs[i + 1]->base_offset());
    if (!st.ok()) return Fail(st);
  }
  Status st = fs_->SyncDir(dir_);
  if (!st.ok()) return Fail(st);
  spdlog::info("partition {}: retention deleted {} segment(s), {} bytes; log start offset now {}",
               name_, drop, result.bytes, log_start_offset().value());
  return result;
}

Status Log::RemoveSegmentFiles(const std::shared_ptr<Segment>& seg) {
  if (config_.remover == nullptr) return seg->RemoveFiles();
  RILL_RETURN_IF_ERROR(config_.remover->Remove(seg->log_path(), seg));
  return seg->RemoveIndexFiles();
}

Status Log::RemoveFile(const std::string& path, std::shared_ptr<const void> holder) {
  if (config_.remover != nullptr) return config_.remover->Remove(path, std::move(holder));
  Status st = fs_->Remove(path);
  return st.IsNotFound() ? Status::OK() : st;
}

std::string Log::PoolPath(Offset end) const {
  return JoinPath(dir_, SegmentFileName(end, kPoolExt));
}

Status Log::RetireLocked(const std::shared_ptr<Segment>& seg, Offset end) {
  if (!config_.recycle_segments || config_.recycle_pool_files <= 0) {
    return RemoveSegmentFiles(seg);
  }
  if (pool_.size() >= static_cast<size_t>(config_.recycle_pool_files)) {
    RILL_RETURN_IF_ERROR(RemoveFile(pool_.front().path, pool_.front().retired));
    pool_.erase(pool_.begin());
  }
  std::string path = PoolPath(end);
  RILL_RETURN_IF_ERROR(seg->RetireTo(path));
  pool_.push_back({std::move(path), end, seg});
  return Status::OK();
}

Status Log::ClearPoolLocked() {
  for (const auto& f : pool_) RILL_RETURN_IF_ERROR(RemoveFile(f.path, f.retired));
  pool_.clear();
  return Status::OK();
}

Status Log::Close() {
  {
    std::lock_guard lock(durable_mu_);
    stopping_ = true;
  }
  flusher_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::OK();
  closed_ = true;
  Status failure = health();
  if (!failure.ok()) {
    FailWaiters(failure, Offset(INT64_MIN));
    return failure;
  }
  auto fail = [&](Status st) {
    Status out = Fail(st);
    return out;
  };
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock2(segments_mu_);
    segs = segments_;
  }
  auto act = segs.back();
  Status st = act->Trim();
  for (const auto& s : unsynced_closed_) {
    if (st.ok()) st = s->Sync();
  }
  unsynced_closed_.clear();
  if (st.ok()) st = act->Sync();
  for (const auto& s : segs) {
    if (st.ok()) st = s->SyncIndexes();
  }
  if (st.ok()) st = fs_->SyncDir(dir_);
  if (!st.ok()) return fail(st);
  AdvanceDurable(log_end_offset());
  st = WriteCheckpoint(/*clean=*/true);
  if (!st.ok()) return fail(st);
  FailWaiters(Status::Unavailable("partition " + name_ + ": log closed"), Offset(INT64_MIN));
  return Status::OK();
}

}  // namespace rill::storage
