#include "rill/client/consumer.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "grpc_util.h"
#include "metadata_cache.h"
#include "rill/client/errors.h"
#include "rill/proto/endian.h"
#include "rill/v1/consumer.grpc.pb.h"

namespace rill::client {

using internal::MonotonicMs;

// Fetched batches of one partition, waiting for Poll.
struct FetchedChunk {
  TopicPartition tp;
  uint64_t epoch = 0;  // the partition's seek epoch when fetched; stale chunks are dropped
  std::shared_ptr<const std::string> bytes;
  size_t pos = 0;  // next batch to decode
};

class ConsumerImpl {
 public:
  explicit ConsumerImpl(const ConsumerConfig& config);
  ~ConsumerImpl() { Close(); }

  Status Assign(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;
  Status Seek(const TopicPartition& tp, int64_t offset);
  Status SeekTo(const std::vector<TopicPartition>& partitions, int64_t spec);
  Result<std::vector<ConsumerRecord>> Poll(std::chrono::milliseconds timeout);
  Result<int64_t> Position(const TopicPartition& tp) const;
  void Close();

 private:
  struct PartitionState {
    int64_t position = -1;        // next offset for the user; -1: unknown (reset pending)
    int64_t fetch_position = -1;  // next offset to fetch (ahead of position)
    uint64_t epoch = 0;           // bumped by every seek
    bool fetch_in_flight = false;
    Status error;          // an unrecoverable error, reported once by Poll
    bool stopped = false;  // after an error: not fetched until sought again
  };

  void FetcherLoop();
  // ListOffsets for `tps` with the given spec (-2 earliest, -1 latest, else a timestamp).
  Result<std::map<TopicPartition, int64_t>> ListOffsets(const std::vector<TopicPartition>& tps,
                                                        int64_t spec);
  // Resolves partitions without a position per auto_offset_reset; false on a transport error.
  bool ResetPositions();
  // Decodes the next batch of the chunk into `out`; false when the chunk is used up.
  Status DecodeBatch(FetchedChunk& chunk, PartitionState& st, std::vector<ConsumerRecord>* out);

  const ConsumerConfig config_;
  internal::MetadataCache meta_;
  std::unique_ptr<v1::Consumer::Stub> stub_;

  mutable std::mutex mu_;
  std::condition_variable data_cv_;                 // chunks arrived or an error
  std::condition_variable fetcher_cv_;              // assignment, positions or queue space changed
  std::map<TopicPartition, PartitionState> parts_;  // guarded by mu_
  std::deque<FetchedChunk> queue_;                  // guarded by mu_
  int64_t queued_bytes_ = 0;                        // guarded by mu_
  bool stopping_ = false;                           // guarded by mu_
  bool closed_ = false;
  grpc::ClientContext* fetch_ctx_ = nullptr;  // guarded by mu_: the fetch in progress
  std::thread fetcher_;
};

ConsumerImpl::ConsumerImpl(const ConsumerConfig& config)
    : config_(config),
      meta_(config.bootstrap, config.request_timeout_ms),
      stub_(v1::Consumer::NewStub(internal::MakeChannel(config.bootstrap))) {
  fetcher_ = std::thread([this] { FetcherLoop(); });
}

void ConsumerImpl::Close() {
  {
    std::lock_guard lk(mu_);
    if (closed_) return;
    closed_ = true;
    stopping_ = true;
    if (fetch_ctx_ != nullptr) fetch_ctx_->TryCancel();
  }
  fetcher_cv_.notify_all();
  data_cv_.notify_all();
  if (fetcher_.joinable()) fetcher_.join();
}

Status ConsumerImpl::Assign(const std::vector<TopicPartition>& partitions) {
  std::lock_guard lk(mu_);
  if (closed_) return Status::Failed("consumer is closed");
  std::map<TopicPartition, PartitionState> next;
  for (const auto& tp : partitions) {
    if (tp.topic.empty() || tp.partition < 0) {
      return Status::InvalidArgument("invalid topic-partition '" + tp.ToString() + "'");
    }
    auto it = parts_.find(tp);
    if (it != parts_.end()) {
      next[tp] = it->second;
    } else {
      next[tp] = PartitionState{};
    }
  }
  parts_ = std::move(next);
  // Chunks of partitions no longer assigned are dropped by Poll (no state for them).
  fetcher_cv_.notify_all();
  return Status::OK();
}

std::vector<TopicPartition> ConsumerImpl::Assignment() const {
  std::lock_guard lk(mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, st] : parts_) out.push_back(tp);
  return out;
}

Status ConsumerImpl::Seek(const TopicPartition& tp, int64_t offset) {
  if (offset < 0)
    return Status::InvalidArgument("offset must be >= 0, not " + std::to_string(offset));
  std::lock_guard lk(mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end()) return Status::InvalidArgument(tp.ToString() + " is not assigned");
  it->second.position = offset;
  it->second.fetch_position = offset;
  it->second.epoch++;
  it->second.error = Status::OK();
  it->second.stopped = false;
  fetcher_cv_.notify_all();
  return Status::OK();
}

Result<std::map<TopicPartition, int64_t>> ConsumerImpl::ListOffsets(
    const std::vector<TopicPartition>& tps, int64_t spec) {
  v1::ListOffsetsRequest req;
  for (const auto& tp : tps) {
    auto* p = req.add_partitions();
    p->set_topic(tp.topic);
    p->set_partition(tp.partition);
    p->set_timestamp(spec);
  }
  v1::ListOffsetsResponse resp;
  grpc::ClientContext ctx;
  internal::SetTimeout(&ctx, config_.request_timeout_ms);
  grpc::Status s = stub_->ListOffsets(&ctx, req, &resp);
  if (!s.ok()) return internal::FromGrpc(s, "Consumer.ListOffsets", config_.bootstrap);
  std::map<TopicPartition, int64_t> out;
  for (const auto& r : resp.partitions()) {
    TopicPartition tp{r.topic(), r.partition()};
    if (r.error() != v1::NONE) {
      Status st = StatusFromErrorCode(r.error(), r.error_message());
      return Status(st.code(), tp.ToString() + ": " + st.message());
    }
    out[tp] = r.offset();
  }
  for (const auto& tp : tps) {
    if (!out.count(tp))
      return Status::Failed("ListOffsets returned no result for " + tp.ToString());
  }
  return out;
}

Status ConsumerImpl::SeekTo(const std::vector<TopicPartition>& partitions, int64_t spec) {
  std::vector<TopicPartition> tps = partitions.empty() ? Assignment() : partitions;
  {
    std::lock_guard lk(mu_);
    for (const auto& tp : tps) {
      if (!parts_.count(tp)) return Status::InvalidArgument(tp.ToString() + " is not assigned");
    }
  }
  if (tps.empty()) return Status::OK();
  RILL_ASSIGN_OR_RETURN(auto offsets, ListOffsets(tps, spec));
  std::map<TopicPartition, int64_t> latest;
  for (auto& [tp, off] : offsets) {
    if (off < 0) {
      // A timestamp after every record: the end.
      if (latest.empty()) {
        RILL_ASSIGN_OR_RETURN(latest, ListOffsets(tps, -1));
      }
      off = latest[tp];
    }
    RILL_RETURN_IF_ERROR(Seek(tp, off));
  }
  return Status::OK();
}

Result<int64_t> ConsumerImpl::Position(const TopicPartition& tp) const {
  std::lock_guard lk(mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end()) return Status::NotFound(tp.ToString() + " is not assigned");
  if (it->second.position < 0) {
    return Status::Unavailable("the position of " + tp.ToString() + " is not known yet");
  }
  return it->second.position;
}

bool ConsumerImpl::ResetPositions() {
  std::vector<TopicPartition> todo;
  {
    std::lock_guard lk(mu_);
    for (auto& [tp, st] : parts_) {
      if (st.position < 0 && st.error.ok() && !st.stopped) todo.push_back(tp);
    }
  }
  if (todo.empty()) return true;
  if (config_.auto_offset_reset == OffsetReset::kError) {
    std::lock_guard lk(mu_);
    for (const auto& tp : todo) {
      auto it = parts_.find(tp);
      if (it != parts_.end() && it->second.position < 0) {
        it->second.error =
            Status::OutOfRange(tp.ToString() + ": no position and auto_offset_reset is 'error'");
      }
    }
    data_cv_.notify_all();
    return true;
  }
  const int64_t spec = config_.auto_offset_reset == OffsetReset::kEarliest ? -2 : -1;
  auto r = ListOffsets(todo, spec);
  std::lock_guard lk(mu_);
  if (!r.ok()) {
    // Unknown topic and the like are reported; transport errors are retried.
    if (r.status().code() != StatusCode::kUnavailable &&
        r.status().code() != StatusCode::kTimeout) {
      for (const auto& tp : todo) {
        auto it = parts_.find(tp);
        if (it != parts_.end() && it->second.position < 0) it->second.error = r.status();
      }
      data_cv_.notify_all();
      return true;
    }
    return false;
  }
  for (const auto& [tp, off] : *r) {
    auto it = parts_.find(tp);
    if (it == parts_.end() || it->second.position >= 0) continue;
    it->second.position = off;
    it->second.fetch_position = off;
    it->second.epoch++;
  }
  return true;
}

void ConsumerImpl::FetcherLoop() {
  int64_t backoff_until = 0;
  while (true) {
    v1::FetchRequest req;
    std::map<TopicPartition, uint64_t> epochs;
    {
      std::unique_lock lk(mu_);
      if (stopping_) return;
      const int64_t wait = backoff_until - MonotonicMs();
      if (wait > 0) {
        fetcher_cv_.wait_for(lk, std::chrono::milliseconds(wait), [&] { return stopping_; });
        if (stopping_) return;
      }
    }
    if (!ResetPositions()) {
      backoff_until = MonotonicMs() + 200;
      continue;
    }
    {
      std::unique_lock lk(mu_);
      fetcher_cv_.wait(lk, [&] {
        if (stopping_) return true;
        if (queued_bytes_ >= config_.max_prefetch_bytes) return false;
        for (auto& [tp, st] : parts_) {
          if (!st.error.ok() || st.stopped) continue;
          if (st.fetch_position >= 0 || st.position < 0) return true;  // fetch, or reset
        }
        return false;
      });
      if (stopping_) return;
      req.set_max_wait_ms(config_.fetch_max_wait_ms);
      req.set_min_bytes(config_.fetch_min_bytes);
      req.set_max_bytes(config_.fetch_max_bytes);
      req.set_client_id(config_.client_id);
      for (auto& [tp, st] : parts_) {
        if (st.fetch_position < 0 || !st.error.ok() || st.stopped) continue;
        auto* p = req.add_partitions();
        p->set_topic(tp.topic);
        p->set_partition(tp.partition);
        p->set_fetch_offset(st.fetch_position);
        p->set_partition_max_bytes(config_.max_partition_fetch_bytes);
        epochs[tp] = st.epoch;
      }
    }
    if (req.partitions_size() == 0) {
      continue;  // only positions to reset: ResetPositions runs first
    }
    v1::FetchResponse resp;
    grpc::ClientContext ctx;
    internal::SetTimeout(&ctx, config_.request_timeout_ms + config_.fetch_max_wait_ms);
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      fetch_ctx_ = &ctx;
    }
    grpc::Status s = stub_->Fetch(&ctx, req, &resp);
    std::vector<TopicPartition> out_of_range;
    {
      std::lock_guard lk(mu_);
      fetch_ctx_ = nullptr;
      if (stopping_) return;
      if (!s.ok()) {
        backoff_until = MonotonicMs() + 200;
        if (!internal::IsRetriableGrpc(s)) {
          Status st = internal::FromGrpc(s, "Consumer.Fetch", config_.bootstrap);
          for (auto& [tp, e] : epochs) {
            auto it = parts_.find(tp);
            if (it != parts_.end() && it->second.epoch == e) it->second.error = st;
          }
          data_cv_.notify_all();
        }
        continue;
      }
      bool any = false;
      for (auto& r : *resp.mutable_partitions()) {
        TopicPartition tp{r.topic(), r.partition()};
        auto it = parts_.find(tp);
        auto e = epochs.find(tp);
        if (it == parts_.end() || e == epochs.end() || it->second.epoch != e->second) continue;
        PartitionState& st = it->second;
        if (r.error() == v1::OFFSET_OUT_OF_RANGE) {
          if (config_.auto_offset_reset == OffsetReset::kError) {
            st.error =
                Status::OutOfRange(tp.ToString() + ": offset " + std::to_string(st.fetch_position) +
                                   " is out of range [" + std::to_string(r.log_start_offset()) +
                                   ", " + std::to_string(r.high_watermark()) + "]");
            any = true;
          } else {
            st.position = -1;
            st.fetch_position = -1;
            st.epoch++;
          }
          continue;
        }
        if (r.error() != v1::NONE) {
          if (IsRetriableErrorCode(r.error())) {
            backoff_until = MonotonicMs() + 100;
          } else {
            Status es = StatusFromErrorCode(r.error(), r.error_message());
            st.error = Status(es.code(), tp.ToString() + ": " + es.message());
            any = true;
          }
          continue;
        }
        if (r.records().empty()) continue;
        // Advance the fetch position past the last whole batch; a partial trailing batch is
        // fetched again.
        std::string_view bytes = r.records();
        size_t pos = 0;
        int64_t next = st.fetch_position;
        while (bytes.size() - pos >= batch::kHeaderSize) {
          const auto len = static_cast<int32_t>(be::Load32(bytes.data() + pos + batch::kLengthPos));
          if (len < 0) break;
          const size_t total = batch::kLogOverhead + static_cast<size_t>(len);
          if (total > bytes.size() - pos || total < batch::kHeaderSize) break;
          batch::Header h = batch::DecodeHeader(bytes.data() + pos);
          next = std::max(next, h.last_offset() + 1);
          pos += total;
        }
        if (pos == 0) continue;
        auto owned = std::make_shared<std::string>(std::move(*r.mutable_records()));
        owned->resize(pos);
        queued_bytes_ += static_cast<int64_t>(pos);
        queue_.push_back(FetchedChunk{tp, st.epoch, std::move(owned), 0});
        st.fetch_position = next;
        any = true;
      }
      if (any) data_cv_.notify_all();
    }
  }
}

Status ConsumerImpl::DecodeBatch(FetchedChunk& chunk, PartitionState& st,
                                 std::vector<ConsumerRecord>* out) {
  const std::string& all = *chunk.bytes;
  std::string_view rest = std::string_view(all).substr(chunk.pos);
  RILL_ASSIGN_OR_RETURN(batch::Header h, batch::ParseHeader(rest));
  std::string_view one = rest.substr(0, h.total_size());
  chunk.pos += h.total_size();
  if (h.last_offset() < st.position) return Status::OK();  // entirely before the position

  batch::DecodeOptions opts;
  opts.verify_crc = config_.check_crcs;
  std::shared_ptr<const std::string> storage = chunk.bytes;
  std::string_view to_read = one;
  if (h.compression() != batch::Compression::kNone) {
    // Decompress into an uncompressed copy of the batch that the records can share.
    if (config_.check_crcs && !batch::CrcMatches(one)) {
      return Status::Corruption(chunk.tp.ToString() + ": batch at offset " +
                                std::to_string(h.base_offset) + " fails its CRC32C check");
    }
    RILL_ASSIGN_OR_RETURN(std::string plain,
                          batch::Decompress(h.compression(), one.substr(batch::kHeaderSize),
                                            opts.max_decompressed_bytes));
    auto copy = std::make_shared<std::string>();
    copy->reserve(batch::kHeaderSize + plain.size());
    copy->append(one.substr(0, batch::kHeaderSize));
    copy->append(plain);
    be::Store32(copy->data() + batch::kLengthPos,
                static_cast<uint32_t>(copy->size() - batch::kLogOverhead));
    be::Store16(copy->data() + batch::kAttributesPos,
                static_cast<uint16_t>(h.attributes & ~batch::kCompressionMask));
    opts.verify_crc = false;
    storage = copy;
    to_read = *copy;
  }
  auto reader = batch::BatchReader::Open(to_read, opts);
  if (!reader.ok()) {
    return Status(reader.status().code(), chunk.tp.ToString() + ": batch at offset " +
                                              std::to_string(h.base_offset) + ": " +
                                              reader.status().message());
  }
  batch::RecordView rv;
  while (true) {
    auto more = reader->Next(&rv);
    if (!more.ok()) {
      return Status(more.status().code(), chunk.tp.ToString() + ": batch at offset " +
                                              std::to_string(h.base_offset) + ": " +
                                              more.status().message());
    }
    if (!*more) break;
    if (rv.offset < st.position) continue;
    ConsumerRecord& cr = out->emplace_back();
    cr.topic = chunk.tp.topic;
    cr.partition = chunk.tp.partition;
    cr.offset = rv.offset;
    cr.timestamp_ms = rv.timestamp_ms;
    cr.key = rv.key;
    cr.value = rv.value;
    if (!rv.headers.empty()) cr.headers = rv.headers;
    cr.storage = storage;
  }
  st.position = std::max(st.position, h.last_offset() + 1);
  return Status::OK();
}

Result<std::vector<ConsumerRecord>> ConsumerImpl::Poll(std::chrono::milliseconds timeout) {
  std::vector<ConsumerRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lk(mu_);
  if (closed_) return Status::Failed("consumer is closed");
  while (true) {
    for (auto& [tp, st] : parts_) {
      if (!st.error.ok()) {
        // Reported once; the partition stays stopped until it is sought again.
        Status e = std::move(st.error);
        st.error = Status::OK();
        st.stopped = true;
        return e;
      }
    }
    bool freed = false;
    while (!queue_.empty() && static_cast<int32_t>(out.size()) < config_.max_poll_records) {
      FetchedChunk& chunk = queue_.front();
      auto it = parts_.find(chunk.tp);
      if (it == parts_.end() || it->second.epoch != chunk.epoch ||
          chunk.pos >= chunk.bytes->size()) {
        queued_bytes_ -= static_cast<int64_t>(chunk.bytes->size());
        queue_.pop_front();
        freed = true;
        continue;
      }
      Status s = DecodeBatch(chunk, it->second, &out);
      if (!s.ok()) {
        queued_bytes_ -= static_cast<int64_t>(chunk.bytes->size());
        queue_.pop_front();
        it->second.fetch_position = -1;  // stop fetching it until sought
        it->second.epoch++;
        fetcher_cv_.notify_all();
        it->second.stopped = true;
        if (!out.empty()) {
          it->second.error = s;  // reported by the next Poll
          it->second.stopped = false;
          return out;
        }
        return s;
      }
    }
    if (freed) fetcher_cv_.notify_all();
    if (!out.empty()) return out;
    if (data_cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
      // One last look before giving up.
      if (queue_.empty()) return out;
    }
    if (stopping_) return Status::Failed("consumer is closed");
  }
}

// ------------------------------------------------------------------ Consumer

Consumer::Consumer(std::unique_ptr<ConsumerImpl> impl) : impl_(std::move(impl)) {}
Consumer::~Consumer() { impl_->Close(); }

Result<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerConfig& c) {
  if (c.bootstrap.empty()) return Status::InvalidArgument("bootstrap address is empty");
  if (c.fetch_max_bytes <= 0 || c.max_partition_fetch_bytes <= 0 || c.max_poll_records <= 0 ||
      c.max_prefetch_bytes <= 0 || c.fetch_max_wait_ms < 0) {
    return Status::InvalidArgument(
        "fetch_max_bytes, max_partition_fetch_bytes, max_poll_records and max_prefetch_bytes "
        "must be positive, fetch_max_wait_ms non-negative");
  }
  return std::unique_ptr<Consumer>(new Consumer(std::make_unique<ConsumerImpl>(c)));
}

Status Consumer::Assign(const std::vector<TopicPartition>& p) { return impl_->Assign(p); }
std::vector<TopicPartition> Consumer::Assignment() const { return impl_->Assignment(); }
Status Consumer::Seek(const TopicPartition& tp, int64_t offset) { return impl_->Seek(tp, offset); }
Status Consumer::SeekToBeginning(const std::vector<TopicPartition>& p) {
  return impl_->SeekTo(p, -2);
}
Status Consumer::SeekToEnd(const std::vector<TopicPartition>& p) { return impl_->SeekTo(p, -1); }
Status Consumer::SeekToTimestamp(const std::vector<TopicPartition>& p, int64_t ts) {
  if (ts < 0) return Status::InvalidArgument("timestamp must be >= 0");
  return impl_->SeekTo(p, ts);
}
Result<std::vector<ConsumerRecord>> Consumer::Poll(std::chrono::milliseconds timeout) {
  return impl_->Poll(timeout);
}
Result<int64_t> Consumer::Position(const TopicPartition& tp) const { return impl_->Position(tp); }
void Consumer::Close() { impl_->Close(); }

}  // namespace rill::client
