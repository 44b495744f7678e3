#include "topic_rules.h"

#include <gtest/gtest.h>

#include <string>

namespace rill::broker {
namespace {

TEST(TopicRulesTest, AcceptsKafkaNames) {
  for (const char* name : {"a", "orders", "Orders.v2", "a_b-c.d", "0", "...", "a..b"}) {
    EXPECT_TRUE(ValidateTopicName(name, false).ok()) << name;
  }
  EXPECT_TRUE(ValidateTopicName(std::string(249, 'x'), false).ok());
}

TEST(TopicRulesTest, RejectsBadNamesWithAMessageNamingTheProblem) {
  Status empty = ValidateTopicName("", false);
  EXPECT_EQ(empty.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.message().find("empty"), std::string::npos);

  Status too_long = ValidateTopicName(std::string(250, 'x'), false);
  EXPECT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("249"), std::string::npos);

  EXPECT_FALSE(ValidateTopicName(".", false).ok());
  EXPECT_FALSE(ValidateTopicName("..", false).ok());

  Status slash = ValidateTopicName("a/b", false);
  EXPECT_FALSE(slash.ok());
  EXPECT_NE(slash.message().find("'/'"), std::string::npos) << slash.ToString();
  Status ctrl = ValidateTopicName(std::string("a\nb"), false);
  EXPECT_NE(ctrl.message().find("\\x0a"), std::string::npos) << ctrl.ToString();
  for (const char* name : {"a b", "a:b", "ü", "a*", "a+b"}) {
    EXPECT_FALSE(ValidateTopicName(name, false).ok()) << name;
  }
}

TEST(TopicRulesTest, DoubleUnderscoreIsReservedForInternalTopics) {
  Status user = ValidateTopicName("__consumer_offsets", false);
  EXPECT_FALSE(user.ok());
  EXPECT_NE(user.message().find("internal"), std::string::npos);
  EXPECT_TRUE(ValidateTopicName("__consumer_offsets", true).ok());
  EXPECT_TRUE(ValidateTopicName("_single", false).ok());
}

TEST(TopicRulesTest, CollisionKeyTreatsDotAndUnderscoreAlike) {
  EXPECT_EQ(CollisionKey("a.b_c"), "a_b_c");
  EXPECT_EQ(CollisionKey("a_b.c"), CollisionKey("a.b_c"));
  EXPECT_NE(CollisionKey("a-b"), CollisionKey("a_b"));
}

TEST(TopicRulesTest, PartitionCountAndReplicationFactorBounds) {
  EXPECT_FALSE(ValidatePartitionCount(0, 100).ok());
  EXPECT_FALSE(ValidatePartitionCount(-1, 100).ok());
  EXPECT_TRUE(ValidatePartitionCount(1, 100).ok());
  EXPECT_TRUE(ValidatePartitionCount(100, 100).ok());
  EXPECT_FALSE(ValidatePartitionCount(101, 100).ok());

  EXPECT_FALSE(ValidateReplicationFactor(0, 3).ok());
  EXPECT_TRUE(ValidateReplicationFactor(3, 3).ok());
  Status four = ValidateReplicationFactor(4, 3);
  EXPECT_FALSE(four.ok());
  EXPECT_NE(four.message().find("[1, 3]"), std::string::npos) << four.ToString();
  EXPECT_FALSE(ValidateReplicationFactor(1, 0).ok());
}

}  // namespace
}  // namespace rill::broker
