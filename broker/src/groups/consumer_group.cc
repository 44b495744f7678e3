#include "groups/consumer_group.h"

#include <algorithm>
#include <utility>

#include "rill/proto/assert.h"

namespace rill::groups {
namespace {

Assignment FromTopicPartitions(const google::protobuf::RepeatedPtrField<v1::TopicPartitions>& tps) {
  Assignment a;
  for (const auto& t : tps) {
    for (int32_t p : t.partitions()) a[t.topic()].insert(p);
  }
  return a;
}

void ToTopicPartitions(const Assignment& a,
                       google::protobuf::RepeatedPtrField<v1::TopicPartitions>* out) {
  out->Clear();
  for (const auto& [topic, parts] : a) {
    auto* t = out->Add();
    t->set_topic(topic);
    for (int32_t p : parts) t->add_partitions(p);
  }
}

bool IsInternalTopic(const std::string& topic) { return topic.rfind("__", 0) == 0; }

}  // namespace

std::string_view GroupStateName(GroupState s) {
  switch (s) {
    case GroupState::kEmpty:
      return "Empty";
    case GroupState::kAssigning:
      return "Assigning";
    case GroupState::kReconciling:
      return "Reconciling";
    case GroupState::kStable:
      return "Stable";
    case GroupState::kDead:
      return "Dead";
  }
  return "Unknown";
}

ConsumerGroup::ConsumerGroup(std::string group_id, GroupConfig config, MemberIdGenerator member_ids)
    : group_id_(std::move(group_id)),
      config_(std::move(config)),
      member_ids_(std::move(member_ids)),
      assignor_(config_.default_assignor) {
  RILL_ASSERT(FindAssignor(config_.default_assignor) != nullptr, "unknown default assignor %s",
              config_.default_assignor.c_str());
}

// ---------------------------------------------------------------------------------------------
// Heartbeat

v1::GroupHeartbeatResponse ConsumerGroup::Response() const {
  v1::GroupHeartbeatResponse r;
  r.set_heartbeat_interval_ms(config_.heartbeat_interval_ms);
  return r;
}

HeartbeatResult ConsumerGroup::Error(GroupError error, std::string message) const {
  HeartbeatResult result;
  result.status = GroupStatus(error, std::move(message));
  result.response = Response();
  return result;
}

HeartbeatResult ConsumerGroup::Heartbeat(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                                         const TopicPartitionCounts& topics) {
  HeartbeatResult result;
  if (dead_) {
    result = Error(GroupError::kGroupIdNotFound, "group " + group_id_ + " was deleted");
    return result;
  }
  const int32_t epoch = request.member_epoch();
  if (epoch == 0) {
    result = Join(request, now_ms, topics);
  } else if (epoch == -1) {
    result = Leave(request, now_ms, topics);
  } else if (epoch == -2) {
    result = StaticLeave(request, now_ms);
  } else if (epoch > 0) {
    result = Beat(request, now_ms, topics);
  } else {
    result = Error(GroupError::kInvalidRequest,
                   "member_epoch " + std::to_string(epoch) + " is not 0, -1, -2 or > 0");
  }
  result.records = TakeRecords();
  // SetOwnership asserts the no-double-ownership invariant on every change. The full cross-check
  // of the ownership index costs O(partitions of the group), so a plain heartbeat checks only
  // its own member; joins, leaves, expiry and metadata changes check the whole group.
  const GroupMember* m = epoch > 0 ? FindMember(request.member_id()) : nullptr;
  if (m != nullptr) {
    CheckMemberOwnership(*m);
  } else {
    CheckInvariants();
  }
  return result;
}

void ConsumerGroup::CheckMemberOwnership(const GroupMember& m) const {
  for (const auto& [topic, parts] : m.Owned()) {
    for (int32_t p : parts) {
      auto it = owner_.find(TopicPartition{topic, p});
      RILL_ASSERT(it != owner_.end() && it->second == m.member_id,
                  "group %s: %s-%d owned by member %s but not in the ownership index",
                  group_id_.c_str(), topic.c_str(), p, m.member_id.c_str());
    }
  }
  RILL_ASSERT(assignment_epoch_ == group_epoch_,
              "group %s: target assignment epoch %d behind group epoch %d", group_id_.c_str(),
              assignment_epoch_, group_epoch_);
}

std::string ConsumerGroup::CheckSubscription(const v1::GroupHeartbeatRequest& request) const {
  if (!request.server_assignor().empty() && FindAssignor(request.server_assignor()) == nullptr) {
    return "unknown server_assignor '" + request.server_assignor() + "' (uniform or range)";
  }
  if (static_cast<size_t>(request.subscribed_topic_names_size()) >
      config_.max_subscribed_topic_names) {
    return "more than " + std::to_string(config_.max_subscribed_topic_names) +
           " subscribed topic names";
  }
  if (!request.subscribed_topic_regex().empty()) {
    if (request.subscribed_topic_regex().size() > config_.max_regex_bytes) {
      return "subscribed_topic_regex longer than " + std::to_string(config_.max_regex_bytes) +
             " bytes";
    }
    try {
      std::regex re(request.subscribed_topic_regex(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return "subscribed_topic_regex '" + request.subscribed_topic_regex() +
             "' is not a valid regex: " + e.what();
    }
  }
  return "";
}

HeartbeatResult ConsumerGroup::Join(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                                    const TopicPartitionCounts& topics) {
  HeartbeatResult result;
  if (request.subscribed_topic_names().empty() && request.subscribed_topic_regex().empty()) {
    result = Error(GroupError::kInvalidRequest,
                   "a joining member must subscribe to topic names or a topic regex");
    return result;
  }
  if (std::string error = CheckSubscription(request); !error.empty()) {
    result = Error(GroupError::kInvalidRequest, std::move(error));
    return result;
  }

  std::string member_id = request.member_id();
  const std::string& instance_id = request.instance_id();
  bool subscription_changed = false;
  if (!member_id.empty() && members_.contains(member_id)) {
    // A known member starting over (it was fenced, or restarted with the same member id): it
    // has dropped every partition, so they are free again.
    GroupMember& m = members_.at(member_id);
    if (m.instance_id != instance_id) {
      result =
          Error(GroupError::kInvalidRequest, "member " + member_id + " has instance id '" +
                                                 m.instance_id + "', not '" + instance_id + "'");
      return result;
    }
    SetOwnership(m, {}, {});
    m.left_static = false;
    subscription_changed = UpdateSubscription(m, request);
  } else if (!instance_id.empty() && static_members_.contains(instance_id)) {
    // A static member coming back: it takes over its previous incarnation's assignment without
    // a rebalance, provided that incarnation left with epoch -2.
    const std::string old_id = static_members_.at(instance_id);
    GroupMember& old = members_.at(old_id);
    if (!old.left_static) {
      result = Error(GroupError::kUnreleasedInstanceId,
                     "instance id " + instance_id + " is still in use by member " + old_id +
                         "; it must leave (epoch -2) or let its session expire");
      return result;
    }
    if (member_id.empty()) member_id = member_ids_();
    RILL_ASSERT(!members_.contains(member_id), "member id generator repeated %s",
                member_id.c_str());
    GroupMember m = old;
    m.assigned.clear();
    m.pending_revocation.clear();
    Assignment kept = old.assigned;
    SetOwnership(old, {}, {});
    members_.erase(old_id);
    MarkMember(old_id);
    RememberFenced(old_id);
    m.member_id = member_id;
    m.left_static = false;
    auto [it, inserted] = members_.emplace(member_id, std::move(m));
    RILL_ASSERT(inserted, "member %s exists", member_id.c_str());
    SetOwnership(it->second, std::move(kept), {});
    static_members_[instance_id] = member_id;
    subscription_changed = UpdateSubscription(it->second, request);
  } else {
    if (members_.size() >= config_.max_members) {
      result =
          Error(GroupError::kTooManyMembers, "group " + group_id_ + " has the maximum of " +
                                                 std::to_string(config_.max_members) + " members");
      return result;
    }
    if (member_id.empty()) member_id = member_ids_();
    RILL_ASSERT(!members_.contains(member_id), "member id generator repeated %s",
                member_id.c_str());
    fenced_.erase(member_id);
    GroupMember m;
    m.member_id = member_id;
    m.instance_id = instance_id;
    members_.emplace(member_id, std::move(m));
    if (!instance_id.empty()) static_members_[instance_id] = member_id;
    UpdateSubscription(members_.at(member_id), request);
    subscription_changed = true;  // membership changed
  }

  GroupMember& m = members_.at(member_id);
  m.session_deadline_ms = now_ms + m.session_timeout_ms;
  MarkMember(member_id);
  MaybeRebalance(topics, subscription_changed);
  // A join always moves the member to a new epoch, once, whether or not it gets partitions.
  if (!Reconcile(m, now_ms)) BumpMemberEpoch(m);

  auto& r = result.response;
  r.set_member_id(member_id);
  r.set_member_epoch(m.member_epoch);
  r.set_heartbeat_interval_ms(config_.heartbeat_interval_ms);
  r.set_has_assignment(true);
  ToTopicPartitions(m.assigned, r.mutable_assignment());
  return result;
}

HeartbeatResult ConsumerGroup::Leave(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                                     const TopicPartitionCounts& topics) {
  HeartbeatResult result;
  const std::string& id = request.member_id();
  if (!members_.contains(id)) {
    if (fenced_.contains(id)) {
      // Already gone (its session expired): leaving is a no-op.
      result.response = Response();
      result.response.set_member_id(id);
      result.response.set_member_epoch(-1);
      return result;
    }
    result = Error(GroupError::kUnknownMemberId, "member " + id + " is not in group " + group_id_);
    return result;
  }
  RemoveMember(id, /*fenced=*/false);
  MaybeRebalance(topics, /*force=*/true);
  result.response = Response();
  result.response.set_member_id(id);
  result.response.set_member_epoch(-1);
  return result;
}

HeartbeatResult ConsumerGroup::StaticLeave(const v1::GroupHeartbeatRequest& request,
                                           int64_t now_ms) {
  HeartbeatResult result;
  const std::string& id = request.member_id();
  auto it = members_.find(id);
  if (it == members_.end()) {
    result =
        Error(fenced_.contains(id) ? GroupError::kFencedMemberEpoch : GroupError::kUnknownMemberId,
              "member " + id + " is not in group " + group_id_);
    return result;
  }
  GroupMember& m = it->second;
  if (m.instance_id.empty()) {
    result =
        Error(GroupError::kInvalidRequest, "member_epoch -2 (static leave) needs a static member");
    return result;
  }
  // Leaving, the member released everything; partitions it was revoking go to their new owners
  // and the rest stay reserved for the member's next incarnation until the session ends.
  SetOwnership(m, m.assigned, {});
  m.left_static = true;
  m.session_deadline_ms = now_ms + m.session_timeout_ms;
  MarkMember(id);
  result.response = Response();
  result.response.set_member_id(id);
  result.response.set_member_epoch(-2);
  return result;
}

HeartbeatResult ConsumerGroup::Beat(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                                    const TopicPartitionCounts& topics) {
  HeartbeatResult result;
  const std::string& id = request.member_id();
  auto it = members_.find(id);
  if (it == members_.end()) {
    if (fenced_.contains(id)) {
      result = Error(GroupError::kFencedMemberEpoch,
                     "member " + id +
                         " was fenced (session expired or replaced); rejoin "
                         "with epoch 0");
    } else {
      result =
          Error(GroupError::kUnknownMemberId, "member " + id + " is not in group " + group_id_);
    }
    return result;
  }
  GroupMember& m = it->second;
  if (m.left_static) {
    result = Error(GroupError::kFencedMemberEpoch,
                   "member " + id + " left the group as a static member; rejoin");
    return result;
  }
  if (std::string error = CheckSubscription(request); !error.empty()) {
    result = Error(GroupError::kInvalidRequest, std::move(error));
    return result;
  }
  const Assignment owned = FromTopicPartitions(request.owned_partitions());
  const bool owns_only_its_own = IsSubset(owned, m.Owned());
  bool caught_up;
  if (request.member_epoch() == m.member_epoch && owns_only_its_own) {
    caught_up = true;
  } else if (request.member_epoch() == m.previous_member_epoch && owns_only_its_own) {
    // The response that carried the current epoch was lost; resend it before moving on.
    caught_up = false;
  } else {
    result = Error(GroupError::kFencedMemberEpoch,
                   "member " + id + " sent epoch " + std::to_string(request.member_epoch()) +
                       " owning " + ToString(owned) + "; its epoch is " +
                       std::to_string(m.member_epoch) + " owning " + ToString(m.Owned()));
    return result;
  }

  m.session_deadline_ms = now_ms + m.session_timeout_ms;
  const bool subscription_changed = UpdateSubscription(m, request);
  if (subscription_changed) MarkMember(id);
  // Partitions being revoked that the member no longer reports are released.
  if (!m.pending_revocation.empty()) {
    Assignment still = Intersect(m.pending_revocation, owned);
    if (still != m.pending_revocation) {
      SetOwnership(m, m.assigned, std::move(still));
      MarkMember(id);
    }
  }
  MaybeRebalance(topics, subscription_changed);
  const bool changed = caught_up && Reconcile(m, now_ms);

  auto& r = result.response;
  r = Response();
  r.set_member_id(id);
  r.set_member_epoch(m.member_epoch);
  if (changed || !caught_up || owned != m.assigned) {
    r.set_has_assignment(true);
    ToTopicPartitions(m.assigned, r.mutable_assignment());
  }
  return result;
}

bool ConsumerGroup::UpdateSubscription(GroupMember& m, const v1::GroupHeartbeatRequest& request) {
  // Empty fields mean "unchanged" so that heartbeats need not repeat them.
  bool changed = false;
  if (!request.subscribed_topic_names().empty() || !request.subscribed_topic_regex().empty()) {
    std::set<std::string> names(request.subscribed_topic_names().begin(),
                                request.subscribed_topic_names().end());
    if (names != m.subscribed_topic_names ||
        request.subscribed_topic_regex() != m.subscribed_topic_regex) {
      m.subscribed_topic_names = std::move(names);
      m.subscribed_topic_regex = request.subscribed_topic_regex();
      changed = true;
    }
  }
  if (!request.server_assignor().empty() && request.server_assignor() != m.server_assignor) {
    m.server_assignor = request.server_assignor();
    changed = true;
  }
  if (!request.client_id().empty() && request.client_id() != m.client_id) {
    m.client_id = request.client_id();
    MarkMember(m.member_id);
  }
  if (!request.client_host().empty() && request.client_host() != m.client_host) {
    m.client_host = request.client_host();
    MarkMember(m.member_id);
  }
  int32_t session = request.session_timeout_ms() > 0 ? request.session_timeout_ms()
                    : m.session_timeout_ms > 0       ? m.session_timeout_ms
                                                     : config_.default_session_timeout_ms;
  session = std::clamp(session, config_.min_session_timeout_ms, config_.max_session_timeout_ms);
  if (session != m.session_timeout_ms) {
    m.session_timeout_ms = session;
    MarkMember(m.member_id);
  }
  int32_t rebalance = request.rebalance_timeout_ms() > 0 ? request.rebalance_timeout_ms()
                      : m.rebalance_timeout_ms > 0       ? m.rebalance_timeout_ms
                                                         : config_.default_rebalance_timeout_ms;
  if (rebalance != m.rebalance_timeout_ms) {
    m.rebalance_timeout_ms = rebalance;
    MarkMember(m.member_id);
  }
  return changed;
}

std::set<std::string> ConsumerGroup::ResolveSubscription(const GroupMember& m,
                                                         const TopicPartitionCounts& topics) const {
  std::set<std::string> out;
  for (const auto& name : m.subscribed_topic_names) {
    if (topics.contains(name)) out.insert(name);
  }
  if (!m.subscribed_topic_regex.empty()) {
    auto it = regex_cache_.find(m.subscribed_topic_regex);
    if (it == regex_cache_.end()) {
      if (regex_cache_.size() >= 64) regex_cache_.clear();
      it = regex_cache_
               .emplace(m.subscribed_topic_regex,
                        std::regex(m.subscribed_topic_regex, std::regex::ECMAScript))
               .first;
    }
    for (const auto& [topic, count] : topics) {
      if (!IsInternalTopic(topic) && std::regex_match(topic, it->second)) out.insert(topic);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Target assignment and reconciliation

void ConsumerGroup::MaybeRebalance(const TopicPartitionCounts& topics, bool force) {
  // Without a membership or subscription change only new topic metadata can change anything;
  // skip resolving every member's subscription when the topics are the ones seen last time.
  if (!force && topics == last_topics_) return;
  last_topics_ = topics;
  TopicPartitionCounts subscribed;
  std::map<std::string, int> votes;
  for (const auto& [id, m] : members_) {
    for (const auto& topic : ResolveSubscription(m, topics)) subscribed[topic] = topics.at(topic);
    if (!m.server_assignor.empty()) ++votes[m.server_assignor];
  }
  // The assignor most members ask for (ties: the smaller name); the default when none asks.
  std::string assignor = config_.default_assignor;
  int best = 0;
  for (const auto& [name, n] : votes) {
    if (n > best) {
      best = n;
      assignor = name;
    }
  }
  if (!force && subscribed == subscribed_topics_ && assignor == assignor_) return;
  subscribed_topics_ = std::move(subscribed);
  assignor_ = std::move(assignor);
  ++group_epoch_;
  dirty_group_ = true;
  ComputeTargetAssignment(topics);
}

void ConsumerGroup::ComputeTargetAssignment(const TopicPartitionCounts& topics) {
  AssignorInput input;
  for (const auto& [id, m] : members_) {
    AssignorMember am;
    am.instance_id = m.instance_id;
    am.subscribed_topics = ResolveSubscription(m, topics);
    am.current = m.target;
    input.members.emplace(id, std::move(am));
  }
  input.topics = subscribed_topics_;
  const Assignor* assignor = FindAssignor(assignor_);
  RILL_ASSERT(assignor != nullptr, "unknown assignor %s", assignor_.c_str());
  TargetAssignment target = assignor->Assign(input);
  for (auto& [id, m] : members_) {
    Assignment& t = target[id];
    if (t != m.target) {
      m.target = std::move(t);
      MarkMember(id);
    }
  }
  assignment_epoch_ = group_epoch_;
}

bool ConsumerGroup::Reconcile(GroupMember& m, int64_t now_ms) {
  if (m.left_static || !m.pending_revocation.empty()) return false;
  Assignment revoke = Minus(m.assigned, m.target);
  if (!revoke.empty()) {
    // Step 1: tell the member to release what is no longer its own. Nothing new is given until
    // it has.
    SetOwnership(m, Intersect(m.assigned, m.target), std::move(revoke));
    m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms;
    BumpMemberEpoch(m);
    MarkMember(m.member_id);
    return true;
  }
  // Step 2: give it every partition of its target that nobody owns any more.
  Assignment grant;
  for (const auto& [topic, parts] : Minus(m.target, m.assigned)) {
    for (int32_t p : parts) {
      if (!owner_.contains(TopicPartition{topic, p})) grant[topic].insert(p);
    }
  }
  if (grant.empty()) return false;
  SetOwnership(m, Union(m.assigned, grant), {});
  BumpMemberEpoch(m);
  MarkMember(m.member_id);
  return true;
}

void ConsumerGroup::SetOwnership(GroupMember& m, Assignment assigned, Assignment pending) {
  for (const auto& [topic, parts] : m.Owned()) {
    for (int32_t p : parts) {
      auto it = owner_.find(TopicPartition{topic, p});
      RILL_ASSERT(it != owner_.end() && it->second == m.member_id,
                  "group %s: %s-%d in member %s but not owned by it", group_id_.c_str(),
                  topic.c_str(), p, m.member_id.c_str());
      owner_.erase(it);
    }
  }
  RILL_ASSERT(Intersect(assigned, pending).empty(),
              "group %s: member %s both assigned and revoking %s", group_id_.c_str(),
              m.member_id.c_str(), ToString(Intersect(assigned, pending)).c_str());
  m.assigned = std::move(assigned);
  m.pending_revocation = std::move(pending);
  for (const auto& [topic, parts] : m.Owned()) {
    for (int32_t p : parts) {
      auto [it, inserted] = owner_.emplace(TopicPartition{topic, p}, m.member_id);
      RILL_ASSERT(inserted, "group %s: partition %s-%d owned by both %s and %s", group_id_.c_str(),
                  topic.c_str(), p, it->second.c_str(), m.member_id.c_str());
    }
  }
}

void ConsumerGroup::BumpMemberEpoch(GroupMember& m) {
  m.previous_member_epoch = m.member_epoch;
  ++m.member_epoch;
}

void ConsumerGroup::RemoveMember(const std::string& member_id, bool fenced) {
  GroupMember& m = members_.at(member_id);
  SetOwnership(m, {}, {});
  if (!m.instance_id.empty()) {
    auto it = static_members_.find(m.instance_id);
    if (it != static_members_.end() && it->second == member_id) static_members_.erase(it);
  }
  members_.erase(member_id);
  MarkMember(member_id);
  if (fenced) RememberFenced(member_id);
}

void ConsumerGroup::RememberFenced(const std::string& member_id) {
  if (!fenced_.insert(member_id).second) return;
  fenced_order_.push_back(member_id);
  while (fenced_order_.size() > config_.max_fenced_members) {
    fenced_.erase(fenced_order_.front());
    fenced_order_.pop_front();
  }
}

void ConsumerGroup::CheckInvariants() const {
  std::map<TopicPartition, std::string> owners;
  for (const auto& [id, m] : members_) {
    RILL_ASSERT(id == m.member_id, "member keyed %s has id %s", id.c_str(), m.member_id.c_str());
    for (const auto& [topic, parts] : m.Owned()) {
      for (int32_t p : parts) {
        auto [it, inserted] = owners.emplace(TopicPartition{topic, p}, id);
        RILL_ASSERT(inserted, "group %s: partition %s-%d owned by both %s and %s",
                    group_id_.c_str(), topic.c_str(), p, it->second.c_str(), id.c_str());
      }
    }
  }
  RILL_ASSERT(owners == owner_, "group %s: ownership index out of date", group_id_.c_str());
  RILL_ASSERT(dead_ || assignment_epoch_ == group_epoch_,
              "group %s: target assignment epoch %d behind group epoch %d", group_id_.c_str(),
              assignment_epoch_, group_epoch_);
}

// ---------------------------------------------------------------------------------------------
// Time and metadata

HeartbeatResult ConsumerGroup::Tick(int64_t now_ms) {
  HeartbeatResult result;
  if (dead_) return result;
  std::vector<std::string> expired;
  for (const auto& [id, m] : members_) {
    if (m.session_deadline_ms <= now_ms ||
        (!m.pending_revocation.empty() && m.revocation_deadline_ms <= now_ms)) {
      expired.push_back(id);
    }
  }
  for (const auto& id : expired) RemoveMember(id, /*fenced=*/true);
  // Member subscriptions resolve against the topics the group already knew about: every topic a
  // remaining member subscribes to is among them.
  if (!expired.empty()) MaybeRebalance(TopicPartitionCounts(subscribed_topics_), /*force=*/true);
  result.records = TakeRecords();
  CheckInvariants();
  return result;
}

HeartbeatResult ConsumerGroup::OnTopicsChanged(const TopicPartitionCounts& topics, int64_t now_ms) {
  HeartbeatResult result;
  if (dead_) return result;
  MaybeRebalance(topics, /*force=*/false);
  result.records = TakeRecords();
  CheckInvariants();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Offsets

CommitValidation ConsumerGroup::ValidateCommit(const v1::CommitOffsetsRequest& request,
                                               int64_t now_ms,
                                               const TopicPartitionCounts& topics) const {
  CommitValidation out;
  auto fail_all = [&](GroupError error, const std::string& message) {
    out.status = GroupStatus(error, message);
    for (const auto& c : request.offsets()) {
      out.partitions.push_back({TopicPartition{c.topic(), c.partition()}, out.status});
    }
    return out;
  };
  if (dead_) return fail_all(GroupError::kGroupIdNotFound, "group " + group_id_ + " was deleted");

  const GroupMember* m = nullptr;
  if (request.member_id().empty() && request.member_epoch() == -1) {
    if (!members_.empty()) {
      return fail_all(GroupError::kUnknownMemberId,
                      "group " + group_id_ + " has active members; only they may commit");
    }
  } else {
    m = FindMember(request.member_id());
    if (m == nullptr) {
      if (fenced_.contains(request.member_id())) {
        return fail_all(GroupError::kFencedMemberEpoch,
                        "member " + request.member_id() + " was fenced (session expired)");
      }
      return fail_all(GroupError::kUnknownMemberId,
                      "member " + request.member_id() + " is not in group " + group_id_);
    }
    if (m->left_static || m->session_deadline_ms <= now_ms) {
      return fail_all(GroupError::kFencedMemberEpoch,
                      "member " + m->member_id + " has left or its session expired");
    }
    if (request.member_epoch() <= 0 || (request.member_epoch() != m->member_epoch &&
                                        request.member_epoch() != m->previous_member_epoch)) {
      return fail_all(GroupError::kFencedMemberEpoch,
                      "member " + m->member_id + " committed at epoch " +
                          std::to_string(request.member_epoch()) + "; its epoch is " +
                          std::to_string(m->member_epoch));
    }
  }

  const Assignment owned = m != nullptr ? m->Owned() : Assignment{};
  for (const auto& c : request.offsets()) {
    out.partitions.push_back({TopicPartition{c.topic(), c.partition()}, GroupStatus()});
    PartitionCommit& pc = out.partitions.back();
    auto reject = [&](GroupError error, std::string message) {
      pc.status = GroupStatus(error, std::move(message));
    };
    auto t = topics.find(c.topic());
    if (t == topics.end()) {
      reject(GroupError::kUnknownTopic, "topic " + c.topic() + " does not exist");
    } else if (c.partition() < 0 || c.partition() >= t->second) {
      reject(GroupError::kUnknownPartition,
             "topic " + c.topic() + " has no partition " + std::to_string(c.partition()));
    } else if (c.offset() < 0) {
      reject(GroupError::kInvalidOffset, "offset " + std::to_string(c.offset()) + " is negative");
    } else if (c.metadata().size() > config_.max_commit_metadata_bytes) {
      reject(
          GroupError::kInvalidRequest,
          "metadata longer than " + std::to_string(config_.max_commit_metadata_bytes) + " bytes");
    } else if (m != nullptr && !Contains(owned, c.topic(), c.partition())) {
      reject(GroupError::kFencedMemberEpoch, "member " + m->member_id + " does not own " +
                                                 c.topic() + "-" + std::to_string(c.partition()));
    } else {
      pb::OffsetCommitValue v;
      v.set_offset(c.offset());
      v.set_metadata(c.metadata());
      v.set_commit_timestamp_ms(now_ms);
      out.records.push_back(
          MakeOffsetCommitRecord(group_id_, c.topic(), c.partition(), std::move(v)));
    }
  }
  return out;
}

GroupError ConsumerGroup::Delete(std::vector<GroupRecord>* records) {
  if (!members_.empty()) return GroupError::kGroupNotEmpty;
  dead_ = true;
  records->push_back(MakeGroupTombstone(group_id_));
  return GroupError::kNone;
}

// ---------------------------------------------------------------------------------------------
// Records

pb::MemberValue ConsumerGroup::MemberToValue(const GroupMember& m) const {
  pb::MemberValue v;
  v.set_instance_id(m.instance_id);
  v.set_client_id(m.client_id);
  v.set_client_host(m.client_host);
  for (const auto& t : m.subscribed_topic_names) v.add_subscribed_topic_names(t);
  v.set_subscribed_topic_regex(m.subscribed_topic_regex);
  v.set_server_assignor(m.server_assignor);
  v.set_session_timeout_ms(m.session_timeout_ms);
  v.set_rebalance_timeout_ms(m.rebalance_timeout_ms);
  v.set_member_epoch(m.member_epoch);
  v.set_previous_member_epoch(m.previous_member_epoch);
  ToPartitionSets(m.assigned, v.mutable_assigned());
  ToPartitionSets(m.pending_revocation, v.mutable_pending_revocation());
  ToPartitionSets(m.target, v.mutable_target());
  v.set_left_static(m.left_static);
  return v;
}

pb::GroupMetadataValue ConsumerGroup::MetadataValue() const {
  pb::GroupMetadataValue v;
  v.set_group_epoch(group_epoch_);
  v.set_assignment_epoch(assignment_epoch_);
  v.set_assignor(assignor_);
  for (const auto& [topic, n] : subscribed_topics_) {
    auto* t = v.add_subscribed_topics();
    t->set_topic(topic);
    t->set_partitions(n);
  }
  return v;
}

std::vector<GroupRecord> ConsumerGroup::TakeRecords() {
  std::vector<GroupRecord> records;
  if (dirty_group_) records.push_back(MakeGroupMetadataRecord(group_id_, MetadataValue()));
  for (const auto& id : dirty_members_) {
    auto it = members_.find(id);
    records.push_back(it == members_.end()
                          ? MakeMemberTombstone(group_id_, id)
                          : MakeMemberRecord(group_id_, id, MemberToValue(it->second)));
  }
  dirty_group_ = false;
  dirty_members_.clear();
  return records;
}

std::vector<GroupRecord> ConsumerGroup::SnapshotRecords() const {
  std::vector<GroupRecord> records;
  records.push_back(MakeGroupMetadataRecord(group_id_, MetadataValue()));
  for (const auto& [id, m] : members_) {
    records.push_back(MakeMemberRecord(group_id_, id, MemberToValue(m)));
  }
  return records;
}

Result<ConsumerGroup> ConsumerGroup::Restore(std::string group_id, GroupConfig config,
                                             MemberIdGenerator member_ids,
                                             const pb::GroupMetadataValue& metadata,
                                             const std::map<std::string, pb::MemberValue>& members,
                                             int64_t now_ms) {
  ConsumerGroup g(std::move(group_id), std::move(config), std::move(member_ids));
  if (metadata.group_epoch() < 0 || metadata.assignment_epoch() != metadata.group_epoch()) {
    return Status::Corruption("group " + g.group_id_ + ": group epoch " +
                              std::to_string(metadata.group_epoch()) + ", assignment epoch " +
                              std::to_string(metadata.assignment_epoch()));
  }
  if (FindAssignor(metadata.assignor()) == nullptr) {
    return Status::Corruption("group " + g.group_id_ + ": unknown assignor '" +
                              metadata.assignor() + "'");
  }
  g.group_epoch_ = metadata.group_epoch();
  g.assignment_epoch_ = metadata.assignment_epoch();
  g.assignor_ = metadata.assignor();
  for (const auto& t : metadata.subscribed_topics())
    g.subscribed_topics_[t.topic()] = t.partitions();

  std::set<TopicPartition> seen;
  for (const auto& [id, v] : members) {
    GroupMember m;
    m.member_id = id;
    m.instance_id = v.instance_id();
    m.client_id = v.client_id();
    m.client_host = v.client_host();
    m.subscribed_topic_names.insert(v.subscribed_topic_names().begin(),
                                    v.subscribed_topic_names().end());
    m.subscribed_topic_regex = v.subscribed_topic_regex();
    m.server_assignor = v.server_assignor();
    m.session_timeout_ms = v.session_timeout_ms();
    m.rebalance_timeout_ms = v.rebalance_timeout_ms();
    m.member_epoch = v.member_epoch();
    m.previous_member_epoch = v.previous_member_epoch();
    m.target = FromPartitionSets(v.target());
    m.left_static = v.left_static();
    m.session_deadline_ms = now_ms + m.session_timeout_ms;
    m.revocation_deadline_ms = now_ms + m.rebalance_timeout_ms;
    if (m.member_epoch <= 0 || m.previous_member_epoch < 0) {
      return Status::Corruption("group " + g.group_id_ + ": member " + id + " has epoch " +
                                std::to_string(m.member_epoch));
    }
    if (!m.subscribed_topic_regex.empty()) {
      try {
        std::regex re(m.subscribed_topic_regex, std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return Status::Corruption("group " + g.group_id_ + ": member " + id + " has a bad regex");
      }
    }
    Assignment assigned = FromPartitionSets(v.assigned());
    Assignment pending = FromPartitionSets(v.pending_revocation());
    for (const auto& [topic, parts] : Union(assigned, pending)) {
      for (int32_t p : parts) {
        if (!seen.insert(TopicPartition{topic, p}).second) {
          return Status::Corruption("group " + g.group_id_ + ": partition " + topic + "-" +
                                    std::to_string(p) + " owned by two members");
        }
      }
    }
    if (!Intersect(assigned, pending).empty()) {
      return Status::Corruption("group " + g.group_id_ + ": member " + id +
                                " both owns and revokes a partition");
    }
    if (!m.instance_id.empty()) {
      if (g.static_members_.contains(m.instance_id)) {
        return Status::Corruption("group " + g.group_id_ + ": instance id " + m.instance_id +
                                  " used by two members");
      }
      g.static_members_[m.instance_id] = id;
    }
    auto [it, inserted] = g.members_.emplace(id, std::move(m));
    g.SetOwnership(it->second, std::move(assigned), std::move(pending));
  }
  g.CheckInvariants();
  return g;
}

const GroupMember* ConsumerGroup::FindMember(const std::string& member_id) const {
  auto it = members_.find(member_id);
  return it == members_.end() ? nullptr : &it->second;
}

const std::string* ConsumerGroup::OwnerOf(const TopicPartition& tp) const {
  auto it = owner_.find(tp);
  return it == owner_.end() ? nullptr : &it->second;
}

GroupState ConsumerGroup::state() const {
  if (dead_) return GroupState::kDead;
  if (members_.empty()) return GroupState::kEmpty;
  if (assignment_epoch_ < group_epoch_) return GroupState::kAssigning;
  for (const auto& [id, m] : members_) {
    if (m.assigned != m.target || !m.pending_revocation.empty()) return GroupState::kReconciling;
  }
  return GroupState::kStable;
}

}  // namespace rill::groups
