#include "group_membership.h"

#include <algorithm>
#include <utility>

namespace rill::client::internal {
namespace {

constexpr int32_t kErrInvalidRequest = 9;
constexpr int32_t kErrGroupIdNotFound = 22;

}  // namespace

GroupMembership::GroupMembership(GroupMembershipConfig config)
    : config_(std::move(config)), interval_ms_(config_.default_heartbeat_interval_ms) {}

Status GroupMembership::Subscribe(std::vector<std::string> topics) {
  if (state_ == State::kLeft) return Status::Failed("the consumer left its group (closed)");
  if (topics.empty()) return Status::InvalidArgument("subscribe needs at least one topic");
  for (const auto& t : topics) {
    if (t.empty()) return Status::InvalidArgument("subscribe: empty topic name");
  }
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  topics_ = std::move(topics);
  regex_.clear();
  subscription_dirty_ = true;
  send_now_ = true;
  if (state_ == State::kUnsubscribed) state_ = State::kJoining;
  return Status::OK();
}

Status GroupMembership::SubscribePattern(std::string regex) {
  if (state_ == State::kLeft) return Status::Failed("the consumer left its group (closed)");
  if (regex.empty()) return Status::InvalidArgument("subscribe: empty topic pattern");
  regex_ = std::move(regex);
  topics_.clear();
  subscription_dirty_ = true;
  send_now_ = true;
  if (state_ == State::kUnsubscribed) state_ = State::kJoining;
  return Status::OK();
}

int64_t GroupMembership::NextHeartbeatMs() const {
  if (in_flight_) return INT64_MAX;
  switch (state_) {
    case State::kJoining:
      return backoff_until_ms_;
    case State::kMember:
      if (send_now_) return backoff_until_ms_;
      return std::max(last_sent_ms_ + interval_ms_, backoff_until_ms_);
    case State::kUnsubscribed:
    case State::kFenced:
    case State::kLeft:
      return INT64_MAX;
  }
  return INT64_MAX;
}

HeartbeatRequest GroupMembership::MakeHeartbeat(int64_t now_ms) {
  HeartbeatRequest r;
  r.member_id = member_id_;
  r.member_epoch = state_ == State::kJoining ? 0 : member_epoch_;
  // The coordinator treats empty subscription fields as "unchanged"; sending them every time
  // costs little and repairs a coordinator that lost them.
  r.topics = topics_;
  r.topic_regex = regex_;
  r.owned = owned_;
  in_flight_ = true;
  last_sent_ms_ = now_ms;
  send_now_ = false;
  subscription_dirty_ = false;
  return r;
}

void GroupMembership::Backoff(int64_t now_ms) {
  backoff_ms_ = backoff_ms_ == 0 ? config_.retry_backoff_ms
                                 : std::min(backoff_ms_ * 2, config_.retry_backoff_max_ms);
  backoff_until_ms_ = now_ms + backoff_ms_;
  send_now_ = true;
}

Reconcile GroupMembership::OnHeartbeatFailure(int64_t now_ms) {
  in_flight_ = false;
  Reconcile out;
  if (state_ != State::kJoining && state_ != State::kMember) return out;
  Backoff(now_ms);
  out.find_coordinator = true;
  return out;
}

bool GroupMembership::CancelUndeliveredAssign(const TopicPartition& tp) {
  for (auto& e : events_) {
    if (e.kind != RebalanceEventKind::kAssigned) continue;
    auto it = std::find(e.partitions.begin(), e.partitions.end(), tp);
    if (it != e.partitions.end()) {
      e.partitions.erase(it);
      return true;
    }
  }
  return false;
}

void GroupMembership::PushEvent(RebalanceEventKind kind, const PartitionSet& tps) {
  if (tps.empty()) return;
  if (!events_.empty() && events_.back().kind == kind) {
    PartitionSet merged(events_.back().partitions.begin(), events_.back().partitions.end());
    merged.insert(tps.begin(), tps.end());
    events_.back().partitions.assign(merged.begin(), merged.end());
    return;
  }
  events_.push_back(RebalanceEvent{kind, {tps.begin(), tps.end()}});
}

Reconcile GroupMembership::Fence(int64_t now_ms) {
  Reconcile out;
  out.stop_fetching = owned_;
  PartitionSet undelivered;
  for (const auto& e : events_) {
    if (e.kind == RebalanceEventKind::kAssigned)
      undelivered.insert(e.partitions.begin(), e.partitions.end());
  }
  PartitionSet lost;
  for (const auto& tp : owned_) {
    if (!undelivered.contains(tp)) lost.insert(tp);
  }
  // Pending assigned/revoked events are superseded: the lost event covers every partition the
  // user was given.
  std::erase_if(events_,
                [](const RebalanceEvent& e) { return e.kind != RebalanceEventKind::kLost; });
  PushEvent(RebalanceEventKind::kLost, lost);
  owned_.clear();
  revoking_.clear();
  member_id_.clear();
  member_epoch_ = 0;
  state_ = lost.empty() ? State::kJoining : State::kFenced;
  send_now_ = true;
  (void)now_ms;
  return out;
}

Reconcile GroupMembership::OnHeartbeatResponse(const HeartbeatResponse& resp, int64_t now_ms) {
  in_flight_ = false;
  Reconcile out;
  // An answer that arrives after leaving, or while waiting for the lost callback, is stale.
  if (state_ != State::kJoining && state_ != State::kMember) return out;
  switch (resp.error) {
    case kErrNone:
      break;
    case kErrFencedMemberEpoch:
    case kErrUnknownMemberId:
      return Fence(now_ms);
    case kErrNotCoordinator:
    case kErrCoordinatorNotAvailable:
      Backoff(now_ms);
      out.find_coordinator = true;
      return out;
    case kErrInvalidRequest:
    case kErrGroupIdNotFound:
      Backoff(now_ms);
      out.error = Status::InvalidArgument("group '" + config_.group_id +
                                          "' heartbeat refused: " + resp.error_message);
      return out;
    default:  // UNRELEASED_INSTANCE_ID, RESOURCE_EXHAUSTED, timeouts: retry
      Backoff(now_ms);
      return out;
  }
  backoff_ms_ = 0;
  backoff_until_ms_ = INT64_MIN / 2;
  if (!resp.member_id.empty()) member_id_ = resp.member_id;
  member_epoch_ = resp.member_epoch;
  if (resp.heartbeat_interval_ms > 0) interval_ms_ = resp.heartbeat_interval_ms;
  state_ = State::kMember;
  if (!resp.has_assignment) return out;

  const PartitionSet& target = resp.assignment;
  PartitionSet revoked;
  for (const auto& tp : owned_) {
    if (target.contains(tp) || revoking_.contains(tp)) continue;
    revoked.insert(tp);
  }
  PartitionSet revoke_event;
  for (const auto& tp : revoked) {
    if (CancelUndeliveredAssign(tp)) {
      owned_.erase(tp);  // never given to the user: released at once
      send_now_ = true;
      continue;
    }
    revoking_.insert(tp);
    revoke_event.insert(tp);
    out.stop_fetching.insert(tp);
  }
  PushEvent(RebalanceEventKind::kRevoked, revoke_event);
  PartitionSet added;
  for (const auto& tp : target) {
    if (owned_.insert(tp).second) added.insert(tp);
  }
  PushEvent(RebalanceEventKind::kAssigned, added);
  // Drop events emptied by cancellation.
  std::erase_if(events_, [](const RebalanceEvent& e) { return e.partitions.empty(); });
  return out;
}

std::optional<RebalanceEvent> GroupMembership::TakeEvent() {
  while (!events_.empty()) {
    RebalanceEvent e = std::move(events_.front());
    events_.pop_front();
    if (!e.partitions.empty()) return e;
  }
  return std::nullopt;
}

bool GroupMembership::HasEvents() const { return !events_.empty(); }

void GroupMembership::RevocationDone(const std::vector<TopicPartition>& partitions) {
  for (const auto& tp : partitions) {
    if (revoking_.erase(tp) > 0) owned_.erase(tp);
  }
  send_now_ = true;
}

void GroupMembership::LostDone() {
  if (state_ == State::kFenced) {
    state_ = State::kJoining;
    send_now_ = true;
  }
}

std::optional<HeartbeatRequest> GroupMembership::MakeLeave(bool stay_usable) {
  std::optional<HeartbeatRequest> out;
  if (state_ == State::kMember && !member_id_.empty()) {
    HeartbeatRequest r;
    r.member_id = member_id_;
    r.member_epoch = config_.instance_id.empty() ? -1 : -2;
    out = std::move(r);
  }
  owned_.clear();
  revoking_.clear();
  events_.clear();
  member_id_.clear();
  member_epoch_ = 0;
  in_flight_ = false;
  topics_.clear();
  regex_.clear();
  state_ = stay_usable ? State::kUnsubscribed : State::kLeft;
  return out;
}

}  // namespace rill::client::internal
