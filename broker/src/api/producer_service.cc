#include "api/producer_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

namespace rill::broker {

grpc::ServerUnaryReactor* ProducerService::Produce(grpc::CallbackServerContext* context,
                                                   const v1::ProduceRequest* request,
                                                   v1::ProduceResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto start = std::chrono::steady_clock::now();
  ServiceContext* ctx = ctx_;
  const int64_t bytes = ProduceBytes(*request);
  const int64_t before = ctx->inflight_produce_bytes.fetch_add(bytes, std::memory_order_acq_rel);
  if (before > 0 && before + bytes > ctx->config->max_inflight_produce_bytes) {
    ctx->inflight_produce_bytes.fetch_sub(bytes, std::memory_order_acq_rel);
    ctx->metrics->RecordRequest(Api::kProduce, start, true);
    reactor->Finish({grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "broker has " + std::to_string(before) +
                         " produce bytes in flight (limits.max_inflight_produce_bytes " +
                         std::to_string(ctx->config->max_inflight_produce_bytes) + "); retry"});
    return reactor;
  }
  ctx->metrics->AddInflightProduceBytes(bytes);
  ctx->inflight_produce_requests.fetch_add(1, std::memory_order_acq_rel);
  // The request's bytes are appended in place (offsets stamped): the request is ours to mutate
  // until Finish, and nothing else reads it.
  auto* mutable_request = const_cast<v1::ProduceRequest*>(request);
  grpc::Status st = HandleProduce(*ctx, deadlines_, mutable_request, response, [=] {
    ctx->inflight_produce_bytes.fetch_sub(bytes, std::memory_order_acq_rel);
    ctx->metrics->AddInflightProduceBytes(-bytes);
    ctx->metrics->RecordRequest(Api::kProduce, start, false);
    reactor->Finish(grpc::Status::OK);
    ctx->inflight_produce_requests.fetch_sub(1, std::memory_order_acq_rel);
  });
  if (!st.ok()) {
    ctx->inflight_produce_bytes.fetch_sub(bytes, std::memory_order_acq_rel);
    ctx->metrics->AddInflightProduceBytes(-bytes);
    ctx->metrics->RecordRequest(Api::kProduce, start, true);
    reactor->Finish(st);
    ctx->inflight_produce_requests.fetch_sub(1, std::memory_order_acq_rel);
  }
  return reactor;
}

grpc::ServerUnaryReactor* ProducerService::InitProducerId(
    grpc::CallbackServerContext* context, const v1::InitProducerIdRequest* request,
    v1::InitProducerIdResponse* response) {
  (void)request;
  auto* reactor = context->DefaultReactor();
  auto start = std::chrono::steady_clock::now();
  Metrics* metrics = ctx_->metrics;
  producer_ids_->Next([reactor, response, metrics, start](Result<int64_t> id) {
    if (id.ok()) {
      response->set_producer_id(*id);
      response->set_producer_epoch(0);
    } else {
      // The client retries: the controller may be electing, or this broker not registered yet.
      response->set_error(v1::COORDINATOR_NOT_AVAILABLE);
      response->set_error_message(id.status().message());
    }
    metrics->RecordRequest(Api::kInitProducerId, start, !id.ok());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

namespace {

// One ProduceStream. Reads one request at a time, handles it at once (appends are synchronous),
// and keeps reading while the stream's and the broker's in-flight bytes are under their bounds.
// Completions arrive in any order (on storage threads) and queue their responses; one write is
// outstanding at a time. The reactor finishes when the client has half-closed and every request
// is answered, and deletes itself in OnDone.
class ProduceStreamReactor final
    : public grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse> {
 public:
  ProduceStreamReactor(ServiceContext* ctx, std::shared_ptr<ProduceDeadlines> deadlines)
      : ctx_(ctx), deadlines_(std::move(deadlines)) {
    reading_ = std::make_unique<v1::ProduceRequest>();
    StartRead(reading_.get());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::unique_lock lock(mu_);
      read_done_ = true;
      MaybeFinishLocked(lock);
      return;
    }
    auto start = std::chrono::steady_clock::now();
    std::unique_ptr<v1::ProduceRequest> req = std::move(reading_);
    const int64_t bytes = ProduceBytes(*req);
    {
      std::lock_guard lock(mu_);
      inflight_bytes_ += bytes;
      ++inflight_requests_;
    }
    ctx_->inflight_produce_bytes.fetch_add(bytes, std::memory_order_acq_rel);
    ctx_->metrics->AddInflightProduceBytes(bytes);
    ctx_->inflight_produce_requests.fetch_add(1, std::memory_order_acq_rel);
    auto* resp = new v1::ProduceResponse();
    grpc::Status st = HandleProduce(*ctx_, deadlines_, req.get(), resp, [this, resp, bytes, start] {
      ctx_->metrics->RecordRequest(Api::kProduceStream, start, false);
      Complete(std::unique_ptr<v1::ProduceResponse>(resp), bytes);
    });
    req.reset();  // the bytes are in the log now
    if (!st.ok()) {
      delete resp;
      ctx_->metrics->RecordRequest(Api::kProduceStream, start, true);
      ctx_->inflight_produce_bytes.fetch_sub(bytes, std::memory_order_acq_rel);
      ctx_->metrics->AddInflightProduceBytes(-bytes);
      ctx_->inflight_produce_requests.fetch_sub(1, std::memory_order_acq_rel);
      std::unique_lock lock(mu_);
      inflight_bytes_ -= bytes;
      --inflight_requests_;
      // A malformed request ends the stream once earlier requests are answered.
      if (final_status_.ok()) final_status_ = st;
      read_done_ = true;
      MaybeFinishLocked(lock);
      return;
    }
    bool read_more;
    {
      std::lock_guard lock(mu_);
      read_more = !read_done_ && UnderBoundLocked();
      if (!read_more) read_paused_ = true;
    }
    if (read_more) StartNextRead();
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    write_queue_.pop_front();
    if (!ok) {
      write_broken_ = true;  // the client is gone; later responses are dropped
      write_queue_.clear();
    }
    if (!write_queue_.empty()) {
      const v1::ProduceResponse* next = write_queue_.front().get();
      lock.unlock();
      StartWrite(next);
      return;
    }
    writing_ = false;
    MaybeFinishLocked(lock);
  }

  void OnDone() override { delete this; }

 private:
  bool UnderBoundLocked() const {
    if (inflight_requests_ == 0) return true;  // always allow one request to make progress
    return inflight_bytes_ < ctx_->config->max_inflight_produce_bytes_per_stream &&
           ctx_->inflight_produce_bytes.load(std::memory_order_acquire) <
               ctx_->config->max_inflight_produce_bytes;
  }

  void StartNextRead() {
    reading_ = std::make_unique<v1::ProduceRequest>();
    StartRead(reading_.get());
  }

  void Complete(std::unique_ptr<v1::ProduceResponse> resp, int64_t bytes) {
    ServiceContext* const ctx = ctx_;  // `this` may be deleted once Finish is called below
    ctx_->inflight_produce_bytes.fetch_sub(bytes, std::memory_order_acq_rel);
    ctx_->metrics->AddInflightProduceBytes(-bytes);
    std::unique_lock lock(mu_);
    inflight_bytes_ -= bytes;
    --inflight_requests_;
    bool resume = false;
    if (read_paused_ && !read_done_ && UnderBoundLocked()) {
      read_paused_ = false;
      resume = true;
    }
    const v1::ProduceResponse* to_write = nullptr;
    if (!write_broken_) {
      write_queue_.push_back(std::move(resp));
      if (!writing_) {
        writing_ = true;
        to_write = write_queue_.front().get();
      }
    }
    if (to_write == nullptr) MaybeFinishLocked(lock);
    if (lock.owns_lock()) lock.unlock();
    if (resume) StartNextRead();
    if (to_write != nullptr) StartWrite(to_write);
    // Counted down once the response is queued (or dropped for a gone client).
    ctx->inflight_produce_requests.fetch_sub(1, std::memory_order_acq_rel);
  }

  // Finishes once reading is over, nothing is in flight and nothing is left to write.
  void MaybeFinishLocked(std::unique_lock<std::mutex>& lock) {
    if (finished_ || !read_done_ || inflight_requests_ > 0 || writing_) return;
    finished_ = true;
    grpc::Status st = final_status_;
    lock.unlock();
    Finish(st);
  }

  ServiceContext* const ctx_;
  const std::shared_ptr<ProduceDeadlines> deadlines_;
  std::unique_ptr<v1::ProduceRequest> reading_;  // owned by the outstanding read

  std::mutex mu_;
  std::deque<std::unique_ptr<v1::ProduceResponse>> write_queue_;  // front is being written
  bool writing_ = false;
  bool write_broken_ = false;
  bool read_done_ = false;
  bool read_paused_ = false;
  bool finished_ = false;
  int64_t inflight_bytes_ = 0;
  int inflight_requests_ = 0;
  grpc::Status final_status_;
};

}  // namespace

grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* ProducerService::ProduceStream(
    grpc::CallbackServerContext* context) {
  return new ProduceStreamReactor(ctx_, deadlines_);
}

}  // namespace rill::broker
