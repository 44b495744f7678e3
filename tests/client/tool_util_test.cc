// The pure helpers of rillctl (client/tools/tool_util.h): --topic T[:P,P] parsing, partition-list
// and offset cells, JSON strings and exit codes.

#include "tool_util.h"

#include <gtest/gtest.h>

namespace rill::tools {
namespace {

TEST(ToolUtilTest, ParseTopicPartitionsTakesATopicAndOptionalPartitions) {
  auto all = ParseTopicPartitions("orders");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->topic, "orders");
  EXPECT_TRUE(all->partitions.empty());

  auto some = ParseTopicPartitions("orders.v2:3,0,3,12");
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  EXPECT_EQ(some->topic, "orders.v2");
  EXPECT_EQ(some->partitions, (std::vector<int32_t>{3, 0, 12}));  // duplicates dropped
}

TEST(ToolUtilTest, ParseTopicPartitionsRejectsMalformedArguments) {
  for (const char* bad :
       {"", ":1", "t:", "t:1,", "t:,1", "t:x", "t:-1", "t:1a", "t:1 ", "t:99999999999"}) {
    auto r = ParseTopicPartitions(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "' accepted";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(ToolUtilTest, FormatTopicPartitionsGroupsByTopicInFirstSeenOrder) {
  EXPECT_EQ(FormatTopicPartitions({}), "-");
  EXPECT_EQ(FormatTopicPartitions({{"b", 3}, {"a", 1}, {"b", 0}, {"a", 0}}), "b:0,3 a:0,1");
  EXPECT_EQ(FormatTopicPartitions({{"t", 7}}), "t:7");
}

TEST(ToolUtilTest, OffsetCellShowsADashForUnsetOffsets) {
  EXPECT_EQ(OffsetCell(-1), "-");
  EXPECT_EQ(OffsetCell(0), "0");
  EXPECT_EQ(OffsetCell(1234567890123), "1234567890123");
}

TEST(ToolUtilTest, ExitCodesFollowTheDocumentedTable) {
  EXPECT_EQ(ExitCodeFor(Status::OK()), 0);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("GROUP_ID_NOT_FOUND: no group g")), 3);
  EXPECT_EQ(ExitCodeFor(Status::Unavailable("cannot reach")), 4);
  EXPECT_EQ(ExitCodeFor(Status::Failed("GROUP_NOT_EMPTY: group g has 1 active members")), 1);
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), 1);
}

TEST(ToolUtilTest, JsonStringEscapes) {
  EXPECT_EQ(JsonString("a\"b\\c\n"), R"("a\"b\\c\n")");
  EXPECT_EQ(JsonString(std::string("\x01\xff", 2)), R"("\u0001\u00ff")");
  EXPECT_EQ(JsonString("h\xc3\xa9"), "\"h\xc3\xa9\"");
}

}  // namespace
}  // namespace rill::tools
