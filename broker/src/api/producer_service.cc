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
  std::shared_ptr<ProduceReadGate> gate = gate_;
  if (!gate->Admit(bytes)) {
    ctx->metrics->RecordRequest(Api::kProduce, start, true);
    reactor->Finish({grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "broker has " + std::to_string(gate->in_flight()) +
                         " produce bytes in flight (limits.max_inflight_produce_bytes " +
                         std::to_string(ctx->config->max_inflight_produce_bytes) + "); retry"});
    return reactor;
  }
  ctx->inflight_produce_requests.fetch_add(1, std::memory_order_acq_rel);
  // The request's bytes are appended in place (offsets stamped): the request is ours to mutate
  // until Finish, and nothing else reads it.
  auto* mutable_request = const_cast<v1::ProduceRequest*>(request);
  grpc::Status st = HandleProduce(*ctx, deadlines_, mutable_request, response, [=] {
    gate->Release(bytes);
    ctx->metrics->RecordRequest(Api::kProduce, start, false);
    reactor->Finish(grpc::Status::OK);
    ctx->inflight_produce_requests.fetch_sub(1, std::memory_order_acq_rel);
  });
  if (!st.ok()) {
    gate->Release(bytes);
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
// and reads the next while the stream's in-flight bytes are under their bound and the broker's
// have room for it (ProduceReadGate: otherwise it waits in line for answers to free room).
// Completions arrive in any order (on storage threads) and queue their responses; one write is
// outstanding at a time. The reactor finishes when the client has half-closed and every request
// is answered, and deletes itself in OnDone.
class ProduceStreamReactor final
    : public grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>,
      public ProduceReadGate::Reader {
 public:
  ProduceStreamReactor(ServiceContext* ctx, std::shared_ptr<ProduceDeadlines> deadlines,
                       std::shared_ptr<ProduceReadGate> gate)
      : ctx_(ctx), deadlines_(std::move(deadlines)), gate_(std::move(gate)) {
    // The first read waits for room too: a burst of new streams must not bring a request each.
    // (A resume may come on another thread before gRPC has the reactor: gRPC keeps the read
    // until then.)
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      gate_->EndRead(this, 0);
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
      last_request_bytes_ = bytes;
    }
    gate_->EndRead(this, bytes);  // the request's bytes replace what was reserved for it
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
      gate_->Release(bytes);
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
      read_more = !read_done_ && UnderStreamBoundLocked();
      if (!read_more) read_paused_ = true;
    }
    if (read_more) ReadNext();
  }

  // ProduceReadGate: room was reserved for the next request.
  void ResumeRead() override { StartNextRead(); }

  // A stream waiting in the gate's line has no read open to fail: it leaves the line and ends
  // here, once what it has in flight is answered. (Otherwise its open read fails and ends it.)
  void OnCancel() override {
    if (!gate_->Withdraw(this)) return;
    std::unique_lock lock(mu_);
    read_done_ = true;
    MaybeFinishLocked(lock);
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
  bool UnderStreamBoundLocked() const {
    return inflight_requests_ == 0 ||  // always allow one request to make progress
           inflight_bytes_ < ctx_->config->max_inflight_produce_bytes_per_stream;
  }

  // Reads the next request once the broker's bound has room for it: now, or when the gate
  // resumes us. Expected to be as large as this stream's last (for its first, the gate takes
  // the last any stream read).
  void ReadNext() {
    int64_t expected;
    {
      std::lock_guard lock(mu_);
      expected = last_request_bytes_;
    }
    if (gate_->Reserve(this, expected)) StartNextRead();
  }

  void StartNextRead() {
    reading_ = std::make_unique<v1::ProduceRequest>();
    StartRead(reading_.get());
  }

  void Complete(std::unique_ptr<v1::ProduceResponse> resp, int64_t bytes) {
    ServiceContext* const ctx = ctx_;  // `this` may be deleted once Finish is called below
    gate_->Release(bytes);
    std::unique_lock lock(mu_);
    inflight_bytes_ -= bytes;
    --inflight_requests_;
    bool resume = false;
    if (read_paused_ && !read_done_ && UnderStreamBoundLocked()) {
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
    if (resume) ReadNext();
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
  const std::shared_ptr<ProduceReadGate> gate_;
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
  int64_t last_request_bytes_ = 0;  // what the next request is expected to be
  grpc::Status final_status_;
};

}  // namespace

grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* ProducerService::ProduceStream(
    grpc::CallbackServerContext* context) {
  return new ProduceStreamReactor(ctx_, deadlines_, gate_);
}

}  // namespace rill::broker
