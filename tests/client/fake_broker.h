#pragma once

// FakeBroker: a real grpc::Server on 127.0.0.1:<free port> implementing Metadata, Producer and
// Consumer in memory, with injectable failures, for the client library's tests. Alone, one broker
// (node 1) leads every partition. Several fake brokers act as one cluster when each is given the
// same view (SetBrokers, SetLeader) and its own SetNodeId; each keeps its own logs (append the
// same batches to two of them for a replicated partition). Thread-safe.

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "rill/client/types.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/record_batch.h"
#include "rill/v1/consumer.grpc.pb.h"
#include "rill/v1/metadata.grpc.pb.h"
#include "rill/v1/producer.grpc.pb.h"

namespace rill::client::testing {

class FakeBroker final : public v1::Metadata::Service,
                         public v1::Producer::Service,
                         public v1::Consumer::Service {
 public:
  // `extra`, when given, is served too (e.g. a fake Groups coordinator); it must outlive this.
  explicit FakeBroker(grpc::Service* extra = nullptr) {
    grpc::ServerBuilder b;
    if (extra != nullptr) b.RegisterService(extra);
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.SetMaxReceiveMessageSize(-1);
    b.RegisterService(static_cast<v1::Metadata::Service*>(this));
    b.RegisterService(static_cast<v1::Producer::Service*>(this));
    b.RegisterService(static_cast<v1::Consumer::Service*>(this));
    server_ = b.BuildAndStart();
  }
  ~FakeBroker() override { Shutdown(); }

  void Shutdown() {
    {
      std::lock_guard lk(mu_);
      shutting_down_ = true;
    }
    cv_.notify_all();
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server_.reset();
    }
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void AddTopic(const std::string& name, int partitions) {
    std::lock_guard lk(mu_);
    topics_[name] = partitions;
  }

  // This broker's node id (1 by default).
  void SetNodeId(int32_t id) {
    std::lock_guard lk(mu_);
    node_id_ = id;
  }
  // The brokers metadata lists, node id -> "host:port" (by default only this one).
  void SetBrokers(std::map<int32_t, std::string> addresses) {
    std::lock_guard lk(mu_);
    brokers_ = std::move(addresses);
  }
  // Moves the leadership of `tp` (node 1 by default). A broker answers Fetch and ListOffsets of a
  // partition it does not lead with NOT_LEADER; a long poll waiting here ends at once.
  void SetLeader(const TopicPartition& tp, int32_t node) {
    {
      std::lock_guard lk(mu_);
      leaders_[tp] = node;
    }
    cv_.notify_all();
  }
  // Fetch requests that asked for `tp`, and NOT_LEADER answers given for it (Fetch, ListOffsets).
  int fetches_of(const TopicPartition& tp) const {
    std::lock_guard lk(mu_);
    auto it = fetches_of_.find(tp);
    return it == fetches_of_.end() ? 0 : it->second;
  }
  int not_leader_answers(const TopicPartition& tp) const {
    std::lock_guard lk(mu_);
    auto it = not_leader_answers_.find(tp);
    return it == not_leader_answers_.end() ? 0 : it->second;
  }

  // Failure injection: the next `n` produce requests get `code` for every partition.
  void FailNextProduces(int n, v1::ErrorCode code) {
    std::lock_guard lk(mu_);
    fail_produces_ = n;
    fail_code_ = code;
  }
  // Fails the entries of partition `tp` in the next `n` produce requests that carry it (the
  // request's other entries are appended): a partly failed response.
  void FailNextProducesOf(const TopicPartition& tp, int n, v1::ErrorCode code) {
    std::lock_guard lock(mu_);
    fail_partition_[tp] = {n, code};
  }
  // The next `n` ProduceStream calls end with gRPC UNAVAILABLE after reading one request.
  void BreakNextStreams(int n) {
    std::lock_guard lk(mu_);
    break_streams_ = n;
  }
  // Answers InitProducerId (producer id 1, epoch 0) instead of UNIMPLEMENTED, so a producer
  // turns idempotence on. The fake never checks sequences: it appends whatever comes.
  void OfferProducerIds() {
    std::lock_guard lk(mu_);
    offer_producer_ids_ = true;
  }
  // While true, produce requests are read but never answered.
  void SetSilent(bool silent) {
    std::lock_guard lk(mu_);
    silent_ = silent;
  }

  int produce_requests() const {
    std::lock_guard lk(mu_);
    return produce_requests_;
  }
  int metadata_requests() const {
    std::lock_guard lk(mu_);
    return metadata_requests_;
  }
  // timeout_ms of the last produce request received.
  int32_t last_produce_timeout_ms() const {
    std::lock_guard lk(mu_);
    return last_produce_timeout_ms_;
  }
  int64_t end_offset(const TopicPartition& tp) const {
    std::lock_guard lk(mu_);
    auto it = logs_.find(tp);
    return it == logs_.end() ? 0 : it->second.end;
  }
  // Every stored record of a partition, decoded, in offset order.
  std::vector<batch::Record> Records(const TopicPartition& tp) const {
    std::lock_guard lk(mu_);
    std::vector<batch::Record> out;
    auto it = logs_.find(tp);
    if (it == logs_.end()) return out;
    for (const auto& b : it->second.batches) {
      auto rs = batch::DecodeRecords(b);
      if (!rs.ok()) continue;
      for (auto& r : *rs) out.push_back(std::move(r));
    }
    return out;
  }
  // Appends a batch directly (for consumer tests); returns its base offset.
  int64_t AppendBatch(const TopicPartition& tp, std::string batch) {
    std::lock_guard lk(mu_);
    int64_t base = AppendLocked(tp, std::move(batch));
    cv_.notify_all();
    return base;
  }
  void SetLogStart(const TopicPartition& tp, int64_t start) {
    std::lock_guard lk(mu_);
    logs_[tp].start = start;
  }

  // Metadata
  grpc::Status Get(grpc::ServerContext*, const v1::MetadataRequest* req,
                   v1::MetadataResponse* resp) override {
    std::lock_guard lk(mu_);
    ++metadata_requests_;
    resp->set_cluster_id("fake");
    resp->set_controller_id(1);
    if (brokers_.empty()) {
      auto* b = resp->add_brokers();
      b->set_node_id(node_id_);
      b->set_host("127.0.0.1");
      b->set_port(port_);
    }
    for (const auto& [id, address] : brokers_) {
      auto* b = resp->add_brokers();
      b->set_node_id(id);
      b->set_host(address.substr(0, address.rfind(':')));
      b->set_port(std::stoi(address.substr(address.rfind(':') + 1)));
    }
    std::vector<std::string> names(req->topics().begin(), req->topics().end());
    if (names.empty()) {
      for (const auto& [n, p] : topics_) names.push_back(n);
    }
    for (const auto& n : names) {
      auto* t = resp->add_topics();
      t->set_name(n);
      auto it = topics_.find(n);
      if (it == topics_.end()) {
        t->set_error(v1::UNKNOWN_TOPIC);
        t->set_error_message("topic '" + n + "' does not exist");
        continue;
      }
      for (int p = 0; p < it->second; ++p) {
        const int32_t leader = LeaderLocked({n, p});
        auto* pm = t->add_partitions();
        pm->set_partition(p);
        pm->set_leader_id(leader);
        pm->add_replicas(leader);
        pm->add_isr(leader);
      }
    }
    return grpc::Status::OK;
  }

  // Producer
  grpc::Status ProduceStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::ProduceResponse, v1::ProduceRequest>* stream) override {
    v1::ProduceRequest req;
    while (stream->Read(&req)) {
      v1::ProduceResponse resp;
      {
        std::lock_guard lk(mu_);
        ++produce_requests_;
        last_produce_timeout_ms_ = req.timeout_ms();
        if (break_streams_ > 0) {
          --break_streams_;
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "injected stream failure");
        }
        if (silent_) continue;
        HandleProduceLocked(req, &resp);
      }
      cv_.notify_all();
      if (req.acks() != 0) stream->Write(resp);
    }
    return grpc::Status::OK;
  }

  grpc::Status InitProducerId(grpc::ServerContext*, const v1::InitProducerIdRequest*,
                              v1::InitProducerIdResponse* resp) override {
    std::lock_guard lk(mu_);
    if (!offer_producer_ids_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
    resp->set_producer_id(1);
    resp->set_producer_epoch(0);
    return grpc::Status::OK;
  }

  grpc::Status Produce(grpc::ServerContext*, const v1::ProduceRequest* req,
                       v1::ProduceResponse* resp) override {
    std::lock_guard lk(mu_);
    ++produce_requests_;
    HandleProduceLocked(*req, resp);
    cv_.notify_all();
    return grpc::Status::OK;
  }

  // Consumer
  grpc::Status Fetch(grpc::ServerContext* ctx, const v1::FetchRequest* req,
                     v1::FetchResponse* resp) override {
    std::unique_lock lk(mu_);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(req->max_wait_ms());
    for (const auto& fp : req->partitions()) ++fetches_of_[{fp.topic(), fp.partition()}];
    while (true) {
      resp->Clear();
      bool any = false;
      for (const auto& fp : req->partitions()) {
        TopicPartition tp{fp.topic(), fp.partition()};
        auto* r = resp->add_partitions();
        r->set_topic(fp.topic());
        r->set_partition(fp.partition());
        auto t = topics_.find(fp.topic());
        if (t == topics_.end() || fp.partition() >= t->second) {
          r->set_error(v1::UNKNOWN_TOPIC);
          r->set_error_message("topic '" + fp.topic() + "' does not exist");
          any = true;
          continue;
        }
        if (NotLeaderLocked(tp, r)) {
          any = true;
          continue;
        }
        Log& log = logs_[tp];
        r->set_high_watermark(log.end);
        r->set_log_start_offset(log.start);
        if (fp.fetch_offset() < log.start || fp.fetch_offset() > log.end) {
          r->set_error(v1::OFFSET_OUT_OF_RANGE);
          any = true;
          continue;
        }
        std::string* out = r->mutable_records();
        for (size_t i = 0; i < log.batches.size(); ++i) {
          if (log.last[i] < fp.fetch_offset()) continue;
          if (!out->empty() &&
              out->size() + log.batches[i].size() > static_cast<size_t>(fp.partition_max_bytes())) {
            break;
          }
          out->append(log.batches[i]);
        }
        if (!out->empty()) any = true;
      }
      if (any || shutting_down_ || ctx->IsCancelled()) return grpc::Status::OK;
      if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) return grpc::Status::OK;
    }
  }

  grpc::Status ListOffsets(grpc::ServerContext*, const v1::ListOffsetsRequest* req,
                           v1::ListOffsetsResponse* resp) override {
    std::lock_guard lk(mu_);
    for (const auto& p : req->partitions()) {
      auto* r = resp->add_partitions();
      r->set_topic(p.topic());
      r->set_partition(p.partition());
      if (!topics_.count(p.topic())) {
        r->set_error(v1::UNKNOWN_TOPIC);
        continue;
      }
      if (NotLeaderLocked({p.topic(), p.partition()}, r)) continue;
      Log& log = logs_[{p.topic(), p.partition()}];
      if (p.timestamp() == -2) {
        r->set_offset(log.start);
      } else if (p.timestamp() == -1) {
        r->set_offset(log.end);
      } else {
        r->set_offset(-1);
        for (const auto& b : log.batches) {
          auto rs = batch::BatchReader::Open(b);
          batch::RecordView rv;
          bool found = false;
          while (rs.ok()) {
            auto more = rs->Next(&rv);
            if (!more.ok() || !*more) break;
            if (rv.timestamp_ms >= p.timestamp()) {
              r->set_offset(rv.offset);
              found = true;
              break;
            }
          }
          if (found) break;
        }
      }
    }
    return grpc::Status::OK;
  }

 private:
  struct Log {
    int64_t start = 0;
    int64_t end = 0;
    std::vector<std::string> batches;
    std::vector<int64_t> last;  // last offset of each batch
  };

  int32_t LeaderLocked(const TopicPartition& tp) const {
    auto it = leaders_.find(tp);
    return it == leaders_.end() ? 1 : it->second;
  }

  // Sets NOT_LEADER (with a hint) on `r` when this broker does not lead `tp`.
  template <typename Result>
  bool NotLeaderLocked(const TopicPartition& tp, Result* r) {
    const int32_t leader = LeaderLocked(tp);
    if (leader == node_id_) return false;
    ++not_leader_answers_[tp];
    r->set_error(v1::NOT_LEADER);
    r->set_error_message("node " + std::to_string(node_id_) + " does not lead " + tp.ToString());
    r->mutable_leader()->set_leader_id(leader);
    return true;
  }

  int64_t AppendLocked(const TopicPartition& tp, std::string batch) {
    Log& log = logs_[tp];
    const int64_t base = log.end;
    batch::SetBaseOffset(std::span<char>(batch.data(), batch.size()), base);
    batch::Header h = batch::DecodeHeader(batch.data());
    log.end = base + h.last_offset_delta + 1;
    log.last.push_back(log.end - 1);
    log.batches.push_back(std::move(batch));
    return base;
  }

  void HandleProduceLocked(const v1::ProduceRequest& req, v1::ProduceResponse* resp) {
    resp->set_request_id(req.request_id());
    const bool fail = fail_produces_ > 0;
    if (fail) --fail_produces_;
    std::set<TopicPartition> failed_in_request;
    for (const auto& pd : req.partitions()) {
      auto* r = resp->add_partitions();
      r->set_topic(pd.topic());
      r->set_partition(pd.partition());
      r->set_log_append_time_ms(-1);
      if (fail) {
        r->set_error(fail_code_);
        r->set_error_message("injected failure");
        continue;
      }
      TopicPartition tp{pd.topic(), pd.partition()};
      if (auto f = fail_partition_.find(tp); f != fail_partition_.end() && f->second.first > 0) {
        failed_in_request.insert(tp);
        r->set_error(f->second.second);
        r->set_error_message("injected failure of " + tp.ToString());
        continue;
      }
      batch::BatchIterator it(pd.records());
      int64_t first = -1, last = -1;
      while (it.Next()) {
        int64_t base = AppendLocked(tp, std::string(it.batch()));
        if (first < 0) first = base;
        last = logs_[tp].end - 1;
      }
      if (!it.status().ok() || first < 0) {
        r->set_error(v1::CORRUPT_BATCH);
        r->set_error_message(it.status().ToString());
        continue;
      }
      r->set_base_offset(first);
      r->set_last_offset(last);
    }
    for (const auto& tp : failed_in_request) --fail_partition_[tp].first;
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool shutting_down_ = false;
  std::map<std::string, int> topics_;
  std::map<TopicPartition, Log> logs_;
  int fail_produces_ = 0;
  std::map<TopicPartition, std::pair<int, v1::ErrorCode>> fail_partition_;
  v1::ErrorCode fail_code_ = v1::NONE;
  int break_streams_ = 0;
  bool silent_ = false;
  bool offer_producer_ids_ = false;
  int produce_requests_ = 0;
  int32_t last_produce_timeout_ms_ = -1;
  int metadata_requests_ = 0;
  int32_t node_id_ = 1;
  std::map<int32_t, std::string> brokers_;
  std::map<TopicPartition, int32_t> leaders_;  // partitions not led by node 1
  std::map<TopicPartition, int> fetches_of_;
  std::map<TopicPartition, int> not_leader_answers_;
};

}  // namespace rill::client::testing
