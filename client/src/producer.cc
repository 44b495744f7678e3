#include "rill/client/producer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "bootstrap_list.h"
#include "grpc_util.h"
#include "metadata_cache.h"
#include "produce_encoding.h"
#include "record_accumulator.h"
#include "rill/client/errors.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/thread_name.h"
#include "rill/v1/producer.grpc.pb.h"

namespace rill::client {

using internal::BufferPool;
using internal::EncodedProduceRequest;
using internal::MonotonicMs;
using internal::MonotonicUs;
using internal::ProducerBatch;

// The broker remembers each producer's last storage::kProducerBatchesKept (128) batches per
// partition, so a retry of anything older could not be recognised as a duplicate: at most that
// many batches of one partition are in flight (Kafka keeps 5, and allows 5 requests).
constexpr int kMaxInFlightPerPartition = 128;
// As librdkafka's linger.ms (15 minutes).
constexpr double kMaxLingerMs = 900'000;

class ProducerImpl {
 public:
  explicit ProducerImpl(const ProducerConfig& config);
  ~ProducerImpl();

  void Send(const ProducerRecord& record, SendCallback callback);
  void Flush();
  void Close();

  const ProducerConfig config_;

 private:
  // One ProduceRequest awaiting its response. Entry i of the request (and of the response,
  // which the broker answers in request order) holds batches[i]; a partition's batches are
  // consecutive entries, in sequence order.
  struct InFlightRequest {
    // Holds the batch bytes while in flight; shared with the sender while it writes.
    std::shared_ptr<EncodedProduceRequest> request;
    std::vector<std::unique_ptr<ProducerBatch>> batches;
    int64_t sent_ms = 0;
  };

  // One ProduceStream to one broker, with a reader thread matching responses to requests.
  // Requests go out as EncodedProduceRequest (the batch bytes are not copied into a protobuf
  // message); the stream is made the way generated stubs make theirs, with our request type.
  struct Connection {
    int32_t node = -1;
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::string method_name;
    std::unique_ptr<grpc::internal::RpcMethod> method;  // refers to method_name
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReaderWriter<EncodedProduceRequest, v1::ProduceResponse>> stream;
    std::thread reader;
    std::mutex write_mu;  // serialises Write/WritesDone with Finish
    std::mutex mu;
    std::unordered_map<uint64_t, InFlightRequest> inflight;  // guarded by mu
    bool broken = false;                                     // guarded by mu
    std::atomic<int> inflight_count{0};
  };

  void SenderLoop();
  void ReaderLoop(Connection* c);
  Connection* GetConnection(int32_t node);
  void SendBatches(Connection* c, std::vector<std::unique_ptr<ProducerBatch>> batches,
                   int64_t now_ms);
  // Completes or retries each batch of `req`; true when some batch did not succeed.
  bool HandleResponse(InFlightRequest& req, const v1::ProduceResponse& resp);
  // Puts the bytes of every batch back from the request (for a retry).
  static void RecoverBytes(InFlightRequest& req, BufferPool& pool);
  // `leader_lost`: the attempt failed for want of a leader at the broker it went to (a leader
  // error, or the stream broke): the backoff ends early once metadata names another leader.
  void Retry(std::unique_ptr<ProducerBatch> b, const Status& st, bool retriable, int64_t now_ms,
             bool leader_lost);
  void Succeed(std::unique_ptr<ProducerBatch> b, int64_t base_offset, int64_t log_append_time);
  void Fail(std::unique_ptr<ProducerBatch> b, const Status& st);
  Status EnsureTopic(const std::string& topic);
  Status LookUpTopic(const std::string& topic);  // one metadata lookup; topic_mu_ held
  void RefreshMetadata();
  // Fails the buffered batches older than delivery_timeout_ms.
  void ExpireBatches(int64_t now_ms);
  void Wakeup();
  // Whether the sender, asleep or about to be, would not look at the accumulator again by
  // ready_at_us by itself (so a batch ready then needs a Wakeup).
  bool SenderSleepsPast(int64_t ready_at_us) const;
  void ShutdownConnections();

  // ---- idempotence (docs/IDEMPOTENCE.md, The producer) ----
  // Sender thread: gets a producer id when there is none, and starts a new epoch once one is
  // needed and nothing is in flight. False while sending must wait (no id yet, or a new epoch
  // waits for in-flight batches).
  bool PrepareIdempotence(int64_t now_ms);
  // Asks a broker for a new producer id (epoch 0).
  Status InitProducerId();
  // Gives a batch about to be sent its producer fields (a new sequence unless it already has
  // one in the current epoch) and counts it in flight.
  void AssignSequence(ProducerBatch& b);
  // Counts the batch in its partition's in-flight batches (idempotent or ordered_in_flight()).
  void MarkInFlight(ProducerBatch& b);
  // Without idempotence, max_in_flight = 1 promises strict order per partition: one batch of a
  // partition in flight at a time, whatever the broker (Kafka mutes the partition the same way),
  // so a batch still out at an old leader cannot be overtaken at the new one.
  bool ordered_in_flight() const { return !idempotent_ && config_.max_in_flight == 1; }
  int partition_in_flight_limit() const { return idempotent_ ? kMaxInFlightPerPartition : 1; }
  // The batch's attempt ended (acknowledged, retried or failed): no longer in flight.
  void Landed(ProducerBatch& b, bool acked);
  // Idempotence: a retriable failure puts the batch back in its queue; it keeps its sequence and
  // its place in the partition's window.
  void QueuedForRetry(ProducerBatch& b);
  // Idempotence: the batch is done for good (acknowledged or failed): it leaves the window.
  void Settled(ProducerBatch& b);

  // Cleared only when idempotence was not asked for explicitly and the broker does not offer
  // InitProducerId (an older broker); before any batch got a sequence.
  std::atomic<bool> idempotent_;
  struct PartitionSequence {
    int64_t next = 0;      // sequence of the next new batch
    int64_t acked = 0;     // every sequence below this is acknowledged
    int in_flight = 0;     // batches sent and not answered (idempotent or ordered_in_flight())
    // Idempotence: the window of this epoch's batches from the oldest one not acknowledged (or
    // failed) yet to the newest given a sequence, as (sequence64, settled). The broker
    // recognises a retry only among a producer's last kMaxInFlightPerPartition batches, so no new
    // batch gets a sequence while the window is that long: otherwise a batch stuck in a request
    // (at a paused leader, say) while later ones are written and acknowledged elsewhere would,
    // when retried, be more than that many batches behind, be taken for out of order, and be
    // written twice under a new epoch. Counting only unacknowledged batches is not enough.
    std::deque<std::pair<int64_t, bool>> window;
    int retry_queued = 0;  // batches of the window waiting in the queue to be sent again
  };
  std::mutex idem_mu_;
  int64_t producer_id_ = -1;        // guarded by idem_mu_
  int16_t producer_epoch_ = 0;      // guarded by idem_mu_
  bool new_epoch_needed_ = false;   // guarded by idem_mu_
  int in_flight_batches_ = 0;       // guarded by idem_mu_
  std::map<TopicPartition, PartitionSequence> sequences_;  // guarded by idem_mu_
  // A partition that had kMaxInFlightPerPartition batches in flight got one back: its next
  // batches may go, so the reader wakes the sender (which only a full window wakes otherwise).
  std::atomic<bool> partition_quota_freed_{false};
  int64_t next_init_attempt_ms_ = 0;  // sender thread only
  int init_attempts_ = 0;             // sender thread only

  internal::RecordAccumulator acc_;
  internal::MetadataCache meta_;
  std::mutex topic_mu_;  // one first-time topic lookup at a time

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;      // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::atomic<bool> need_metadata_{false};
  std::atomic<bool> closed_{false};
  // Where the sender is, for Send to skip the Wakeup (a futex call and the sender's context
  // switch) of a new batch that the sender will find anyway: kSenderBusy while it works before
  // its drains (which will find the batch), INT64_MAX from just before its drains until it
  // knows how long to sleep, then the monotonic microsecond it will wake at by itself. Each store
  // is sequentially consistent and comes before the sender's next look at the accumulator, and Send
  // loads it after its Append: either the sender's look finds the new batch or Send sees the store.
  // The looks that may decide to sleep (a drain that sends nothing, NextReadyDelay) all come after
  // the INT64_MAX store; when NextReadyDelay finds a batch ready that the drain did not send, it is
  // either blocked (a full window: a response wakes the sender) or new, and then its Send saw
  // INT64_MAX and woke the sender.
  static constexpr int64_t kSenderBusy = INT64_MIN;
  // The longest the sender sleeps with nothing to wake it for.
  static constexpr int64_t kIdleWaitUs = 100'000;
  std::atomic<int64_t> sender_sleeps_until_{kSenderBusy};
  int64_t next_expire_ms_ = 0;  // sender thread only: when to look for expired batches next
  std::mutex close_mu_;

  // Sender thread only.
  std::map<int32_t, std::unique_ptr<Connection>> conns_;
  uint64_t next_request_id_ = 0;
  int64_t last_metadata_ms_ = 0;
  std::thread sender_;
};

namespace {

internal::AccumulatorOptions AccOptions(const ProducerConfig& c) {
  internal::AccumulatorOptions o;
  o.batch_size = c.batch_size;
  o.linger_us = std::llround(c.linger_ms * 1000);
  o.buffer_memory = c.buffer_memory;
  o.max_block_ms = c.max_block_ms;
  o.delivery_timeout_us = int64_t{c.delivery_timeout_ms} * 1000;
  o.compression = c.compression;
  return o;
}

// Errors after which the partition's leader per metadata may be stale: refresh before retrying.
bool IsLeaderError(int32_t code) {
  return code == v1::NOT_LEADER || code == v1::UNKNOWN_PARTITION || code == v1::UNKNOWN_TOPIC ||
         code == v1::BROKER_NOT_AVAILABLE;
}

bool IdempotenceOn(const ProducerConfig& c) { return c.enable_idempotence.value_or(c.acks == -1); }

// The ack wait the broker is asked for: a little under request_timeout_ms, so that a partition
// whose append is not durable in time comes back as REQUEST_TIMED_OUT (outcome unknown; only its
// batches are retried) before this client gives up on the whole stream at request_timeout_ms.
int32_t BrokerAckTimeoutMs(int32_t request_timeout_ms) {
  const int32_t margin = std::clamp(request_timeout_ms / 10, 1, 1000);
  return std::max(1, request_timeout_ms - margin);
}

}  // namespace

ProducerImpl::ProducerImpl(const ProducerConfig& config)
    : config_(config),
      idempotent_(IdempotenceOn(config)),
      acc_(AccOptions(config)),
      meta_(config.bootstrap, config.request_timeout_ms) {
  last_metadata_ms_ = MonotonicMs();
  acc_.OnBlocked([this] { Wakeup(); });
  sender_ = std::thread([this] {
    SetCurrentThreadName("rill-sender");
    SenderLoop();
  });
}

ProducerImpl::~ProducerImpl() { Close(); }

void ProducerImpl::Wakeup() {
  {
    std::lock_guard lk(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

Status ProducerImpl::EnsureTopic(const std::string& topic) {
  std::lock_guard lk(topic_mu_);
  if (acc_.PartitionCount(topic) >= 0) return Status::OK();
  // In a cluster a broker whose metadata lags may not know a topic created a moment ago: ask
  // again (another broker, or the same one caught up) for a short while before failing.
  const auto give_up = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(std::min<int64_t>(config_.max_block_ms, 3000));
  while (true) {
    Status st = LookUpTopic(topic);
    if (st.ok() || !(st.IsNotFound() || st.code() == StatusCode::kUnavailable) ||
        std::chrono::steady_clock::now() >= give_up) {
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // metadata retry backoff
  }
}

Status ProducerImpl::LookUpTopic(const std::string& topic) {
  RILL_ASSIGN_OR_RETURN(v1::MetadataResponse resp, meta_.Refresh({topic}));
  for (const auto& t : resp.topics()) {
    if (t.name() != topic) continue;
    if (t.error() != v1::NONE) {
      return StatusFromErrorCode(t.error(), t.error_message().empty()
                                                ? "topic '" + topic + "' does not exist"
                                                : t.error_message());
    }
    if (t.partitions_size() == 0) {
      return Status::Unavailable("topic '" + topic + "' has no partitions yet");
    }
    acc_.SetPartitionCount(topic, t.partitions_size());
    return Status::OK();
  }
  return StatusFromErrorCode(v1::UNKNOWN_TOPIC, "topic '" + topic + "' does not exist");
}

void ProducerImpl::Send(const ProducerRecord& record, SendCallback callback) {
  if (closed_.load(std::memory_order_relaxed)) {
    if (callback) callback(Status::Failed("producer is closed"));
    return;
  }
  const int64_t ts = record.timestamp_ms ? *record.timestamp_ms : internal::WallMs();
  auto r = acc_.Append(record, ts, std::move(callback), internal::RecordAccumulator::kClockNow);
  if (!r.ok() && r.status().IsNotFound()) {
    // A topic seen for the first time: fetch its metadata, then try once more.
    Status st = EnsureTopic(record.topic);
    if (!st.ok()) {
      if (callback) callback(st);
      return;
    }
    r = acc_.Append(record, ts, std::move(callback), internal::RecordAccumulator::kClockNow);
  }
  if (!r.ok()) {
    if (callback) callback(r.status());  // Append leaves the callback with us on error
    return;
  }
  if (r->wake_sender && SenderSleepsPast(r->ready_at_us)) Wakeup();
}

bool ProducerImpl::SenderSleepsPast(int64_t ready_at_us) const {
  const int64_t until = sender_sleeps_until_.load();
  return until != kSenderBusy && ready_at_us < until;
}

void ProducerImpl::Flush() {
  acc_.BeginFlush();
  Wakeup();
  acc_.WaitUntilEmpty();
  acc_.EndFlush();
}

void ProducerImpl::Close() {
  std::lock_guard close_lk(close_mu_);
  if (closed_.exchange(true)) return;
  Flush();
  acc_.Close();
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (sender_.joinable()) sender_.join();
  ShutdownConnections();
  for (auto& b : acc_.TakeAll()) Fail(std::move(b), Status::Failed("producer closed"));
}

void ProducerImpl::ShutdownConnections() {
  for (auto& [node, c] : conns_) {
    if (c->ctx) c->ctx->TryCancel();
    if (c->reader.joinable()) c->reader.join();
  }
  conns_.clear();
}

void ProducerImpl::RefreshMetadata() {
  auto topics = acc_.Topics();
  if (topics.empty()) return;
  auto r = meta_.Refresh(topics);
  if (!r.ok()) return;  // retried on the next round
  for (const auto& t : r->topics()) {
    if (t.error() == v1::NONE && t.partitions_size() > 0) {
      acc_.SetPartitionCount(t.name(), t.partitions_size());
    }
  }
}

ProducerImpl::Connection* ProducerImpl::GetConnection(int32_t node) {
  auto& slot = conns_[node];
  if (slot) {
    bool broken;
    {
      std::lock_guard lk(slot->mu);
      broken = slot->broken;
    }
    if (!broken) return slot.get();
    if (slot->reader.joinable()) slot->reader.join();
    slot.reset();
  }
  auto c = std::make_unique<Connection>();
  c->node = node;
  c->address = meta_.AddressOf(node);
  c->channel = internal::MakeChannel(c->address);
  c->method_name = "/" + std::string(v1::Producer::service_full_name()) + "/ProduceStream";
  c->method = std::make_unique<grpc::internal::RpcMethod>(
      c->method_name.c_str(), grpc::internal::RpcMethod::BIDI_STREAMING, c->channel);
  c->ctx = std::make_unique<grpc::ClientContext>();
  c->stream.reset(
      grpc::internal::ClientReaderWriterFactory<EncodedProduceRequest, v1::ProduceResponse>::Create(
          c->channel.get(), *c->method, c->ctx.get()));
  Connection* raw = c.get();
  c->reader = std::thread([this, raw] {
    SetCurrentThreadName("rill-reader");
    ReaderLoop(raw);
  });
  slot = std::move(c);
  return raw;
}

void ProducerImpl::ExpireBatches(int64_t now_ms) {
  for (auto& b : acc_.Expire(now_ms * 1000)) {
    std::string why = "delivery_timeout_ms (" + std::to_string(config_.delivery_timeout_ms) +
                      ") expired before the batch was acknowledged";
    if (!b->last_error.ok()) {
      why += " (" + std::to_string(b->attempts) +
             " attempts; the last was retried after: " + b->last_error.ToString() + ")";
    }
    Fail(std::move(b), Status::Timeout(why));
  }
}

void ProducerImpl::SenderLoop() {
  while (true) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) break;
    }
    int64_t now_us = MonotonicUs();
    int64_t now = now_us / 1000;
    // While a batch waits for a new leader, metadata is asked for every retry_backoff_ms (not at
    // the batch's doubled backoff), and the batch goes as soon as it names one.
    const bool awaiting_leader = acc_.AwaitingLeader();
    if (((need_metadata_.load() || awaiting_leader) &&
         now - last_metadata_ms_ >= config_.retry_backoff_ms) ||
        now - last_metadata_ms_ >= config_.metadata_max_age_ms) {
      need_metadata_ = false;
      RefreshMetadata();
      now_us = MonotonicUs();
      last_metadata_ms_ = now = now_us / 1000;
      if (awaiting_leader) {
        acc_.ExpediteRetries([this](const ProducerBatch& b) {
          const int32_t leader = meta_.LeaderOf(b.tp);
          return leader >= 0 && leader != b.sent_to;
        });
      }
    }
    // Expiry walks every buffered batch under the accumulator's lock: a few times per
    // delivery_timeout_ms is enough (at most every 100 ms).
    if (now >= next_expire_ms_) {
      next_expire_ms_ = now + std::clamp<int64_t>(config_.delivery_timeout_ms / 20, 1, 100);
      ExpireBatches(now);
    }
    // A request unanswered for request_timeout_ms breaks its stream; its batches are retried.
    for (auto& [node, c] : conns_) {
      std::lock_guard lk(c->mu);
      if (c->broken) continue;
      for (const auto& [id, req] : c->inflight) {
        if (now - req.sent_ms > config_.request_timeout_ms) {
          c->ctx->TryCancel();
          break;
        }
      }
    }

    // From here the sender looks at the accumulator (the drains below, then NextReadyDelay):
    // a batch appended from now on wakes it, so one that arrives after a drain found nothing
    // cannot leave NextReadyDelay's "ready" unanswered until the idle wait ends.
    sender_sleeps_until_.store(INT64_MAX);
    bool sent = false;
    const bool may_send = !idempotent_ || PrepareIdempotence(now);
    std::set<int32_t> nodes = may_send ? meta_.LeaderNodes() : std::set<int32_t>{};
    std::function<int(const TopicPartition&)> quota;
    if (ordered_in_flight()) {
      quota = [this](const TopicPartition& tp) {
        std::lock_guard lk(idem_mu_);
        auto it = sequences_.find(tp);
        return it == sequences_.end() || it->second.in_flight == 0 ? 1 : 0;
      };
    } else if (idempotent_) {
      // A partition's in-flight bound is spread over several requests, so that one partition
      // still has requests pipelined (as without idempotence) rather than one large request
      // that must come back before the next can go.
      const int per_request =
          std::max(1, (kMaxInFlightPerPartition + config_.max_in_flight - 1) / config_.max_in_flight);
      // Drained from the head of the partition's queue: first the batches waiting for a retry
      // (they have their sequences), then new ones while the window has room.
      quota = [this, per_request](const TopicPartition& tp) {
        std::lock_guard lk(idem_mu_);
        auto it = sequences_.find(tp);
        if (it == sequences_.end()) return per_request;
        const int room =
            std::max(0, kMaxInFlightPerPartition - static_cast<int>(it->second.window.size()));
        return std::min(per_request, it->second.retry_queued + room);
      };
    }
    for (int32_t node : nodes) {
      Connection* c = GetConnection(node);
      while (c->inflight_count.load() < config_.max_in_flight) {
        auto batches = acc_.Drain(
            now_us, config_.max_request_bytes,
            [&](const TopicPartition& tp) {
              const int32_t leader = meta_.LeaderOf(tp);
              if (leader < 0) need_metadata_ = true;
              return leader == node;
            },
            quota);
        if (batches.empty()) break;
        SendBatches(c, std::move(batches), now);
        sent = true;
        std::lock_guard lk(c->mu);
        if (c->broken) break;
      }
    }
    if (sent) {
      sender_sleeps_until_.store(kSenderBusy);
      continue;
    }

    // In microseconds: a linger may be a fraction of a millisecond.
    const int64_t delay = acc_.NextReadyDelay(now_us);
    const int64_t backoff_us = std::max<int64_t>(1, config_.retry_backoff_ms) * 1000;
    int64_t wait_us = kIdleWaitUs;
    if (!may_send) {
      wait_us = backoff_us;
    } else if (delay == 0) {
      // Ready but not sendable: windows full (a response wakes us), or no leader known.
      if (nodes.empty()) need_metadata_ = true;
      if (need_metadata_) wait_us = backoff_us;
    } else if (delay > 0) {
      wait_us = std::min<int64_t>(delay, kIdleWaitUs);
    }
    if (acc_.AwaitingLeader()) wait_us = std::min(wait_us, backoff_us);
    // The wait ends no earlier than this (the clock is read after `now_us`).
    sender_sleeps_until_.store(MonotonicUs() + wait_us);
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::microseconds(wait_us), [&] { return wake_ || stopping_; });
    wake_ = false;
    sender_sleeps_until_.store(kSenderBusy);
  }
}

void ProducerImpl::SendBatches(Connection* c, std::vector<std::unique_ptr<ProducerBatch>> batches,
                               int64_t now_ms) {
  auto request = std::make_shared<EncodedProduceRequest>(
      ++next_request_id_, config_.acks, BrokerAckTimeoutMs(config_.request_timeout_ms),
      config_.client_id);
  InFlightRequest ifr;
  ifr.request = request;
  ifr.sent_ms = now_ms;
  // Drain returns each partition's batches contiguously and in sequence order.
  for (auto& b : batches) {
    if (idempotent_) {
      AssignSequence(*b);
    } else if (ordered_in_flight()) {
      MarkInFlight(*b);
    }
    Status st = b->Build();
    if (!st.ok()) {
      Fail(std::move(b), st);
      continue;
    }
    if (idempotent_ && b->producer_id >= 0) {
      // Built earlier under other producer fields (a new epoch since): rewrite them.
      const batch::Header h = batch::DecodeHeader(b->bytes.data());
      const auto seq = static_cast<int32_t>(b->sequence64 % (int64_t(INT32_MAX) + 1));
      if (h.producer_id != b->producer_id || h.producer_epoch != b->producer_epoch ||
          h.base_sequence != seq) {
        batch::SetProducerFields(std::span<char>(b->bytes.data(), b->bytes.size()),
                                 b->producer_id, b->producer_epoch, seq);
      }
    }
    ++b->attempts;
    b->sent_to = c->node;
    // One entry per batch, even for the same partition: the broker appends a request's entries
    // in order, and the batch's bytes move into the request instead of being concatenated with
    // the partition's other batches (a copy of every byte sent).
    // The bytes go back to the accumulator's pool when gRPC and the request let go of them,
    // and the batch's charge of buffer memory goes with them until then.
    request->AddEntry(b->tp.topic, b->tp.partition,
                      acc_.pool()->Wrap(std::move(b->bytes), std::exchange(b->buffer_bytes, 0)));
    ifr.batches.push_back(std::move(b));
  }
  if (ifr.batches.empty()) return;

  if (config_.acks == 0) {
    bool ok;
    {
      std::lock_guard wl(c->write_mu);
      ok = c->stream->Write(*request);
    }
    if (!ok) RecoverBytes(ifr, *acc_.pool());
    for (auto& b : ifr.batches) {
      if (ok) {
        Succeed(std::move(b), -1, -1);
      } else {
        Retry(std::move(b), Status::Unavailable("produce stream to " + c->address + " broke"), true,
              now_ms, true);
      }
    }
    return;
  }

  const uint64_t id = request->request_id();
  {
    std::unique_lock lk(c->mu);
    if (c->broken) {
      lk.unlock();
      RecoverBytes(ifr, *acc_.pool());
      for (auto& b : ifr.batches) {
        Retry(std::move(b), Status::Unavailable("produce stream to " + c->address + " broke"), true,
              now_ms, true);
      }
      return;
    }
    c->inflight.emplace(id, std::move(ifr));
    c->inflight_count.fetch_add(1);
  }
  // A failed Write means the stream is broken: the reader fails the in-flight requests.
  std::lock_guard wl(c->write_mu);
  c->stream->Write(*request);
}

void ProducerImpl::RecoverBytes(InFlightRequest& req, BufferPool& pool) {
  if (!req.request) return;
  // The bytes move back (the request is dropped right after), unless gRPC still holds them.
  for (size_t i = 0; i < req.request->entry_count() && i < req.batches.size(); ++i) {
    // A batch already completed (an earlier entry of a partly failed response) is gone.
    if (req.batches[i] == nullptr) continue;
    const std::shared_ptr<std::string>& records = req.request->records(i);
    if (!records) continue;  // an empty batch
    ProducerBatch& b = *req.batches[i];
    b.bytes = records.use_count() == 1 ? std::move(*records) : *records;
    // The request's copy gives its charge back when it goes; the batch's bytes are charged again.
    b.buffer_bytes = static_cast<int64_t>(b.bytes.capacity());
    pool.ForceCharge(b.buffer_bytes);
  }
  req.request.reset();
}

void ProducerImpl::ReaderLoop(Connection* c) {
  v1::ProduceResponse resp;
  while (c->stream->Read(&resp)) {
    InFlightRequest req;
    {
      std::lock_guard lk(c->mu);
      auto it = c->inflight.find(resp.request_id());
      if (it == c->inflight.end()) continue;  // acks=0 answers, or already failed
      req = std::move(it->second);
      c->inflight.erase(it);
    }
    const int window = c->inflight_count.fetch_sub(1);
    const bool retried = HandleResponse(req, resp);
    // The sender waits for a response only when this connection's window was full, a batch
    // went back for a retry, or an idempotent partition's in-flight batches were at their
    // bound; new batches wake it themselves. (A wake-up per response costs a context switch
    // per request.)
    if (retried || window >= config_.max_in_flight ||
        partition_quota_freed_.exchange(false, std::memory_order_acq_rel)) {
      Wakeup();
    }
  }
  grpc::Status status;
  {
    std::lock_guard wl(c->write_mu);
    status = c->stream->Finish();
  }
  std::unordered_map<uint64_t, InFlightRequest> orphans;
  {
    std::lock_guard lk(c->mu);
    c->broken = true;
    orphans.swap(c->inflight);
    c->inflight_count.store(0);
  }
  Status st = status.ok() ? Status::Unavailable("produce stream to " + c->address + " closed")
                          : internal::FromGrpc(status, "Producer.ProduceStream", c->address);
  const bool retriable = status.ok() || internal::IsRetriableGrpc(status);
  bool stopping;
  {
    std::lock_guard lk(mu_);
    stopping = stopping_;
  }
  // The leader is gone or stuck (a request older than request_timeout_ms cancels the stream,
  // so CANCELLED counts too unless we are closing): its partitions are leaderless until metadata,
  // asked of another broker, names their leader again; then their batches go there.
  if (!stopping && (status.ok() || internal::IsConnectionFailure(status) ||
                    status.error_code() == grpc::StatusCode::CANCELLED)) {
    meta_.ReportUnreachable(c->address);
    need_metadata_ = true;
  }
  if (!orphans.empty()) need_metadata_ = true;
  const int64_t now = MonotonicMs();
  // Retry in request order so sequences stay ordered in the accumulator either way.
  std::map<uint64_t, InFlightRequest*> ordered;
  for (auto& [id, req] : orphans) ordered[id] = &req;
  {
    // The sender may be about to write one of these requests (it was in flight before the
    // stream broke): its Write reads the bytes, so they are taken back under the write lock.
    std::lock_guard wl(c->write_mu);
    for (auto& [id, req] : ordered) RecoverBytes(*req, *acc_.pool());
  }
  for (auto& [id, req] : ordered) {
    for (auto& b : req->batches) Retry(std::move(b), st, retriable, now, true);
  }
  Wakeup();
}

bool ProducerImpl::HandleResponse(InFlightRequest& req, const v1::ProduceResponse& resp) {
  const int64_t now = MonotonicMs();
  bool recovered = false;
  for (size_t i = 0; i < req.batches.size(); ++i) {
    auto& b = req.batches[i];
    // Results come in request order; a partition may have several entries, so only the entry at
    // the same index can be this batch's.
    const v1::PartitionProduceResult* r = nullptr;
    if (i < static_cast<size_t>(resp.partitions_size()) &&
        resp.partitions(i).topic() == b->tp.topic &&
        resp.partitions(i).partition() == b->tp.partition) {
      r = &resp.partitions(i);
    }
    if (r != nullptr && r->error() == v1::NONE) {
      Landed(*b, true);
      Settled(*b);
      Succeed(std::move(b), r->base_offset(), r->log_append_time_ms());
      continue;
    }
    if (!recovered) {
      RecoverBytes(req, *acc_.pool());
      recovered = true;
    }
    Status st = r == nullptr ? Status::Failed("the broker's response has no result for entry " +
                                              std::to_string(i) + " (" + b->tp.ToString() + ")")
                             : StatusFromErrorCode(r->error(), r->error_message());
    // Metadata named this broker the leader, so UNKNOWN_TOPIC means it lags behind the
    // controller (a new leader that has not applied the topic yet): retried like NOT_LEADER.
    bool retriable =
        r != nullptr && (IsRetriableErrorCode(r->error()) || r->error() == v1::UNKNOWN_TOPIC);
    if (r != nullptr && r->error() == v1::OUT_OF_ORDER_SEQUENCE_NUMBER && idempotent_) {
      // An earlier batch of the partition is still unacknowledged (it failed and will be
      // retried first): this one follows it. At the head, the broker's state disagrees with
      // ours: a new epoch restarts the partition's sequences (Kafka does the same).
      std::lock_guard lk(idem_mu_);
      auto& ps = sequences_[b->tp];
      if (b->producer_epoch == producer_epoch_ && b->sequence64 == ps.acked) {
        new_epoch_needed_ = true;
      }
      retriable = true;
    }
    const bool leader_lost =
        r != nullptr && (IsLeaderError(r->error()) || r->error() == v1::UNKNOWN_TOPIC);
    if (leader_lost) need_metadata_ = true;
    Retry(std::move(b), st, retriable, now, leader_lost);
  }
  return recovered;
}

void ProducerImpl::Retry(std::unique_ptr<ProducerBatch> b, const Status& st, bool retriable,
                         int64_t now_ms, bool leader_lost) {
  if (retriable && b->attempts <= config_.retries &&
      now_ms * 1000 - b->created_us < int64_t{config_.delivery_timeout_ms} * 1000) {
    int64_t backoff = config_.retry_backoff_ms;
    for (int i = 1; i < b->attempts && backoff < config_.retry_backoff_max_ms; ++i) backoff *= 2;
    backoff = std::min<int64_t>(backoff, config_.retry_backoff_max_ms);
    b->last_error = st;
    b->awaits_leader = leader_lost;
    QueuedForRetry(*b);
    // Counted in flight until it is back at the head of its partition: in between, with
    // max_in_flight = 1, the sender could drain the partition's next batch ahead of it.
    acc_.Reenqueue(std::move(b), (now_ms + backoff) * 1000,
                   [this](ProducerBatch& queued) { Landed(queued, false); });
    return;
  }
  std::string why =
      retriable ? " (gave up after " + std::to_string(b->attempts) + " attempts)" : "";
  Fail(std::move(b), Status(st.code(), st.message() + why));
}

void ProducerImpl::Succeed(std::unique_ptr<ProducerBatch> b, int64_t base_offset,
                           int64_t log_append_time) {
  Result<RecordMetadata> md(RecordMetadata{b->tp.topic, b->tp.partition, -1, -1});
  int64_t offset = base_offset;
  for (auto& r : b->records) {
    if (r.callback) {
      md->offset = base_offset < 0 ? -1 : offset;
      md->timestamp_ms = log_append_time >= 0 ? log_append_time : r.timestamp_ms;
      r.callback(md);
    }
    ++offset;
  }
  acc_.Complete(std::move(b));
}

void ProducerImpl::Fail(std::unique_ptr<ProducerBatch> b, const Status& st) {
  Landed(*b, false);
  Settled(*b);
  if (idempotent_ && b->sequence64 >= 0) {
    // Its sequence will never be acknowledged: the partition's next batches could not follow
    // it. A new epoch starts every partition's sequences over.
    std::lock_guard lk(idem_mu_);
    if (b->producer_id == producer_id_ && b->producer_epoch == producer_epoch_) {
      new_epoch_needed_ = true;
    }
  }
  Status full(st.code(), b->tp.ToString() + ": " + st.message());
  Result<RecordMetadata> err(full);
  for (auto& r : b->records) {
    if (r.callback) r.callback(err);
  }
  acc_.Complete(std::move(b));
}

bool ProducerImpl::PrepareIdempotence(int64_t now_ms) {
  bool need_id;
  {
    std::lock_guard lk(idem_mu_);
    if (new_epoch_needed_) {
      if (in_flight_batches_ > 0) return false;  // answers (or stream failures) will come
      new_epoch_needed_ = false;
      sequences_.clear();
      if (producer_id_ >= 0 && producer_epoch_ < INT16_MAX) {
        ++producer_epoch_;
      } else {
        producer_id_ = -1;  // epochs exhausted: a new id (epoch 0)
      }
    }
    need_id = producer_id_ < 0;
  }
  if (!need_id) return true;
  if (now_ms < next_init_attempt_ms_) return false;
  Status st = InitProducerId();
  if (st.ok() || !idempotent_) {
    init_attempts_ = 0;
    return true;
  }
  // Batches wait (and expire after delivery_timeout_ms, naming this error).
  int64_t backoff = config_.retry_backoff_ms;
  for (int i = 0; i < init_attempts_ && backoff < config_.retry_backoff_max_ms; ++i) backoff *= 2;
  ++init_attempts_;
  next_init_attempt_ms_ = now_ms + std::min<int64_t>(backoff, config_.retry_backoff_max_ms);
  for (auto& b : acc_.Expire(now_ms * 1000)) {
    Fail(std::move(b), Status(st.code(), "no producer id: " + st.message()));
  }
  return false;
}

Status ProducerImpl::InitProducerId() {
  const std::string address = meta_.LiveAddress();
  auto stub = v1::Producer::NewStub(internal::MakeChannel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(config_.request_timeout_ms));
  v1::InitProducerIdRequest req;
  req.set_client_id(config_.client_id);
  v1::InitProducerIdResponse resp;
  grpc::Status gs = stub->InitProducerId(&ctx, req, &resp);
  if (gs.error_code() == grpc::StatusCode::UNIMPLEMENTED && !config_.enable_idempotence) {
    idempotent_ = false;  // a broker without idempotence: on by default means "where offered"
    return Status::OK();
  }
  if (!gs.ok()) {
    if (internal::IsConnectionFailure(gs)) meta_.ReportUnreachable(address);
    return internal::FromGrpc(gs, "Producer.InitProducerId", address);
  }
  if (resp.error() != v1::NONE) return StatusFromErrorCode(resp.error(), resp.error_message());
  std::lock_guard lk(idem_mu_);
  producer_id_ = resp.producer_id();
  producer_epoch_ = static_cast<int16_t>(resp.producer_epoch());
  sequences_.clear();
  return Status::OK();
}

void ProducerImpl::AssignSequence(ProducerBatch& b) {
  std::lock_guard lk(idem_mu_);
  PartitionSequence& ps = sequences_[b.tp];
  const bool this_epoch = b.producer_id == producer_id_ && b.producer_epoch == producer_epoch_;
  if (b.queued_for_retry) {
    b.queued_for_retry = false;
    if (this_epoch && ps.retry_queued > 0) --ps.retry_queued;
  }
  if (!this_epoch || b.sequence64 < 0) {
    b.producer_id = producer_id_;
    b.producer_epoch = producer_epoch_;
    b.sequence64 = ps.next;
    ps.next += b.record_count();
    b.counted_unacked = true;
    ps.window.emplace_back(b.sequence64, false);
    if (!b.built) {
      b.builder.SetProducer(producer_id_, producer_epoch_,
                            static_cast<int32_t>(b.sequence64 % (int64_t(INT32_MAX) + 1)));
    }
  }
  if (!b.counted_in_flight) {
    b.counted_in_flight = true;
    ++ps.in_flight;
    ++in_flight_batches_;
  }
}

void ProducerImpl::MarkInFlight(ProducerBatch& b) {
  std::lock_guard lk(idem_mu_);
  if (b.counted_in_flight) return;
  b.counted_in_flight = true;
  ++sequences_[b.tp].in_flight;
  ++in_flight_batches_;
}

void ProducerImpl::QueuedForRetry(ProducerBatch& b) {
  if (!idempotent_ || b.sequence64 < 0) return;
  std::lock_guard lk(idem_mu_);
  if (b.producer_id != producer_id_ || b.producer_epoch != producer_epoch_) return;
  auto it = sequences_.find(b.tp);
  if (it == sequences_.end() || b.queued_for_retry) return;
  b.queued_for_retry = true;
  ++it->second.retry_queued;
}

void ProducerImpl::Settled(ProducerBatch& b) {
  if (!b.counted_unacked) return;
  std::lock_guard lk(idem_mu_);
  b.counted_unacked = false;
  const bool queued = b.queued_for_retry;
  b.queued_for_retry = false;
  if (b.producer_id != producer_id_ || b.producer_epoch != producer_epoch_) return;
  auto it = sequences_.find(b.tp);
  if (it == sequences_.end()) return;  // a new epoch started over
  PartitionSequence& ps = it->second;
  if (queued && ps.retry_queued > 0) --ps.retry_queued;
  auto w = std::lower_bound(ps.window.begin(), ps.window.end(),
                            std::make_pair(b.sequence64, false));
  if (w == ps.window.end() || w->first != b.sequence64) return;
  w->second = true;
  const bool was_full = ps.window.size() >= static_cast<size_t>(kMaxInFlightPerPartition);
  while (!ps.window.empty() && ps.window.front().second) ps.window.pop_front();
  if (was_full && ps.window.size() < static_cast<size_t>(kMaxInFlightPerPartition)) {
    partition_quota_freed_.store(true, std::memory_order_release);
  }
}

void ProducerImpl::Landed(ProducerBatch& b, bool acked) {
  if (!b.counted_in_flight) return;
  std::lock_guard lk(idem_mu_);
  b.counted_in_flight = false;
  --in_flight_batches_;
  auto it = sequences_.find(b.tp);
  if (it == sequences_.end()) return;  // a new epoch started over (not while in flight)
  if (it->second.in_flight-- == partition_in_flight_limit()) {
    partition_quota_freed_.store(true, std::memory_order_release);
  }
  if (acked && b.producer_id == producer_id_ && b.producer_epoch == producer_epoch_) {
    it->second.acked = std::max(it->second.acked, b.sequence64 + b.record_count());
  }
}

// ------------------------------------------------------------------ Producer

Producer::Producer(std::unique_ptr<ProducerImpl> impl) : impl_(std::move(impl)) {}
Producer::~Producer() { impl_->Close(); }

Result<std::unique_ptr<Producer>> Producer::Create(const ProducerConfig& c) {
  if (auto b = internal::ParseBootstrapList(c.bootstrap); !b.ok()) return b.status();
  if (c.acks != 0 && c.acks != 1 && c.acks != -1) {
    return Status::InvalidArgument("acks must be 0, 1 or -1 (all), not " + std::to_string(c.acks));
  }
  if (!(c.linger_ms >= 0 && c.linger_ms <= kMaxLingerMs)) {
    return Status::InvalidArgument("linger_ms must be from 0 to " +
                                   std::to_string(static_cast<int>(kMaxLingerMs)) + ", not " +
                                   std::to_string(c.linger_ms));
  }
  if (c.batch_size <= 0 || c.max_in_flight <= 0 || c.buffer_memory <= 0 || c.max_block_ms < 0 ||
      c.retries < 0 || c.retry_backoff_ms < 0 || c.delivery_timeout_ms <= 0 ||
      c.request_timeout_ms <= 0 || c.max_request_bytes <= 0) {
    return Status::InvalidArgument(
        "batch_size, max_in_flight, buffer_memory, delivery_timeout_ms, request_timeout_ms and "
        "max_request_bytes must be positive; max_block_ms, retries and "
        "retry_backoff_ms non-negative");
  }
  if (c.enable_idempotence.value_or(false)) {
    if (c.acks != -1) {
      return Status::InvalidArgument(
          "enable_idempotence needs acks = -1 (all), not " + std::to_string(c.acks) +
          ": a retry is recognised only if every in-sync replica has the batch; leave "
          "enable_idempotence unset or false to use acks 0 or 1");
    }
  }
  return std::unique_ptr<Producer>(new Producer(std::make_unique<ProducerImpl>(c)));
}

void Producer::Send(const ProducerRecord& record, SendCallback callback) {
  impl_->Send(record, std::move(callback));
}

std::future<Result<RecordMetadata>> Producer::Send(const ProducerRecord& record) {
  auto promise = std::make_shared<std::promise<Result<RecordMetadata>>>();
  auto future = promise->get_future();
  impl_->Send(record, [promise](const Result<RecordMetadata>& r) { promise->set_value(r); });
  return future;
}

void Producer::Flush() { impl_->Flush(); }
void Producer::Close() { impl_->Close(); }
const ProducerConfig& Producer::config() const { return impl_->config_; }

}  // namespace rill::client
