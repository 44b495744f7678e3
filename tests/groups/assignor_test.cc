// Assignor tests: hand-checked cases for uniform and range, then a randomised test of uniform
// (and range) against a checker: completeness, balance, stickiness, determinism.

#include "groups/assignor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "test_seed.h"

namespace rill::groups {
namespace {

AssignorMember Sub(std::initializer_list<const char*> topics) {
  AssignorMember m;
  for (const char* t : topics) m.subscribed_topics.insert(t);
  return m;
}

size_t Count(const TargetAssignment& t, const std::string& id) { return PartitionCount(t.at(id)); }

// Every partition of a topic some member subscribes to is assigned to exactly one member, and
// that member subscribes to the topic; no member gets a partition that does not exist.
void CheckComplete(const AssignorInput& in, const TargetAssignment& out) {
  ASSERT_EQ(out.size(), in.members.size());
  std::map<TopicPartition, std::string> owner;
  for (const auto& [id, a] : out) {
    ASSERT_TRUE(in.members.contains(id)) << id;
    for (const auto& [topic, parts] : a) {
      ASSERT_TRUE(in.members.at(id).subscribed_topics.contains(topic))
          << id << " got " << topic << " without subscribing";
      ASSERT_TRUE(in.topics.contains(topic)) << topic;
      for (int32_t p : parts) {
        ASSERT_GE(p, 0);
        ASSERT_LT(p, in.topics.at(topic)) << topic;
        auto [it, inserted] = owner.emplace(TopicPartition{topic, p}, id);
        ASSERT_TRUE(inserted) << topic << "-" << p << " given to " << it->second << " and " << id;
      }
    }
  }
  for (const auto& [topic, n] : in.topics) {
    bool subscribed = false;
    for (const auto& [id, m] : in.members) subscribed |= m.subscribed_topics.contains(topic);
    if (!subscribed) continue;
    for (int32_t p = 0; p < n; ++p) {
      ASSERT_TRUE(owner.contains(TopicPartition{topic, p})) << topic << "-" << p << " unassigned";
    }
  }
}

// Members with identical subscriptions differ by at most one partition; and no partition could
// move to another subscriber of its topic holding two or more fewer.
void CheckBalanced(const AssignorInput& in, const TargetAssignment& out) {
  for (const auto& [a, ma] : in.members) {
    for (const auto& [b, mb] : in.members) {
      if (ma.subscribed_topics == mb.subscribed_topics) {
        ASSERT_LE(Count(out, a), Count(out, b) + 1) << a << " vs " << b;
      }
      if (Count(out, a) < Count(out, b) + 2) continue;
      for (const auto& [topic, parts] : out.at(a)) {
        ASSERT_FALSE(mb.subscribed_topics.contains(topic))
            << a << " holds " << Count(out, a) << " incl. " << topic << ", " << b << " only "
            << Count(out, b) << " and subscribes to it";
      }
    }
  }
}

std::string Describe(const AssignorInput& in, const TargetAssignment& out) {
  std::string s = "topics:";
  for (const auto& [t, n] : in.topics) s += " " + t + "=" + std::to_string(n);
  s += "\n";
  for (const auto& [id, m] : in.members) {
    s += id + " subscribes";
    for (const auto& t : m.subscribed_topics) s += " " + t;
    s += "\n  had " + ToString(m.current) + "\n  got " + ToString(out.at(id)) + "\n";
  }
  return s;
}

// Homogeneous subscriptions: a member loses a partition it had (and may still have) only if it
// ends with fewer partitions than it could have kept. New partitions of topics nobody else
// subscribes to have nowhere else to go, so they do not count against it. (With heterogeneous
// subscriptions balance can force chains of moves — A gives to a newcomer, then B must give to A —
// so there the check is the fixpoint property instead.)
void CheckSticky(const AssignorInput& in, const TargetAssignment& out) {
  for (const auto& [id, m] : in.members) {
    size_t forced = 0;
    for (const auto& [topic, parts] : out.at(id)) {
      bool shared = false;
      for (const auto& [other, om] : in.members) {
        shared |= other != id && om.subscribed_topics.contains(topic);
      }
      if (shared) continue;
      for (int32_t p : parts) forced += !Contains(m.current, topic, p);
    }
    size_t valid = 0, kept = 0;
    for (const auto& [topic, parts] : m.current) {
      if (!m.subscribed_topics.contains(topic) || !in.topics.contains(topic)) continue;
      for (int32_t p : parts) {
        if (p >= in.topics.at(topic)) continue;
        ++valid;
        if (Contains(out.at(id), topic, p)) ++kept;
      }
    }
    ASSERT_GE(kept, std::min(valid, Count(out, id) - forced))
        << id << " had " << valid << " valid partitions, kept " << kept << ", ends with "
        << Count(out, id) << " of which " << forced << " new and only its own to take\n"
        << Describe(in, out);
  }
}

TEST(UniformAssignorTest, BalancedAcrossMembers) {
  AssignorInput in;
  in.topics = {{"a", 7}, {"b", 5}};
  in.members["m1"] = Sub({"a", "b"});
  in.members["m2"] = Sub({"a", "b"});
  in.members["m3"] = Sub({"a", "b"});
  const auto out = UniformAssignor().Assign(in);
  CheckComplete(in, out);
  CheckBalanced(in, out);
  EXPECT_EQ(Count(out, "m1") + Count(out, "m2") + Count(out, "m3"), 12u);
  EXPECT_EQ(Count(out, "m1"), 4u);
  EXPECT_EQ(Count(out, "m2"), 4u);
  EXPECT_EQ(Count(out, "m3"), 4u);
}

TEST(UniformAssignorTest, UnsubscribedAndMissingTopicsAreIgnored) {
  AssignorInput in;
  in.topics = {{"a", 2}, {"other", 4}};
  in.members["m1"] = Sub({"a", "missing"});
  in.members["m2"] = Sub({"missing"});
  const auto out = UniformAssignor().Assign(in);
  CheckComplete(in, out);
  EXPECT_EQ(ToString(out.at("m1")), "a-[0,1]");
  EXPECT_TRUE(out.at("m2").empty());
}

TEST(UniformAssignorTest, HeterogeneousSubscriptions) {
  // m1 alone subscribes to b; a is shared. m1 should take all of b and little of a.
  AssignorInput in;
  in.topics = {{"a", 6}, {"b", 4}};
  in.members["m1"] = Sub({"a", "b"});
  in.members["m2"] = Sub({"a"});
  const auto out = UniformAssignor().Assign(in);
  CheckComplete(in, out);
  CheckBalanced(in, out);
  EXPECT_EQ(PartitionCount(out.at("m1")), 5u);
  EXPECT_EQ(PartitionCount(out.at("m2")), 5u);
  EXPECT_EQ(out.at("m1").at("b").size(), 4u);
}

TEST(UniformAssignorTest, DeterministicWhateverTheInsertionOrder) {
  AssignorInput a, b;
  a.topics = {{"x", 10}, {"y", 3}, {"z", 8}};
  b.topics.emplace("z", 8);
  b.topics.emplace("y", 3);
  b.topics.emplace("x", 10);
  for (const char* id : {"m1", "m2", "m3", "m4"}) a.members[id] = Sub({"x", "y", "z"});
  for (const char* id : {"m4", "m3", "m2", "m1"}) b.members[id] = Sub({"z", "y", "x"});
  EXPECT_EQ(UniformAssignor().Assign(a), UniformAssignor().Assign(b));
  EXPECT_EQ(UniformAssignor().Assign(a), UniformAssignor().Assign(a));
}

TEST(UniformAssignorTest, StickyWhenAMemberJoins) {
  AssignorInput in;
  in.topics = {{"t", 12}};
  in.members["m1"] = Sub({"t"});
  in.members["m2"] = Sub({"t"});
  auto before = UniformAssignor().Assign(in);
  in.members["m1"].current = before["m1"];
  in.members["m2"].current = before["m2"];
  in.members["m3"] = Sub({"t"});
  const auto after = UniformAssignor().Assign(in);
  CheckComplete(in, after);
  CheckBalanced(in, after);
  // 12 partitions / 3 members: each old member keeps 4 of its 6; the newcomer gets 2 from each.
  EXPECT_EQ(PartitionCount(Intersect(after.at("m1"), before["m1"])), 4u);
  EXPECT_EQ(PartitionCount(Intersect(after.at("m2"), before["m2"])), 4u);
  EXPECT_EQ(Count(after, "m3"), 4u);
}

TEST(UniformAssignorTest, StickyWhenAMemberLeaves) {
  AssignorInput in;
  in.topics = {{"t", 9}};
  for (const char* id : {"m1", "m2", "m3"}) in.members[id] = Sub({"t"});
  auto before = UniformAssignor().Assign(in);
  in.members.erase("m2");
  in.members["m1"].current = before["m1"];
  in.members["m3"].current = before["m3"];
  const auto after = UniformAssignor().Assign(in);
  CheckComplete(in, after);
  CheckBalanced(in, after);
  // Survivors keep everything they had; only m2's three partitions move.
  EXPECT_TRUE(IsSubset(before["m1"], after.at("m1")));
  EXPECT_TRUE(IsSubset(before["m3"], after.at("m3")));
}

TEST(UniformAssignorTest, StickyWhenPartitionsAreAdded) {
  AssignorInput in;
  in.topics = {{"t", 4}};
  for (const char* id : {"m1", "m2"}) in.members[id] = Sub({"t"});
  auto before = UniformAssignor().Assign(in);
  in.members["m1"].current = before["m1"];
  in.members["m2"].current = before["m2"];
  in.topics["t"] = 8;
  const auto after = UniformAssignor().Assign(in);
  CheckComplete(in, after);
  CheckBalanced(in, after);
  EXPECT_TRUE(IsSubset(before["m1"], after.at("m1")));
  EXPECT_TRUE(IsSubset(before["m2"], after.at("m2")));
}

TEST(UniformAssignorTest, ConflictingCurrentAssignmentsGoToOneMember) {
  AssignorInput in;
  in.topics = {{"t", 2}};
  in.members["m1"] = Sub({"t"});
  in.members["m2"] = Sub({"t"});
  in.members["m1"].current = {{"t", {0}}};
  in.members["m2"].current = {{"t", {0}}};
  const auto out = UniformAssignor().Assign(in);
  CheckComplete(in, out);
  EXPECT_EQ(ToString(out.at("m1")), "t-[0]");
  EXPECT_EQ(ToString(out.at("m2")), "t-[1]");
}

TEST(RangeAssignorTest, KafkaRangesPerTopic) {
  AssignorInput in;
  in.topics = {{"a", 7}, {"b", 2}};
  in.members["m1"] = Sub({"a", "b"});
  in.members["m2"] = Sub({"a", "b"});
  in.members["m3"] = Sub({"a"});
  const auto out = RangeAssignor().Assign(in);
  CheckComplete(in, out);
  // a: 7 partitions over m1, m2, m3 -> 3, 2, 2 contiguous. b: 2 over m1, m2 -> 1, 1.
  EXPECT_EQ(ToString(out.at("m1")), "a-[0,1,2] b-[0]");
  EXPECT_EQ(ToString(out.at("m2")), "a-[3,4] b-[1]");
  EXPECT_EQ(ToString(out.at("m3")), "a-[5,6]");
}

TEST(RangeAssignorTest, MoreMembersThanPartitions) {
  AssignorInput in;
  in.topics = {{"a", 2}};
  for (const char* id : {"m1", "m2", "m3"}) in.members[id] = Sub({"a"});
  const auto out = RangeAssignor().Assign(in);
  CheckComplete(in, out);
  EXPECT_EQ(ToString(out.at("m1")), "a-[0]");
  EXPECT_EQ(ToString(out.at("m2")), "a-[1]");
  EXPECT_TRUE(out.at("m3").empty());
}

TEST(RangeAssignorTest, StaticMembersOrderByInstanceId) {
  AssignorInput in;
  in.topics = {{"a", 4}};
  in.members["zzz"] = Sub({"a"});
  in.members["zzz"].instance_id = "i-1";
  in.members["aaa"] = Sub({"a"});
  in.members["aaa"].instance_id = "i-2";
  const auto out = RangeAssignor().Assign(in);
  EXPECT_EQ(ToString(out.at("zzz")), "a-[0,1]");
  EXPECT_EQ(ToString(out.at("aaa")), "a-[2,3]");
}

TEST(AssignorTest, FindByName) {
  ASSERT_NE(FindAssignor("uniform"), nullptr);
  ASSERT_NE(FindAssignor("range"), nullptr);
  EXPECT_EQ(FindAssignor("uniform")->name(), "uniform");
  EXPECT_EQ(FindAssignor("range")->name(), "range");
  EXPECT_EQ(FindAssignor("cooperative-sticky"), nullptr);
}

// Random members, subscriptions and partition counts; many rounds of membership and partition
// changes, each round's output fed back as the next round's current assignment.
TEST(AssignorRandomTest, UniformAgainstChecker) {
  const uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::string> all_topics = {"t0", "t1", "t2", "t3", "t4"};

  for (int run = 0; run < 40; ++run) {
    AssignorInput in;
    const bool homogeneous = pick(0, 1) == 0;
    for (const auto& t : all_topics) {
      if (pick(0, 4) > 0) in.topics[t] = pick(1, 24);
    }
    std::set<std::string> shared;
    for (const auto& t : all_topics) {
      if (pick(0, 1)) shared.insert(t);
    }
    auto random_subscription = [&] {
      if (homogeneous) return shared;
      std::set<std::string> s;
      for (const auto& t : all_topics) {
        if (pick(0, 2) == 0) s.insert(t);
      }
      return s;
    };
    int next_id = 0;
    auto add_member = [&] {
      char id[16];
      std::snprintf(id, sizeof(id), "m%03d", next_id++);
      AssignorMember m;
      m.subscribed_topics = random_subscription();
      in.members[id] = m;
    };
    for (int i = pick(1, 8); i > 0; --i) add_member();

    for (int round = 0; round < 25; ++round) {
      SCOPED_TRACE("run " + std::to_string(run) + " round " + std::to_string(round));
      const auto out = UniformAssignor().Assign(in);
      ASSERT_NO_FATAL_FAILURE(CheckComplete(in, out));
      ASSERT_NO_FATAL_FAILURE(CheckBalanced(in, out));
      if (homogeneous) {
        ASSERT_NO_FATAL_FAILURE(CheckSticky(in, out));
      }
      ASSERT_EQ(out, UniformAssignor().Assign(in)) << "not deterministic";
      {
        // Fixpoint: fed its own output back with nothing else changed, nothing moves.
        AssignorInput again = in;
        for (auto& [id, m] : again.members) m.current = out.at(id);
        ASSERT_EQ(UniformAssignor().Assign(again), out) << "moves partitions with no change";
      }
      if (homogeneous && !in.members.empty()) {
        // Homogeneous: every member keeps at least min(what it had, floor(P / N)).
        size_t total = 0;
        for (const auto& t : shared) {
          if (in.topics.contains(t)) total += static_cast<size_t>(in.topics.at(t));
        }
        const size_t floor_share = total / in.members.size();
        for (const auto& [id, m] : in.members) {
          size_t valid = PartitionCount(Intersect(m.current, out.at(id)));
          size_t had = 0;
          for (const auto& [t, parts] : m.current) {
            for (int32_t p : parts) had += in.topics.contains(t) && p < in.topics.at(t);
          }
          ASSERT_GE(valid, std::min(had, floor_share)) << id;
        }
      }
      for (auto& [id, m] : in.members) m.current = out.at(id);

      // Mutate: join, leave, change partitions, change a subscription.
      switch (pick(0, 5)) {
        case 0:
          add_member();
          break;
        case 1:
          if (in.members.size() > 1) {
            auto it = in.members.begin();
            std::advance(it, pick(0, static_cast<int>(in.members.size()) - 1));
            in.members.erase(it);
          }
          break;
        case 2: {
          const auto& t = all_topics[pick(0, static_cast<int>(all_topics.size()) - 1)];
          in.topics[t] = in.topics.contains(t) ? in.topics[t] + pick(1, 6) : pick(1, 12);
          break;
        }
        case 3: {
          const auto& t = all_topics[pick(0, static_cast<int>(all_topics.size()) - 1)];
          in.topics.erase(t);
          break;
        }
        case 4:
          if (!homogeneous) {
            auto it = in.members.begin();
            std::advance(it, pick(0, static_cast<int>(in.members.size()) - 1));
            it->second.subscribed_topics = random_subscription();
          }
          break;
        default:
          break;  // no change: the output must be identical
      }
    }
  }
}

TEST(AssignorRandomTest, RangeAgainstChecker) {
  const uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int run = 0; run < 200; ++run) {
    AssignorInput in;
    for (int t = 0; t < pick(1, 4); ++t) in.topics["t" + std::to_string(t)] = pick(1, 20);
    for (int i = pick(1, 7); i > 0; --i) {
      AssignorMember m;
      for (const auto& [t, n] : in.topics) {
        if (pick(0, 2) > 0) m.subscribed_topics.insert(t);
      }
      in.members["m" + std::to_string(i)] = m;
    }
    const auto out = RangeAssignor().Assign(in);
    ASSERT_NO_FATAL_FAILURE(CheckComplete(in, out));
    // Per topic: contiguous ranges whose sizes differ by at most one.
    for (const auto& [topic, n] : in.topics) {
      std::vector<size_t> sizes;
      for (const auto& [id, a] : out) {
        if (!in.members.at(id).subscribed_topics.contains(topic)) continue;
        auto it = a.find(topic);
        const size_t size = it == a.end() ? 0 : it->second.size();
        sizes.push_back(size);
        if (size > 0) {
          ASSERT_EQ(static_cast<size_t>(*it->second.rbegin() - *it->second.begin() + 1), size)
              << "range of " << id << " in " << topic << " is not contiguous";
        }
      }
      if (!sizes.empty()) {
        ASSERT_LE(*std::max_element(sizes.begin(), sizes.end()),
                  *std::min_element(sizes.begin(), sizes.end()) + 1);
      }
    }
  }
}

}  // namespace
}  // namespace rill::groups
