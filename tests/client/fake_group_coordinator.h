#pragma once

// FakeGroupCoordinator: an in-memory Groups service for one consumer group with one member, for
// the client's group consumer tests. The test sets the member's target assignment; every
// heartbeat answers with it (has_assignment) and bumps the epoch when it changed. Records every
// heartbeat and commit in order, so tests can check what the client reported when. Serve it with
// FakeBroker(&coordinator). Thread-safe.

#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "rill/client/types.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::client::testing {

class FakeGroupCoordinator final : public v1::Groups::Service {
 public:
  struct Event {
    enum Kind { kHeartbeat, kCommit } kind;
    std::string member_id;
    int32_t epoch = 0;
    std::set<TopicPartition> owned;             // heartbeats
    std::map<TopicPartition, int64_t> offsets;  // commits
  };

  void SetTarget(std::set<TopicPartition> target) {
    std::lock_guard lk(mu_);
    target_ = std::move(target);
  }
  void SetCommitted(const TopicPartition& tp, int64_t offset) {
    std::lock_guard lk(mu_);
    committed_[tp] = offset;
  }
  // The next heartbeat gets FENCED_MEMBER_EPOCH (the member must rejoin).
  void FenceNextHeartbeat() {
    std::lock_guard lk(mu_);
    fence_next_ = true;
  }
  // The next leave heartbeat (epoch < 0) gets COORDINATOR_NOT_AVAILABLE.
  void FailNextLeave() {
    std::lock_guard lk(mu_);
    fail_next_leave_ = true;
  }
  // While set, every heartbeat, commit and offset fetch gets COORDINATOR_NOT_AVAILABLE (and is
  // counted): a broker that is not the coordinator and cannot create __consumer_offsets.
  void SetUnavailable(bool unavailable) {
    std::lock_guard lk(mu_);
    unavailable_ = unavailable;
  }
  int unavailable_answers() const {
    std::lock_guard lk(mu_);
    return unavailable_answers_;
  }
  // Commits get FENCED_MEMBER_EPOCH while set.
  void FenceCommits(bool fence) {
    std::lock_guard lk(mu_);
    fence_commits_ = fence;
  }
  std::vector<Event> events() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  std::map<TopicPartition, int64_t> committed() const {
    std::lock_guard lk(mu_);
    return committed_;
  }

  grpc::Status GroupHeartbeat(grpc::ServerContext*, const v1::GroupHeartbeatRequest* req,
                              v1::GroupHeartbeatResponse* resp) override {
    std::lock_guard lk(mu_);
    if (UnavailableLocked(resp)) return grpc::Status::OK;
    Event e{Event::kHeartbeat, req->member_id(), req->member_epoch(), {}, {}};
    for (const auto& t : req->owned_partitions()) {
      for (int32_t p : t.partitions()) e.owned.insert({t.topic(), p});
    }
    events_.push_back(e);
    if (req->member_epoch() < 0) {  // leave
      if (fail_next_leave_) {
        fail_next_leave_ = false;
        resp->set_error(v1::COORDINATOR_NOT_AVAILABLE);
        resp->set_error_message("leave failed by the test");
      }
      return grpc::Status::OK;
    }
    if (fence_next_) {
      fence_next_ = false;
      resp->set_error(v1::FENCED_MEMBER_EPOCH);
      resp->set_error_message("fenced by the test");
      member_id_.clear();
      return grpc::Status::OK;
    }
    if (req->member_epoch() == 0) {
      member_id_ = "member-" + std::to_string(++joins_);
      epoch_++;
      sent_.clear();
    } else if (req->member_id() != member_id_) {
      resp->set_error(v1::UNKNOWN_MEMBER_ID);
      return grpc::Status::OK;
    }
    if (target_ != sent_) {
      epoch_++;
      sent_ = target_;
    }
    resp->set_member_id(member_id_);
    resp->set_member_epoch(epoch_);
    resp->set_heartbeat_interval_ms(50);
    resp->set_has_assignment(true);
    std::map<std::string, v1::TopicPartitions*> by_topic;
    for (const auto& tp : sent_) {
      auto& t = by_topic[tp.topic];
      if (t == nullptr) {
        t = resp->add_assignment();
        t->set_topic(tp.topic);
      }
      t->add_partitions(tp.partition);
    }
    return grpc::Status::OK;
  }

  grpc::Status CommitOffsets(grpc::ServerContext*, const v1::CommitOffsetsRequest* req,
                             v1::CommitOffsetsResponse* resp) override {
    std::lock_guard lk(mu_);
    if (UnavailableLocked(resp)) return grpc::Status::OK;
    Event e{Event::kCommit, req->member_id(), req->member_epoch(), {}, {}};
    for (const auto& o : req->offsets()) e.offsets[{o.topic(), o.partition()}] = o.offset();
    events_.push_back(e);
    if (fence_commits_ || req->member_id() != member_id_) {
      resp->set_error(v1::FENCED_MEMBER_EPOCH);
      resp->set_error_message("member " + req->member_id() + " is fenced");
      return grpc::Status::OK;
    }
    for (const auto& [tp, off] : e.offsets) committed_[tp] = off;
    return grpc::Status::OK;
  }

  grpc::Status FetchOffsets(grpc::ServerContext*, const v1::FetchOffsetsRequest* req,
                            v1::FetchOffsetsResponse* resp) override {
    std::lock_guard lk(mu_);
    if (UnavailableLocked(resp)) return grpc::Status::OK;
    for (const auto& t : req->partitions()) {
      for (int32_t p : t.partitions()) {
        auto* c = resp->add_offsets();
        c->set_topic(t.topic());
        c->set_partition(p);
        auto it = committed_.find({t.topic(), p});
        c->set_offset(it == committed_.end() ? -1 : it->second);
      }
    }
    return grpc::Status::OK;
  }

 private:
  template <typename Response>
  bool UnavailableLocked(Response* resp) {
    if (!unavailable_) return false;
    ++unavailable_answers_;
    resp->set_error(v1::COORDINATOR_NOT_AVAILABLE);
    resp->set_error_message("__consumer_offsets does not exist yet; retry");
    return true;
  }

  mutable std::mutex mu_;
  bool unavailable_ = false;
  int unavailable_answers_ = 0;
  std::set<TopicPartition> target_;
  std::set<TopicPartition> sent_;
  std::map<TopicPartition, int64_t> committed_;
  std::vector<Event> events_;
  std::string member_id_;
  int32_t epoch_ = 0;
  int joins_ = 0;
  bool fence_next_ = false;
  bool fence_commits_ = false;
  bool fail_next_leave_ = false;
};

}  // namespace rill::client::testing
