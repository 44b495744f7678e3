#include "api/consumer_service.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <memory>
#include <mutex>

#include "api/wire_errors.h"
#include "partition/long_poll.h"

namespace rill::broker {

size_t ReadPartition(const ServiceContext& ctx, Partition* part, int64_t offset, size_t max_bytes,
                     v1::FetchPartitionResult* result, int64_t* next_offset) {
  if (next_offset) *next_offset = offset;
  if (part->role() != PartitionRole::kLeader) {
    result->set_error(v1::NOT_LEADER);
    result->set_error_message("this broker does not lead " + part->topic() + "-" +
                              std::to_string(part->partition()));
    FillLeaderHint(ctx, part->topic(), part->partition(), result->mutable_leader());
    return 0;
  }
  const Offset hw = part->high_watermark();
  const Offset start = part->log().log_start_offset();
  const Offset end = part->log().log_end_offset();
  result->set_high_watermark(hw.value());
  result->set_log_start_offset(start.value());
  // Out of range means outside the log (Kafka's rule), not above the high watermark: a new
  // leader's high watermark trails what consumers already read until its followers fetch, and
  // calling their positions out of range would make them rewind (tests/fault/README.md, bug 1).
  // Between the high watermark and the log end nothing is served yet: an empty answer (a long
  // poll waits for the high watermark).
  if (offset < start.value() || offset > std::max(hw, end).value()) {
    result->set_error(v1::OFFSET_OUT_OF_RANGE);
    result->set_error_message("offset " + std::to_string(offset) + " is outside [" +
                              std::to_string(start.value()) + ", " +
                              std::to_string(std::max(hw, end).value()) + "]");
    return 0;
  }
  if (offset >= hw.value() || max_bytes == 0) return 0;
  auto read = part->log().Read(Offset(offset), max_bytes, hw);
  if (!read.ok()) {
    result->set_error(ReadError(read.status()));
    result->set_error_message(read.status().message());
    return 0;
  }
  size_t n = read->data.size();
  if (next_offset) *next_offset = read->next_offset.value();
  result->set_records(std::move(read->data));
  ctx.metrics->AddBytesOut(n);
  part->CountFetched(
      n, static_cast<uint64_t>(std::max<int64_t>(0, read->next_offset.value() - offset)));
  return n;
}

namespace {

grpc::Status ValidateFetchPartitions(
    const google::protobuf::RepeatedPtrField<v1::FetchPartition>& parts, const char* field) {
  for (int i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    std::string where = std::string(field) + "[" + std::to_string(i) + "]";
    if (p.topic().empty()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, where + ".topic is empty"};
    }
    if (p.partition() < 0) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              where + ".partition is negative (" + std::to_string(p.partition()) + ")"};
    }
    if (p.partition_max_bytes() < 0) {
      return {grpc::StatusCode::INVALID_ARGUMENT, where + ".partition_max_bytes is negative"};
    }
  }
  return grpc::Status::OK;
}

// One Fetch: the request, its resolved partitions and the response being built.
struct FetchCall {
  ServiceContext* ctx;
  grpc::ServerUnaryReactor* reactor;
  const v1::FetchRequest* request;
  v1::FetchResponse* response;
  std::vector<std::shared_ptr<Partition>> parts;  // per request partition; null if not local
  std::chrono::steady_clock::time_point start;

  // Builds the response from scratch; true when it is complete (min_bytes met, an error to
  // report, final, or shutting down). Finishes the call then.
  bool Attempt(bool final) {
    const auto attempt_start = std::chrono::steady_clock::now();
    response->Clear();
    const size_t max_bytes = request->max_bytes() > 0
                                 ? std::min<size_t>(request->max_bytes(), ctx->config->fetch_max_bytes)
                                 : ctx->config->fetch_max_bytes;
    size_t total = 0;
    bool error = false;
    for (int i = 0; i < request->partitions_size(); ++i) {
      const auto& fp = request->partitions(i);
      auto* r = response->add_partitions();
      r->set_topic(fp.topic());
      r->set_partition(fp.partition());
      r->set_high_watermark(-1);
      r->set_log_start_offset(-1);
      if (!parts[i]) {
        std::string msg;
        r->set_error(MissingPartitionError(*ctx, fp.topic(), fp.partition(), &msg,
                                           r->mutable_leader()));
        r->set_error_message(std::move(msg));
        error = true;
        continue;
      }
      size_t pmax = fp.partition_max_bytes() > 0 ? fp.partition_max_bytes()
                                                 : ctx->config->fetch_partition_max_bytes;
      size_t budget = total >= max_bytes ? 0 : std::min(pmax, max_bytes - total);
      total += ReadPartition(*ctx, parts[i].get(), fp.fetch_offset(), budget, r, nullptr);
      if (r->error() != v1::NONE) error = true;
    }
    const bool complete = final || error || ctx->stopping.load(std::memory_order_acquire) ||
                          total >= static_cast<size_t>(std::max(1, request->min_bytes()));
    if (complete) {
      ctx->metrics->RecordFetch(start, attempt_start);
      ctx->metrics->RecordRequest(Api::kFetch, start, false);
      reactor->Finish(grpc::Status::OK);
    }
    return complete;
  }
};

}  // namespace

grpc::ServerUnaryReactor* ConsumerService::Fetch(grpc::CallbackServerContext* context,
                                                 const v1::FetchRequest* request,
                                                 v1::FetchResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto start = std::chrono::steady_clock::now();
  grpc::Status st;
  if (request->max_wait_ms() < 0) {
    st = {grpc::StatusCode::INVALID_ARGUMENT, "max_wait_ms is negative"};
  } else if (request->min_bytes() < 0) {
    st = {grpc::StatusCode::INVALID_ARGUMENT, "min_bytes is negative"};
  } else if (request->max_bytes() < 0) {
    st = {grpc::StatusCode::INVALID_ARGUMENT, "max_bytes is negative"};
  } else {
    st = ValidateFetchPartitions(request->partitions(), "partitions");
  }
  if (!st.ok()) {
    ctx_->metrics->RecordRequest(Api::kFetch, start, true);
    reactor->Finish(st);
    return reactor;
  }
  auto call = std::make_shared<FetchCall>();
  call->ctx = ctx_;
  call->reactor = reactor;
  call->request = request;
  call->response = response;
  call->start = start;
  std::vector<std::shared_ptr<Partition>> watch;
  for (const auto& fp : request->partitions()) {
    call->parts.push_back(ctx_->partitions->Get(fp.topic(), fp.partition()));
    if (call->parts.back()) watch.push_back(call->parts.back());
  }
  auto wait = std::chrono::milliseconds(std::min(request->max_wait_ms(), ctx_->config->fetch_max_wait_ms));
  if (ctx_->stopping.load()) wait = std::chrono::milliseconds(0);
  LongPoll::Start(*ctx_->io, std::move(watch), wait,
                  [call](bool final) { return call->Attempt(final); });
  return reactor;
}

namespace {

// The state of one Subscribe stream, shared with the partitions' waiter lists (weakly) and with
// posted push attempts. The reactor is deleted in OnDone; `reactor` is cleared then, under mu.
class SubscribeState final : public HighWatermarkWaiter,
                             public std::enable_shared_from_this<SubscribeState> {
 public:
  struct Cursor {
    std::shared_ptr<Partition> part;
    std::string topic;
    int32_t partition;
    int64_t offset;
  };

  explicit SubscribeState(ServiceContext* ctx) : ctx_(ctx) {}

  void OnHighWatermark() override {
    boost::asio::post(*ctx_->io, [self = shared_from_this()] { self->TryPush(); });
  }

  // Sends what credit allows, or parks on the partitions. Any thread.
  void TryPush();

  ServiceContext* const ctx_;
  std::mutex mu;
  grpc::ServerBidiReactor<v1::SubscribeRequest, v1::SubscribeResponse>* reactor = nullptr;
  bool started = false;
  bool read_done = false;
  bool writing = false;
  bool finished = false;
  int64_t credit = 0;
  size_t max_per_message = 0;
  size_t next_cursor = 0;  // round-robin start
  std::vector<Cursor> cursors;
  std::vector<v1::FetchPartitionResult> pending_errors;  // sent with the next message
  v1::SubscribeResponse response;  // the message being written

  // Finishes the stream once (caller holds mu; the reactor is alive).
  void FinishLocked(grpc::Status st) {
    if (finished || reactor == nullptr) return;
    finished = true;
    reactor->Finish(st);
  }
};

void SubscribeState::TryPush() {
  std::lock_guard lock(mu);
  if (finished || reactor == nullptr || writing || !started) return;
  if (ctx_->stopping.load(std::memory_order_acquire)) {
    FinishLocked({grpc::StatusCode::UNAVAILABLE, "broker is shutting down"});
    return;
  }
  response.Clear();
  for (auto& e : pending_errors) *response.add_partitions() = std::move(e);
  pending_errors.clear();
  if (credit > 0 && !cursors.empty()) {
    // Register before reading so that an append racing with the read still wakes us.
    for (const auto& c : cursors) c.part->AddWaiter(weak_from_this());
    int64_t budget = std::min<int64_t>(credit, static_cast<int64_t>(max_per_message));
    const size_t n = cursors.size();
    std::vector<size_t> dead;
    for (size_t k = 0; k < n && budget > 0; ++k) {
      size_t i = (next_cursor + k) % n;
      Cursor& c = cursors[i];
      v1::FetchPartitionResult r;
      r.set_topic(c.topic);
      r.set_partition(c.partition);
      int64_t next = c.offset;
      size_t got = ReadPartition(*ctx_, c.part.get(), c.offset, static_cast<size_t>(budget), &r, &next);
      if (r.error() != v1::NONE) {
        dead.push_back(i);
        *response.add_partitions() = std::move(r);
        continue;
      }
      if (got == 0) continue;
      c.offset = next;
      budget -= static_cast<int64_t>(got);
      credit -= static_cast<int64_t>(got);
      *response.add_partitions() = std::move(r);
    }
    next_cursor = (next_cursor + 1) % n;
    std::sort(dead.rbegin(), dead.rend());
    for (size_t i : dead) cursors.erase(cursors.begin() + static_cast<long>(i));
  }
  if (response.partitions_size() == 0) {
    if (read_done && cursors.empty()) FinishLocked(grpc::Status::OK);
    return;  // parked: a high-watermark move or new credit calls TryPush again
  }
  writing = true;
  ctx_->metrics->RecordRequest(Api::kSubscribe, std::chrono::steady_clock::now(), false);
  reactor->StartWrite(&response);
}

class SubscribeReactor final
    : public grpc::ServerBidiReactor<v1::SubscribeRequest, v1::SubscribeResponse> {
 public:
  explicit SubscribeReactor(ServiceContext* ctx) : state_(std::make_shared<SubscribeState>(ctx)) {
    state_->reactor = this;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    ServiceContext* ctx = state_->ctx_;
    {
      std::lock_guard lock(state_->mu);
      if (!ok) {
        // The client half-closed or went away: stop pushing.
        state_->read_done = true;
        if (!state_->writing) state_->FinishLocked(grpc::Status::OK);
        return;
      }
      if (request_.has_start()) {
        const auto& start = request_.start();
        if (state_->started) {
          state_->FinishLocked({grpc::StatusCode::INVALID_ARGUMENT, "start sent twice"});
          return;
        }
        grpc::Status st = ValidateFetchPartitions(start.partitions(), "start.partitions");
        if (st.ok() && start.max_bytes_per_message() < 0) {
          st = {grpc::StatusCode::INVALID_ARGUMENT, "start.max_bytes_per_message is negative"};
        }
        if (!st.ok()) {
          state_->FinishLocked(st);
          return;
        }
        state_->max_per_message =
            start.max_bytes_per_message() > 0
                ? std::min<size_t>(start.max_bytes_per_message(), ctx->config->fetch_max_bytes)
                : ctx->config->fetch_max_bytes;
        for (const auto& fp : start.partitions()) {
          auto part = ctx->partitions->Get(fp.topic(), fp.partition());
          if (!part) {
            v1::FetchPartitionResult r;
            r.set_topic(fp.topic());
            r.set_partition(fp.partition());
            r.set_high_watermark(-1);
            r.set_log_start_offset(-1);
            std::string msg;
            r.set_error(MissingPartitionError(*ctx, fp.topic(), fp.partition(), &msg,
                                              r.mutable_leader()));
            r.set_error_message(std::move(msg));
            state_->pending_errors.push_back(std::move(r));
            continue;
          }
          state_->cursors.push_back({std::move(part), fp.topic(), fp.partition(), fp.fetch_offset()});
        }
        state_->started = true;
      } else if (request_.has_credit()) {
        if (request_.credit().bytes() <= 0) {
          state_->FinishLocked({grpc::StatusCode::INVALID_ARGUMENT, "credit.bytes must be > 0"});
          return;
        }
        state_->credit += request_.credit().bytes();
      } else {
        state_->FinishLocked({grpc::StatusCode::INVALID_ARGUMENT,
                              "a SubscribeRequest needs start or credit"});
        return;
      }
    }
    StartRead(&request_);
    state_->TryPush();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(state_->mu);
      state_->writing = false;
      if (!ok) {
        state_->FinishLocked({grpc::StatusCode::CANCELLED, "write failed"});
        return;
      }
      if (state_->read_done) {
        state_->FinishLocked(grpc::Status::OK);
        return;
      }
    }
    state_->TryPush();
  }

  void OnDone() override {
    {
      std::lock_guard lock(state_->mu);
      state_->reactor = nullptr;
      state_->finished = true;
    }
    delete this;
  }

 private:
  std::shared_ptr<SubscribeState> state_;
  v1::SubscribeRequest request_;
};

}  // namespace

grpc::ServerBidiReactor<v1::SubscribeRequest, v1::SubscribeResponse>* ConsumerService::Subscribe(
    grpc::CallbackServerContext* context) {
  return new SubscribeReactor(ctx_);
}

grpc::ServerUnaryReactor* ConsumerService::ListOffsets(grpc::CallbackServerContext* context,
                                                       const v1::ListOffsetsRequest* request,
                                                       v1::ListOffsetsResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < request->partitions_size(); ++i) {
    const auto& p = request->partitions(i);
    std::string where = "partitions[" + std::to_string(i) + "]";
    if (p.topic().empty() || p.partition() < 0 || p.timestamp() < -2) {
      ctx_->metrics->RecordRequest(Api::kListOffsets, start, true);
      reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT,
                       where + (p.topic().empty()    ? ".topic is empty"
                                : p.partition() < 0 ? ".partition is negative"
                                                    : ".timestamp must be -1, -2 or >= 0")});
      return reactor;
    }
  }
  for (const auto& p : request->partitions()) {
    auto* r = response->add_partitions();
    r->set_topic(p.topic());
    r->set_partition(p.partition());
    r->set_offset(-1);
    r->set_timestamp(-1);
    auto part = ctx_->partitions->Get(p.topic(), p.partition());
    if (!part) {
      std::string msg;
      r->set_error(MissingPartitionError(*ctx_, p.topic(), p.partition(), &msg, r->mutable_leader()));
      r->set_error_message(std::move(msg));
      continue;
    }
    if (part->role() != PartitionRole::kLeader) {
      r->set_error(v1::NOT_LEADER);
      FillLeaderHint(*ctx_, p.topic(), p.partition(), r->mutable_leader());
      continue;
    }
    const Offset hw = part->high_watermark();
    if (p.timestamp() == -1) {
      r->set_offset(hw.value());
    } else if (p.timestamp() == -2) {
      r->set_offset(part->log().log_start_offset().value());
    } else {
      // The first record with timestamp >= the request's, and that record's timestamp (Kafka's
      // semantics); offset and timestamp -1 when there is none below the high watermark.
      auto found = part->log().FindOffsetForTimestamp(p.timestamp());
      if (!found.ok()) {
        r->set_error(ReadError(found.status()));
        r->set_error_message(found.status().message());
      } else if (found->offset.value() >= 0 && found->offset < hw) {
        r->set_offset(found->offset.value());
        r->set_timestamp(found->timestamp_ms);
      }
    }
  }
  ctx_->metrics->RecordRequest(Api::kListOffsets, start, false);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace rill::broker
