#include "api/produce_handler.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "api/wire_errors.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/thread_name.h"

namespace rill::broker {

ProduceDeadlines::ProduceDeadlines()
    : thread_([this] {
        SetCurrentThreadName("rill-deadlines");
        Run();
      }) {}

ProduceDeadlines::~ProduceDeadlines() {
  Stop();
  // The last reference may be dropped by an expiring request on the thread itself.
  if (thread_.joinable()) thread_.detach();
}

void ProduceDeadlines::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

ProduceDeadlines::Key ProduceDeadlines::Add(Clock::time_point deadline,
                                            std::weak_ptr<Entry> entry) {
  bool earliest;
  Key key;
  {
    std::lock_guard lock(mu_);
    key = Key{deadline, ++next_id_};
    entries_.emplace(key, std::move(entry));
    earliest = deadline < wake_at_;
  }
  if (earliest) cv_.notify_one();
  return key;
}

void ProduceDeadlines::Remove(const Key& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

size_t ProduceDeadlines::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void ProduceDeadlines::Run() {
  std::unique_lock lock(mu_);
  std::vector<std::weak_ptr<Entry>> due;
  while (!stop_) {
    const auto now = Clock::now();
    while (!entries_.empty() && entries_.begin()->first.deadline <= now) {
      due.push_back(std::move(entries_.begin()->second));
      entries_.erase(entries_.begin());
    }
    if (!due.empty()) {
      lock.unlock();
      for (auto& w : due) {
        if (auto e = w.lock()) e->Expire();
      }
      due.clear();
      lock.lock();
      continue;
    }
    // Sleep until the earliest deadline; with the map empty, until the time already set (Add
    // wakes us for anything earlier), and without any, until an Add.
    if (!entries_.empty()) {
      wake_at_ = entries_.begin()->first.deadline;
    } else if (wake_at_ <= now) {
      wake_at_ = Clock::time_point::max();
    }
    if (wake_at_ == Clock::time_point::max()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, wake_at_);
    }
  }
}

std::chrono::milliseconds ProduceTimeout(const BrokerConfig& config,
                                         const v1::ProduceRequest& request) {
  int64_t ms = config.produce_timeout_ms;
  if (request.timeout_ms() > 0) ms = std::min<int64_t>(ms, request.timeout_ms());
  return std::chrono::milliseconds(ms);
}

int64_t ProduceBytes(const v1::ProduceRequest& request) {
  int64_t n = 0;
  for (const auto& p : request.partitions()) n += static_cast<int64_t>(p.records().size());
  return n;
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

grpc::Status ValidateRequest(const v1::ProduceRequest& req) {
  if (req.acks() != 0 && req.acks() != 1 && req.acks() != -1) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "acks must be -1, 0 or 1 (got " + std::to_string(req.acks()) + ")"};
  }
  if (req.timeout_ms() < 0) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "timeout_ms is negative"};
  }
  for (int i = 0; i < req.partitions_size(); ++i) {
    const auto& p = req.partitions(i);
    if (p.topic().empty()) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "partitions[" + std::to_string(i) + "].topic is empty"};
    }
    if (p.partition() < 0) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "partitions[" + std::to_string(i) +
                                                      "].partition is negative (" +
                                                      std::to_string(p.partition()) + ")"};
    }
  }
  return grpc::Status::OK;
}

// Checks the batch headers (structure, size bound) without the CRC, which the log verifies as it
// appends. Stamps log-append time when the topic asks for it. Returns NONE or the error code.
v1::ErrorCode CheckBatches(std::string* records, const PartitionLimits& limits,
                           std::string* message) {
  if (records->empty()) {
    *message = "records is empty";
    return v1::CORRUPT_BATCH;
  }
  batch::BatchIterator it(*records, /*verify_crc=*/false);
  int64_t append_time = limits.log_append_time ? NowMs() : 0;
  while (it.Next()) {
    const auto& h = it.header();
    if (h.total_size() > static_cast<size_t>(limits.max_message_bytes)) {
      *message = "batch at byte " + std::to_string(it.position()) + " is " +
                 std::to_string(h.total_size()) + " bytes, over max.message.bytes " +
                 std::to_string(limits.max_message_bytes);
      return v1::MESSAGE_TOO_LARGE;
    }
    if (limits.log_append_time) {
      if (!batch::CrcMatches(it.batch())) {
        *message = "batch at byte " + std::to_string(it.position()) + ": CRC mismatch";
        return v1::CORRUPT_BATCH;
      }
      batch::SetLogAppendTime(std::span<char>(records->data() + it.position(), h.total_size()),
                              append_time);
    }
  }
  if (!it.status().ok()) {
    *message = it.status().message();
    return v1::CORRUPT_BATCH;
  }
  return v1::NONE;
}

// One request's wait for its partitions' durability. The response is written under `mu_` until
// the request is finished (all durable, or expired); afterwards late durability callbacks leave
// it alone, since `done` may already have handed it to gRPC.
class Completion final : public ProduceDeadlines::Entry {
 public:
  Completion(v1::ProduceResponse* resp, std::function<void()> done,
             std::shared_ptr<ProduceDeadlines> deadlines)
      : resp_(resp), done_(std::move(done)), deadlines_(std::move(deadlines)) {}

  // One more partition (response entry `index`) will wait for its ack; call before its append,
  // whose ack may come at once. Returns its slot.
  size_t Await(int index) {
    std::lock_guard lock(mu_);
    ++pending_;
    waiting_.push_back({index, Offset(-1), Offset(-1), true});
    return waiting_.size() - 1;
  }

  // The append of `slot` is done: records its offsets in the response.
  void Appended(size_t slot, Offset base, Offset last, Offset log_start, int64_t append_time_ms) {
    std::lock_guard lock(mu_);
    if (finished_) return;
    waiting_[slot].base = base;
    waiting_[slot].last = last;
    auto* r = resp_->mutable_partitions(waiting_[slot].index);
    r->set_base_offset(base.value());
    r->set_last_offset(last.value());
    r->set_log_start_offset(log_start.value());
    if (append_time_ms >= 0) r->set_log_append_time_ms(append_time_ms);
  }

  // The append of `slot` failed (the caller has written its error): nothing to wait for.
  void Abandon(size_t slot) {
    std::lock_guard lock(mu_);
    waiting_[slot].waiting = false;
    --pending_;  // never the last: Release holds one
  }

  // The partition registered as the `slot`-th Await is durable (or failed with `s`).
  void Durable(size_t slot, const Status& s) {
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      waiting_[slot].waiting = false;
      if (!s.ok()) {
        auto* r = resp_->mutable_partitions(waiting_[slot].index);
        r->set_error(DurabilityError(s));
        r->set_error_message(s.ToString());
      }
      if (--pending_ > 0) return;
      finished_ = true;
    }
    Finish();
  }

  // Called once by HandleProduce when every partition has been handled; arms the deadline when
  // something still waits.
  void Release(ProduceDeadlines::Clock::duration timeout, const std::shared_ptr<Completion>& self) {
    {
      std::lock_guard lock(mu_);
      if (--pending_ > 0) {
        timeout_ = timeout;
        if (deadlines_ != nullptr) {
          key_ = deadlines_->Add(ProduceDeadlines::Clock::now() + timeout, self);
          armed_ = true;
        }
        return;
      }
      finished_ = true;
    }
    Finish();
  }

  void Expire() override {
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      finished_ = true;
      armed_ = false;  // the deadlines thread has dropped the key
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count();
      for (const auto& w : waiting_) {
        if (!w.waiting) continue;
        auto* r = resp_->mutable_partitions(w.index);
        r->set_error(v1::REQUEST_TIMED_OUT);
        r->set_error_message("appended at offsets " + std::to_string(w.base.value()) + ".." +
                             std::to_string(w.last.value()) + " but not durable within " +
                             std::to_string(ms) +
                             " ms; the outcome is unknown (the records may still become "
                             "durable)");
        r->set_base_offset(-1);
        r->set_last_offset(-1);
      }
    }
    done_();
  }

 private:
  struct Waiting {
    int index;
    Offset base;
    Offset last;
    bool waiting;
  };

  void Finish() {
    bool armed;
    {
      std::lock_guard lock(mu_);
      armed = armed_;
      armed_ = false;
    }
    if (armed) deadlines_->Remove(key_);
    done_();
  }

  std::mutex mu_;
  v1::ProduceResponse* const resp_;
  const std::function<void()> done_;
  const std::shared_ptr<ProduceDeadlines> deadlines_;
  int pending_ = 1;  // HandleProduce's own reference until every partition is handled
  bool finished_ = false;
  bool armed_ = false;
  ProduceDeadlines::Key key_;
  ProduceDeadlines::Clock::duration timeout_{};
  std::vector<Waiting> waiting_;
};

}  // namespace

grpc::Status HandleProduce(ServiceContext& ctx, const std::shared_ptr<ProduceDeadlines>& deadlines,
                           v1::ProduceRequest* req, v1::ProduceResponse* resp,
                           std::function<void()> done) {
  grpc::Status valid = ValidateRequest(*req);
  if (!valid.ok()) return valid;
  resp->set_request_id(req->request_id());
  const int acks = req->acks();
  // Create every result first: durability callbacks fill them concurrently later.
  resp->mutable_partitions()->Reserve(req->partitions_size());
  for (const auto& p : req->partitions()) {
    auto* r = resp->add_partitions();
    r->set_topic(p.topic());
    r->set_partition(p.partition());
    r->set_base_offset(-1);
    r->set_last_offset(-1);
    r->set_log_append_time_ms(-1);
    r->set_log_start_offset(-1);
  }
  auto completion = std::make_shared<Completion>(resp, std::move(done), deadlines);
  Metrics* metrics = ctx.metrics;

  for (int i = 0; i < req->partitions_size(); ++i) {
    auto* data = req->mutable_partitions(i);
    auto* r = resp->mutable_partitions(i);
    auto part = ctx.partitions->Get(data->topic(), data->partition());
    if (!part) {
      std::string msg;
      r->set_error(
          MissingPartitionError(ctx, data->topic(), data->partition(), &msg, r->mutable_leader()));
      r->set_error_message(std::move(msg));
      continue;
    }
    if (part->role() != PartitionRole::kLeader) {
      r->set_error(v1::NOT_LEADER);
      r->set_error_message("this broker does not lead " + data->topic() + "-" +
                           std::to_string(data->partition()));
      FillLeaderHint(ctx, data->topic(), data->partition(), r->mutable_leader());
      continue;
    }
    PartitionLimits limits = part->limits();
    std::string msg;
    std::string* records = data->mutable_records();
    v1::ErrorCode ec = CheckBatches(records, limits, &msg);
    if (ec == v1::NONE && acks == -1 && limits.min_insync_replicas > part->isr_size()) {
      ec = v1::NOT_ENOUGH_REPLICAS;
      msg = "ISR has " + std::to_string(part->isr_size()) + " replicas, min.insync.replicas is " +
            std::to_string(limits.min_insync_replicas);
    }
    if (ec == v1::NONE && ctx.disk != nullptr) {
      Status room = ctx.disk->Admit(records->size());
      if (!room.ok()) {
        ec = v1::RESOURCE_EXHAUSTED;
        msg = room.message();
      }
    }
    if (ec != v1::NONE) {
      r->set_error(ec);
      r->set_error_message(std::move(msg));
      continue;
    }
    // The one ack rule is the partition's (Partition::Append). From the append on, the response
    // entry of an acks=1/-1 partition is written only through `completion`, under its lock: the
    // ack may come on a storage thread, even before Append returns, and after a timeout the
    // response may already be on its way to the client.
    size_t slot = 0;
    std::function<void(Status)> acked;
    if (acks != 0) {
      slot = completion->Await(i);
      acked = [slot, completion, metrics,
               appended_at = std::chrono::steady_clock::now()](Status s) {
        metrics->RecordDurable(appended_at);
        completion->Durable(slot, s);
      };
    }
    storage::ProducerCheck refusal = storage::ProducerCheck::kAppend;
    auto appended = part->Append(std::span<char>(records->data(), records->size()), acks,
                                 std::move(acked), &refusal);
    if (!appended.ok()) {
      if (acks != 0) completion->Abandon(slot);
      const Status& s = appended.status();
      r->set_error(refusal != storage::ProducerCheck::kAppend ? ProducerRefusalError(refusal)
                                                               : AppendError(s));
      if (r->error() == v1::NOT_LEADER) {
        FillLeaderHint(ctx, data->topic(), data->partition(), r->mutable_leader());
      }
      r->set_error_message(s.message());
      continue;
    }
    if (appended->duplicate) {
      metrics->AddDuplicateBatch();
    } else {
      metrics->AddBytesIn(records->size());
      part->CountProduced(records->size(), static_cast<uint64_t>(appended->last_offset.value() -
                                                                 appended->base_offset.value() + 1));
    }
    // A duplicate has no append time of its own (Kafka answers -1 too).
    const int64_t append_time_ms = limits.log_append_time && !appended->duplicate ? NowMs() : -1;
    if (acks != 0) {
      completion->Appended(slot, appended->base_offset, appended->last_offset,
                           part->log().log_start_offset(), append_time_ms);
    } else {
      r->set_base_offset(appended->base_offset.value());
      r->set_last_offset(appended->last_offset.value());
      r->set_log_start_offset(part->log().log_start_offset().value());
      if (append_time_ms >= 0) r->set_log_append_time_ms(append_time_ms);
    }
  }
  completion->Release(ProduceTimeout(*ctx.config, *req), completion);
  return grpc::Status::OK;
}

}  // namespace rill::broker
