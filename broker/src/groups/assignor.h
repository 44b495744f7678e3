#pragma once

// Server-side partition assignors for consumer groups (docs/ARCHITECTURE.md §8, KIP-848 style).
//
// An assignor maps (members with their subscriptions, topic partition counts) to a target
// assignment. Assignors are pure functions: the same input gives the same output whatever the
// order in which the caller built its containers (every container here is ordered).
//
//   uniform  Balanced and sticky. Every partition of a subscribed topic goes to exactly one member
//            subscribed to that topic. Members whose subscriptions are identical end with partition
//            counts that differ by at most 1 (and in general no partition can be moved to another
//            subscriber of its topic that holds 2 or more fewer partitions). Partitions in a
//            member's `current` assignment stay with it unless balance requires a move; a member
//            gives up partitions it did not have before ahead of ones it did.
//   range    Kafka's RangeAssignor, per topic: the topic's subscribers sorted by instance id (or
//            member id when they have none); with P partitions and S subscribers each gets a
//            contiguous range of P/S partitions and the first P%S get one more.
//
// Thread-safety: assignors are stateless; Assign may be called concurrently.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "groups/group_types.h"

namespace rill::groups {

struct AssignorMember {
  std::string instance_id;                  // static membership id; empty when dynamic
  std::set<std::string> subscribed_topics;  // topics absent from AssignorInput::topics are ignored
  Assignment current;  // the member's previous target assignment (stickiness hint); entries that
                       // no longer exist, are not subscribed, or are claimed by an earlier member
                       // (by member id order) are ignored
};

struct AssignorInput {
  std::map<std::string, AssignorMember> members;  // member id -> member
  TopicPartitionCounts topics;                    // partition counts of the existing topics
};

// member id -> assignment. Contains every member of the input, possibly with an empty assignment.
using TargetAssignment = std::map<std::string, Assignment>;

class Assignor {
 public:
  virtual ~Assignor() = default;
  virtual std::string_view name() const = 0;
  virtual TargetAssignment Assign(const AssignorInput& input) const = 0;
};

class UniformAssignor final : public Assignor {
 public:
  static constexpr std::string_view kName = "uniform";
  std::string_view name() const override { return kName; }
  TargetAssignment Assign(const AssignorInput& input) const override;
};

class RangeAssignor final : public Assignor {
 public:
  static constexpr std::string_view kName = "range";
  std::string_view name() const override { return kName; }
  TargetAssignment Assign(const AssignorInput& input) const override;
};

// The assignor named `name` ("uniform" or "range"); nullptr for any other name.
// The returned object is a process-wide singleton and must not be deleted.
const Assignor* FindAssignor(std::string_view name);

}  // namespace rill::groups
