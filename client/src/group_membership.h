#pragma once

// GroupMembership: the client side of a consumer group's membership (KIP-848 style, server-side
// assignment; broker/src/groups/README.md describes the coordinator's half). A pure state
// machine: no clocks, threads or sockets. The consumer feeds it heartbeat responses and the
// completion of rebalance callbacks; it says what to send, when, and what to tell the user.
//
// Reconciliation of a new assignment (a heartbeat response with has_assignment):
// - Partitions no longer assigned are *revoked*: the consumer stops fetching them at once
//   (Reconcile::stop_fetching), a kRevoked event is queued for the polling thread, and they stay
//   in the owned set reported to the coordinator until RevocationDone() (after the user's
//   OnPartitionsRevoked and the commit). Only then does the next heartbeat report them released,
//   so the coordinator never hands them to another member before their offsets are committed.
// - Partitions newly assigned are added to the owned set at once (the coordinator already counts
//   them as ours) and a kAssigned event is queued; the consumer starts fetching them when the
//   polling thread takes the event (before it calls OnPartitionsAssigned). A partition revoked
//   again before its kAssigned event was taken is dropped from that event and released at once.
// - FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID: every owned partition is *lost*: the consumer stops
//   fetching them, a kLost event is queued (no commit), and the member rejoins with epoch 0 (and
//   no member id) only after LostDone(), i.e. after OnPartitionsLost ran.
// - COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR / transport failures: retry with exponential
//   backoff (Reconcile::find_coordinator asks for a new coordinator lookup).
//
// Thread-safety: none; the consumer guards it with its own mutex.

#include <climits>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rill/client/types.h"
#include "rill/proto/status.h"

namespace rill::client::internal {

using PartitionSet = std::set<TopicPartition>;

// rill.v1.ErrorCode values the membership reacts to (static_assert'ed against the generated enum
// in consumer.cc).
inline constexpr int32_t kErrNone = 0;
inline constexpr int32_t kErrFencedMemberEpoch = 17;
inline constexpr int32_t kErrUnknownMemberId = 18;
inline constexpr int32_t kErrNotCoordinator = 20;
inline constexpr int32_t kErrCoordinatorNotAvailable = 21;
inline constexpr int32_t kErrUnreleasedInstanceId = 26;

struct GroupMembershipConfig {
  std::string group_id;
  std::string instance_id;  // static membership when non-empty
  std::string client_id;
  int32_t session_timeout_ms = 45000;
  int32_t rebalance_timeout_ms = 60000;
  std::string assignor;  // "uniform", "range" or empty (the group's default)
  int32_t retry_backoff_ms = 100;
  int32_t retry_backoff_max_ms = 2000;
  int32_t default_heartbeat_interval_ms = 3000;  // until the coordinator says otherwise
};

// A GroupHeartbeatRequest without protobuf.
struct HeartbeatRequest {
  std::string member_id;
  int32_t member_epoch = 0;  // 0 join, -1 leave, -2 static leave
  std::vector<std::string> topics;
  std::string topic_regex;
  PartitionSet owned;
};

// A GroupHeartbeatResponse without protobuf.
struct HeartbeatResponse {
  int32_t error = kErrNone;
  std::string error_message;
  std::string member_id;
  int32_t member_epoch = 0;
  int32_t heartbeat_interval_ms = 0;
  bool has_assignment = false;
  PartitionSet assignment;
};

enum class RebalanceEventKind { kAssigned, kRevoked, kLost };

struct RebalanceEvent {
  RebalanceEventKind kind;
  std::vector<TopicPartition> partitions;  // sorted
};

// What the consumer must do right away after a response or failure.
struct Reconcile {
  PartitionSet stop_fetching;     // revoked or lost: stop fetching, drop queued records
  bool find_coordinator = false;  // NOT_COORDINATOR and the like: look the coordinator up again
  Status error;                   // a non-retriable error to report from Poll (e.g. bad regex)
};

class GroupMembership {
 public:
  enum class State {
    kUnsubscribed,  // no subscription: nothing to send
    kJoining,       // send a join (epoch 0)
    kMember,        // joined; heartbeats at the interval
    kFenced,        // lost everything; waits for LostDone() before rejoining
    kLeft,          // left for good (Close)
  };

  explicit GroupMembership(GroupMembershipConfig config);

  // Subscribes to topic names or a regex (ECMAScript, full match, evaluated by the coordinator).
  // A change of subscription is sent with the next heartbeat (at once).
  Status Subscribe(std::vector<std::string> topics);
  Status SubscribePattern(std::string regex);

  // The time (same clock as now_ms) at which the next heartbeat is due; INT64_MAX when none is.
  int64_t NextHeartbeatMs() const;
  bool HeartbeatDue(int64_t now_ms) const { return NextHeartbeatMs() <= now_ms; }
  // The heartbeat to send now. Marks it sent.
  HeartbeatRequest MakeHeartbeat(int64_t now_ms);
  // The answer (error or not) to the last MakeHeartbeat().
  Reconcile OnHeartbeatResponse(const HeartbeatResponse& response, int64_t now_ms);
  // The last heartbeat got no answer (transport failure): retried with backoff.
  Reconcile OnHeartbeatFailure(int64_t now_ms);

  // Next event for the polling thread, in order; nullopt when there is none.
  std::optional<RebalanceEvent> TakeEvent();
  bool HasEvents() const;
  // The polling thread ran OnPartitionsRevoked and committed: report them released.
  void RevocationDone(const std::vector<TopicPartition>& partitions);
  // The polling thread ran OnPartitionsLost: rejoin.
  void LostDone();

  // Leaving (Close/Unsubscribe): the request to send (epoch -1, or -2 for a static member), or
  // nullopt when not a member. The membership is kLeft afterwards (kUnsubscribed if
  // `stay_usable`, so Subscribe() can join again).
  std::optional<HeartbeatRequest> MakeLeave(bool stay_usable);

  State state() const { return state_; }
  const std::string& member_id() const { return member_id_; }
  int32_t member_epoch() const { return member_epoch_; }
  // What the coordinator counts as ours (assigned, and revoked but not yet released).
  const PartitionSet& owned() const { return owned_; }
  const PartitionSet& revoking() const { return revoking_; }
  const GroupMembershipConfig& config() const { return config_; }
  bool subscribed() const { return !topics_.empty() || !regex_.empty(); }
  const std::vector<std::string>& topics() const { return topics_; }
  const std::string& topic_regex() const { return regex_; }

 private:
  void Backoff(int64_t now_ms);
  // Drops `tp` from undelivered kAssigned events; true if it was there.
  bool CancelUndeliveredAssign(const TopicPartition& tp);
  void PushEvent(RebalanceEventKind kind, const PartitionSet& tps);
  Reconcile Fence(int64_t now_ms);

  GroupMembershipConfig config_;
  State state_ = State::kUnsubscribed;
  std::vector<std::string> topics_;
  std::string regex_;
  bool subscription_dirty_ = false;

  std::string member_id_;
  int32_t member_epoch_ = 0;
  PartitionSet owned_;
  PartitionSet revoking_;
  std::deque<RebalanceEvent> events_;

  int32_t interval_ms_;
  int64_t last_sent_ms_ = INT64_MIN / 2;
  bool send_now_ = true;
  bool in_flight_ = false;
  int32_t backoff_ms_ = 0;
  int64_t backoff_until_ms_ = INT64_MIN / 2;
};

}  // namespace rill::client::internal
