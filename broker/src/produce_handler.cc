#include "produce_handler.h"

#include <atomic>
#include <chrono>
#include <memory>

#include "rill/proto/batch_header.h"

namespace rill::broker {

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
      batch::SetLogAppendTime(
          std::span<char>(records->data() + it.position(), h.total_size()), append_time);
    }
  }
  if (!it.status().ok()) {
    *message = it.status().message();
    return v1::CORRUPT_BATCH;
  }
  return v1::NONE;
}

struct Completion {
  std::atomic<int> pending{1};
  std::function<void()> done;
  void Release() {
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) done();
  }
};

}  // namespace

grpc::Status HandleProduce(ServiceContext& ctx, v1::ProduceRequest* req,
                           v1::ProduceResponse* resp, std::function<void()> done) {
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
  auto completion = std::make_shared<Completion>();
  completion->done = std::move(done);
  Metrics* metrics = ctx.metrics;

  for (int i = 0; i < req->partitions_size(); ++i) {
    auto* data = req->mutable_partitions(i);
    auto* r = resp->mutable_partitions(i);
    auto part = ctx.partitions->Get(data->topic(), data->partition());
    if (!part) {
      std::string msg;
      r->set_error(MissingPartitionError(ctx, data->topic(), data->partition(), &msg,
                                         r->mutable_leader()));
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
    if (ec != v1::NONE) {
      r->set_error(ec);
      r->set_error_message(std::move(msg));
      continue;
    }
    auto appended = part->Append(std::span<char>(records->data(), records->size()));
    if (!appended.ok()) {
      const Status& s = appended.status();
      if (s.code() == StatusCode::kCorruption || s.code() == StatusCode::kInvalidArgument) {
        r->set_error(v1::CORRUPT_BATCH);
      } else if (s.code() == StatusCode::kUnavailable) {
        r->set_error(v1::NOT_LEADER);
        FillLeaderHint(ctx, data->topic(), data->partition(), r->mutable_leader());
      } else {
        r->set_error(v1::STORAGE_ERROR);
      }
      r->set_error_message(s.message());
      continue;
    }
    metrics->AddBytesIn(records->size());
    r->set_base_offset(appended->base_offset.value());
    r->set_last_offset(appended->last_offset.value());
    r->set_log_start_offset(part->log().log_start_offset().value());
    if (limits.log_append_time) r->set_log_append_time_ms(NowMs());

    // Durability wakes consumers (the high watermark moved) and, for acks != 0, completes.
    if (acks != 0) completion->pending.fetch_add(1, std::memory_order_relaxed);
    auto appended_at = std::chrono::steady_clock::now();
    part->log().OnDurable(appended->last_offset + 1,
                          [part, r, acks, completion, metrics, appended_at](Status s) {
                            metrics->RecordDurable(appended_at);
                            part->NotifyWaiters();
                            if (acks == 0) return;
                            if (!s.ok()) {
                              r->set_error(v1::STORAGE_ERROR);
                              r->set_error_message(s.ToString());
                            }
                            completion->Release();
                          });
  }
  completion->Release();
  return grpc::Status::OK;
}

}  // namespace rill::broker
