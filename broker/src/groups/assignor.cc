#include "groups/assignor.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "rill/proto/assert.h"

namespace rill::groups {
namespace {

// Topics of `input` each member subscribes to that exist, and the subscribers of each topic
// (in member id order).
struct Subscriptions {
  std::map<std::string, std::vector<std::string>> subscribers;  // topic -> member ids
};

Subscriptions IndexSubscriptions(const AssignorInput& input) {
  Subscriptions s;
  for (const auto& [id, m] : input.members) {
    for (const auto& topic : m.subscribed_topics) {
      auto it = input.topics.find(topic);
      if (it == input.topics.end() || it->second <= 0) continue;
      s.subscribers[topic].push_back(id);
    }
  }
  return s;
}

bool Subscribes(const AssignorInput& input, const std::string& member, const std::string& topic) {
  return input.members.at(member).subscribed_topics.contains(topic);
}

}  // namespace

TargetAssignment UniformAssignor::Assign(const AssignorInput& input) const {
  TargetAssignment out;
  std::map<std::string, int64_t> count;
  for (const auto& [id, m] : input.members) {
    out[id];
    count[id] = 0;
  }
  const Subscriptions subs = IndexSubscriptions(input);
  // owner[topic][partition] = member id, empty when unassigned.
  std::map<std::string, std::vector<std::string>> owner;
  for (const auto& [topic, ids] : subs.subscribers) {
    owner[topic].assign(static_cast<size_t>(input.topics.at(topic)), std::string());
  }

  // 1. Keep every valid partition where it was (first claim in member id order wins).
  for (const auto& [id, m] : input.members) {
    for (const auto& [topic, parts] : m.current) {
      auto ot = owner.find(topic);
      if (ot == owner.end() || !m.subscribed_topics.contains(topic)) continue;
      for (int32_t p : parts) {
        if (p < 0 || static_cast<size_t>(p) >= ot->second.size() || !ot->second[p].empty()) {
          continue;
        }
        ot->second[p] = id;
        out[id][topic].insert(p);
        ++count[id];
      }
    }
  }

  // 2. Give each unassigned partition to the least loaded subscriber of its topic (ties: member
  // id). Topics with fewer subscribers go first: they have fewer places to go.
  std::vector<std::string> topic_order;
  for (const auto& [topic, ids] : subs.subscribers) topic_order.push_back(topic);
  std::stable_sort(topic_order.begin(), topic_order.end(),
                   [&](const std::string& a, const std::string& b) {
                     return subs.subscribers.at(a).size() < subs.subscribers.at(b).size();
                   });
  for (const auto& topic : topic_order) {
    const auto& ids = subs.subscribers.at(topic);
    auto& owners = owner.at(topic);
    for (size_t p = 0; p < owners.size(); ++p) {
      if (!owners[p].empty()) continue;
      const std::string* best = &ids[0];
      for (const auto& id : ids) {
        if (count[id] < count[*best]) best = &id;
      }
      owners[p] = *best;
      out[*best][topic].insert(static_cast<int32_t>(p));
      ++count[*best];
    }
  }

  // 3. Balance: while some member holds a partition that another subscriber of its topic with
  // at least 2 fewer partitions could take, move one. Each move lowers the sum of squared counts
  // by at least 2, so this terminates.
  auto is_sticky = [&](const std::string& id, const std::string& topic, int32_t p) {
    return Contains(input.members.at(id).current, topic, p);
  };
  for (;;) {
    std::vector<std::string> donors;
    for (const auto& [id, c] : count) {
      if (c >= 2) donors.push_back(id);
    }
    std::stable_sort(donors.begin(), donors.end(), [&](const std::string& a, const std::string& b) {
      return count[a] > count[b];
    });
    bool moved = false;
    for (const auto& donor : donors) {
      // The least loaded member (ties: member id) that subscribes to a topic the donor holds.
      const std::string* receiver = nullptr;
      for (const auto& [topic, parts] : out[donor]) {
        for (const auto& id : subs.subscribers.at(topic)) {
          if (id == donor) continue;
          if (receiver == nullptr || count[id] < count[*receiver] ||
              (count[id] == count[*receiver] && id < *receiver)) {
            receiver = &id;
          }
        }
      }
      if (receiver == nullptr || count[*receiver] + 2 > count[donor]) continue;
      // Which partition: one the donor did not have before if possible (first in order), else
      // the highest-numbered one of the first topic the receiver subscribes to.
      std::string move_topic;
      int32_t move_partition = -1;
      for (const auto& [topic, parts] : out[donor]) {
        if (!Subscribes(input, *receiver, topic)) continue;
        for (int32_t p : parts) {
          if (!is_sticky(donor, topic, p)) {
            move_topic = topic;
            move_partition = p;
            break;
          }
        }
        if (move_partition >= 0) break;
      }
      if (move_partition < 0) {
        for (const auto& [topic, parts] : out[donor]) {
          if (!Subscribes(input, *receiver, topic)) continue;
          move_topic = topic;
          move_partition = *parts.rbegin();
          break;
        }
      }
      RILL_ASSERT(move_partition >= 0, "uniform assignor: receiver without a common topic");
      const std::string to = *receiver;  // `receiver` points into subs; copy before mutating out
      Remove(out[donor], move_topic, move_partition);
      out[to][move_topic].insert(move_partition);
      owner.at(move_topic)[move_partition] = to;
      --count[donor];
      ++count[to];
      moved = true;
      break;
    }
    if (!moved) break;
  }
  return out;
}

TargetAssignment RangeAssignor::Assign(const AssignorInput& input) const {
  TargetAssignment out;
  for (const auto& [id, m] : input.members) out[id];
  const Subscriptions subs = IndexSubscriptions(input);
  for (const auto& [topic, ids] : subs.subscribers) {
    // Static members sort by instance id so that a restarted member (new member id, same
    // instance id) lands on the same range; dynamic members by member id, after static ones.
    std::vector<std::pair<std::pair<bool, std::string>, std::string>> order;
    for (const auto& id : ids) {
      const auto& inst = input.members.at(id).instance_id;
      order.push_back({{inst.empty(), inst.empty() ? id : inst}, id});
    }
    std::sort(order.begin(), order.end());
    const int32_t partitions = input.topics.at(topic);
    const int32_t n = static_cast<int32_t>(order.size());
    const int32_t per = partitions / n;
    const int32_t extra = partitions % n;
    int32_t next = 0;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t len = per + (i < extra ? 1 : 0);
      for (int32_t p = next; p < next + len; ++p) out[order[i].second][topic].insert(p);
      next += len;
    }
    RILL_ASSERT(next == partitions, "range assignor covered %d of %d partitions", next, partitions);
  }
  return out;
}

const Assignor* FindAssignor(std::string_view name) {
  static const UniformAssignor kUniform;
  static const RangeAssignor kRange;
  if (name == UniformAssignor::kName) return &kUniform;
  if (name == RangeAssignor::kName) return &kRange;
  return nullptr;
}

}  // namespace rill::groups
