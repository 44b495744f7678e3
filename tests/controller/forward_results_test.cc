// Raft/Forward results carry the controller's own TopicOpError between brokers
// (controller/raft_codec.h), never a rill.v1 wire code.

#include <gtest/gtest.h>

#include <vector>

#include "raft_codec.h"

namespace rill::broker {
namespace {

TEST(ForwardResultsTest, EveryTopicOpErrorRoundTrips) {
  std::vector<TopicOpResult> results;
  for (int e = 0; e <= static_cast<int>(kLastTopicOpError); ++e) {
    results.push_back({"t" + std::to_string(e), static_cast<TopicOpError>(e), "m"});
  }
  internal::v1::ForwardResponse wire;
  EncodeForwardResults(results, &wire);
  ASSERT_EQ(wire.results_size(), static_cast<int>(results.size()));
  std::vector<TopicOpResult> back = DecodeForwardResults(wire);
  ASSERT_EQ(back.size(), results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(back[i].topic, results[i].topic);
    EXPECT_EQ(back[i].error, results[i].error) << TopicOpErrorName(results[i].error);
    EXPECT_EQ(back[i].message, results[i].message);
  }
}

TEST(ForwardResultsTest, AnErrorThisNodeDoesNotKnowIsUnknown) {
  internal::v1::ForwardResponse wire;
  auto* r = wire.add_results();
  r->set_topic("t");
  r->set_error(static_cast<internal::v1::TopicOpError>(99));  // from a newer broker
  r->set_error_message("new");
  std::vector<TopicOpResult> back = DecodeForwardResults(wire);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].error, TopicOpError::kUnknown);
  EXPECT_EQ(back[0].message, "new");
}

}  // namespace
}  // namespace rill::broker
