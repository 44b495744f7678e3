#pragma once

// Helpers for driving a ConsumerGroup from tests.

#include <string>
#include <vector>

#include "groups/consumer_group.h"

namespace rill::groups::testing {

inline void SetOwned(v1::GroupHeartbeatRequest& r, const Assignment& owned) {
  r.clear_owned_partitions();
  for (const auto& [topic, parts] : owned) {
    auto* t = r.add_owned_partitions();
    t->set_topic(topic);
    for (int32_t p : parts) t->add_partitions(p);
  }
}

inline Assignment AssignmentOf(const v1::GroupHeartbeatResponse& r) {
  Assignment a;
  for (const auto& t : r.assignment()) {
    for (int32_t p : t.partitions()) a[t.topic()].insert(p);
  }
  return a;
}

inline v1::GroupHeartbeatRequest JoinRequest(const std::vector<std::string>& topics,
                                             const std::string& instance_id = "",
                                             const std::string& assignor = "") {
  v1::GroupHeartbeatRequest r;
  r.set_group_id("g");
  r.set_member_epoch(0);
  r.set_instance_id(instance_id);
  r.set_server_assignor(assignor);
  r.set_client_id("client");
  for (const auto& t : topics) r.add_subscribed_topic_names(t);
  return r;
}

inline v1::GroupHeartbeatRequest BeatRequest(const std::string& member_id, int32_t epoch,
                                             const Assignment& owned) {
  v1::GroupHeartbeatRequest r;
  r.set_group_id("g");
  r.set_member_id(member_id);
  r.set_member_epoch(epoch);
  SetOwned(r, owned);
  return r;
}

// A member id generator: "m1", "m2", ...
inline ConsumerGroup::MemberIdGenerator CountingIds(const std::string& prefix = "m") {
  auto n = std::make_shared<int>(0);
  return [n, prefix] { return prefix + std::to_string(++*n); };
}

}  // namespace rill::groups::testing
