#include "groups/assignor.h"

#include <algorithm>
#include <queue>
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

}  // namespace

TargetAssignment UniformAssignor::Assign(const AssignorInput& input) const {
  // Members by index, in member id order: index order is id order, so ties broken by index are
  // broken by member id.
  std::vector<const std::string*> ids;
  std::vector<const AssignorMember*> members;
  for (const auto& [id, m] : input.members) {
    ids.push_back(&id);
    members.push_back(&m);
  }
  const int n = static_cast<int>(members.size());

  // Topics that exist and have subscribers, in name order.
  struct TopicState {
    const std::string* name;
    std::vector<int> subscribers;  // ascending member index
    std::vector<int> owner;        // partition -> member index, -1 when unassigned
  };
  std::vector<TopicState> topics;
  std::map<std::string_view, int> topic_index;
  for (const auto& [name, partitions] : input.topics) {
    if (partitions <= 0) continue;
    TopicState t{&name, {}, std::vector<int>(static_cast<size_t>(partitions), -1)};
    for (int i = 0; i < n; ++i) {
      if (members[i]->subscribed_topics.contains(name)) t.subscribers.push_back(i);
    }
    if (t.subscribers.empty()) continue;
    topic_index[name] = static_cast<int>(topics.size());
    topics.push_back(std::move(t));
  }
  auto subscribes = [&](int member, int topic) {
    return members[member]->subscribed_topics.contains(*topics[topic].name);
  };
  auto sticky = [&](int member, int topic, int32_t p) {
    return Contains(members[member]->current, *topics[topic].name, p);
  };

  std::vector<int64_t> count(static_cast<size_t>(n), 0);
  std::vector<std::map<int, std::set<int32_t>>> held(static_cast<size_t>(n));  // topic -> parts
  auto give = [&](int member, int topic, int32_t p) {
    topics[topic].owner[p] = member;
    held[member][topic].insert(p);
    ++count[member];
  };

  // 1. Keep every valid partition where it was (first claim in member id order wins).
  for (int i = 0; i < n; ++i) {
    for (const auto& [name, parts] : members[i]->current) {
      auto ti = topic_index.find(name);
      if (ti == topic_index.end() || !subscribes(i, ti->second)) continue;
      auto& owner = topics[ti->second].owner;
      for (int32_t p : parts) {
        if (p >= 0 && static_cast<size_t>(p) < owner.size() && owner[p] < 0) give(i, ti->second, p);
      }
    }
  }

  // 2. Give each unassigned partition to the least loaded subscriber of its topic (ties: member
  // id). Topics with fewer subscribers go first: they have fewer places to go.
  std::vector<int> order(topics.size());
  for (size_t t = 0; t < order.size(); ++t) order[t] = static_cast<int>(t);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return topics[a].subscribers.size() < topics[b].subscribers.size();
  });
  for (int t : order) {
    using Entry = std::pair<int64_t, int>;  // (count, member)
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> least;
    for (int i : topics[t].subscribers) least.emplace(count[i], i);
    auto& owner = topics[t].owner;
    for (size_t p = 0; p < owner.size(); ++p) {
      if (owner[p] >= 0) continue;
      const int i = least.top().second;
      least.pop();
      give(i, t, static_cast<int32_t>(p));
      least.emplace(count[i], i);
    }
  }

  // 3. Balance: while some member holds a partition that another subscriber of its topic with
  // at least 2 fewer partitions could take, move one. Each move lowers the sum of squared counts
  // by at least 2, so this ends.
  std::vector<std::vector<int>> topics_of(static_cast<size_t>(n));  // member -> topic indices
  for (size_t t = 0; t < topics.size(); ++t) {
    for (int i : topics[t].subscribers) topics_of[i].push_back(static_cast<int>(t));
  }
  auto less_loaded = [&](int a, int b) {
    return count[a] < count[b] || (count[a] == count[b] && a < b);
  };
  std::vector<int> least_of(topics.size());  // topic -> least loaded subscriber (ties: id)
  auto recompute_least = [&](int t) {
    int best = topics[t].subscribers.front();
    for (int i : topics[t].subscribers) {
      if (less_loaded(i, best)) best = i;
    }
    least_of[t] = best;
  };
  for (size_t t = 0; t < topics.size(); ++t) recompute_least(static_cast<int>(t));
  for (;;) {
    std::vector<int> donors;
    for (int i = 0; i < n; ++i) {
      if (count[i] >= 2) donors.push_back(i);
    }
    std::stable_sort(donors.begin(), donors.end(),
                     [&](int a, int b) { return count[a] > count[b]; });
    bool moved = false;
    for (int donor : donors) {
      int receiver = -1;
      for (const auto& [t, parts] : held[donor]) {
        const int c = least_of[t];
        if (parts.empty() || c == donor) continue;
        if (receiver < 0 || less_loaded(c, receiver)) receiver = c;
      }
      if (receiver < 0 || count[receiver] + 2 > count[donor]) continue;
      // Which partition: the first one the donor did not have before, else the highest-numbered
      // one of the first topic the receiver subscribes to.
      int move_topic = -1;
      int32_t move_partition = -1;
      for (const auto& [t, parts] : held[donor]) {
        if (!subscribes(receiver, t)) continue;
        for (int32_t p : parts) {
          if (!sticky(donor, t, p)) {
            move_topic = t;
            move_partition = p;
            break;
          }
        }
        if (move_partition >= 0) break;
      }
      if (move_partition < 0) {
        for (const auto& [t, parts] : held[donor]) {
          if (parts.empty() || !subscribes(receiver, t)) continue;
          move_topic = t;
          move_partition = *parts.rbegin();
          break;
        }
      }
      RILL_ASSERT(move_partition >= 0, "uniform assignor: receiver without a common topic");
      held[donor][move_topic].erase(move_partition);
      held[receiver][move_topic].insert(move_partition);
      topics[move_topic].owner[move_partition] = receiver;
      --count[donor];
      ++count[receiver];
      for (int t : topics_of[receiver]) {
        if (least_of[t] == receiver) recompute_least(t);
      }
      for (int t : topics_of[donor]) {
        if (less_loaded(donor, least_of[t])) least_of[t] = donor;
      }
      moved = true;
      break;
    }
    if (!moved) break;
  }

  TargetAssignment out;
  for (int i = 0; i < n; ++i) {
    Assignment& a = out[*ids[i]];
    for (const auto& [t, parts] : held[i]) {
      if (!parts.empty()) a[*topics[t].name] = parts;
    }
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
