// The pure helpers of rillctl (client/tools/tool_util.h): --topic T[:P,P] parsing, partition-list
// and offset cells, JSON strings, exit codes, and the strict parsers of integers, times and
// bootstrap lists.

#include "tool_util.h"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

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

TEST(ToolUtilTest, ParseIntTakesTheWholeTextOrNothing) {
  EXPECT_EQ(ParseInt("5").value(), 5);
  EXPECT_EQ(ParseInt("-42").value(), -42);
  EXPECT_EQ(ParseInt("9223372036854775807").value(), INT64_MAX);
  for (const char* bad : {"", "5abc", " 5", "5 ", "+5", "0x10", "1e3", "9223372036854775808"}) {
    auto r = ParseInt(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST(ToolUtilTest, ParseTimeMsTakesMillisecondsOrIso8601WithAZone) {
  EXPECT_EQ(ParseTimeMs("1796428800000").value(), 1796428800000);
  EXPECT_EQ(ParseTimeMs("0").value(), 0);
  EXPECT_EQ(ParseTimeMs("2026").value(), 2026);  // an integer is milliseconds
  // The issue's example: this is 2026-12-05 at midnight UTC, not 2026 ms.
  EXPECT_EQ(ParseTimeMs("2026-12-05T00:00:00Z").value(), 1796428800000);
  EXPECT_EQ(ParseTimeMs("2026-12-05T10:00:00.250+01:00").value(), 1796461200250);
  EXPECT_EQ(ParseTimeMs("2026-12-05T09:00:00.25Z").value(), 1796461200250);
  EXPECT_EQ(ParseTimeMs("2026-12-05T04:30:00.250-04:30").value(), 1796461200250);
  EXPECT_EQ(ParseTimeMs("2024-02-29T12:00:00Z").value(), 1709208000000);
  EXPECT_EQ(ParseTimeMs("1969-12-31T23:59:59Z").value(), -1000);
  for (const char* bad :
       {"", "2026-12-05", "2026-12-05T00:00:00", "2026-12-05T00:00Z", "2026-13-05T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-12-32T00:00:00Z", "2026-12-05T24:00:00Z",
        "2026-12-05T00:00:00Zjunk", "2026-12-05T00:00:00.Z", "2026-12-05T00:00:00+0100",
        "2026-12-05 00:00:00Z", "yesterday", "12ms"}) {
    auto r = ParseTimeMs(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST(ToolUtilTest, ParseTimeMsAtTakesRelativeTimes) {
  const int64_t now = 1796428800000;
  EXPECT_EQ(ParseTimeMsAt("-1h", now).value(), now - 3'600'000);
  EXPECT_EQ(ParseTimeMsAt("-90s", now).value(), now - 90'000);
  EXPECT_EQ(ParseTimeMsAt("-30m", now).value(), now - 1'800'000);
  EXPECT_EQ(ParseTimeMsAt("-2d", now).value(), now - 2 * 86'400'000);
  EXPECT_EQ(ParseTimeMsAt("-250ms", now).value(), now - 250);
  EXPECT_EQ(ParseTimeMsAt("2026-12-05T00:00:00Z", now).value(), 1796428800000);
  EXPECT_EQ(ParseTimeMsAt("1000", now).value(), 1000);
  for (const char* bad : {"-1x", "-h", "--1h", "-1.5h", "1h", "-1H", "-99999999999999999d"}) {
    auto r = ParseTimeMsAt(bad, now);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST(ToolUtilTest, ParseStartPositionTakesKcatForms) {
  const int64_t now = 1796428800000;
  using K = StartPosition::Kind;
  const std::vector<std::tuple<std::string, K, int64_t>> good = {
      {"earliest", K::kEarliest, 0},
      {"beginning", K::kEarliest, 0},
      {"latest", K::kLatest, 0},
      {"end", K::kLatest, 0},
      {"42", K::kOffset, 42},
      {"0", K::kOffset, 0},
      {"offset:7", K::kOffset, 7},
      {"-5", K::kFromEnd, 5},
      {"@1000", K::kTimestamp, 1000},
      {"@-1h", K::kTimestamp, now - 3'600'000},
      {"@2026-12-05T00:00:00Z", K::kTimestamp, 1796428800000},
      {"timestamp:2026-12-05T00:00:00Z", K::kTimestamp, 1796428800000},
  };
  for (const auto& [text, kind, value] : good) {
    auto p = ParseStartPosition(text, now);
    ASSERT_TRUE(p.ok()) << text << ": " << p.status().ToString();
    EXPECT_EQ(p->kind, kind) << text;
    EXPECT_EQ(p->value, value) << text;
  }
  for (const char* bad : {"", "latests", "5abc", "-0", "offset:-3", "offset:", "@", "@noon",
                          "@2026-12-05T00:00:00", "timestamp:", "+5"}) {
    auto p = ParseStartPosition(bad, now);
    ASSERT_FALSE(p.ok()) << "'" << bad << "' accepted";
    EXPECT_NE(p.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << p.status().message();
  }
}

TEST(ToolUtilTest, JsonRecordLinesReadWhatConsumePrints) {
  // consume --format json's own output, every byte value included, reads back as it was.
  std::string bytes;
  for (int c = 0; c < 256; ++c) bytes += static_cast<char>(c);
  const std::string line =
      "{\"topic\":\"t\",\"partition\":0,\"offset\":7,\"timestamp\":1796428800000,"
      "\"key\":" +
      JsonString("k\"1") + ",\"value\":" + JsonString(bytes) +
      ",\"headers\":{\"a\":\"1\",\"b\":null}}";
  auto r = ParseJsonRecordLine(line);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->key, "k\"1");
  EXPECT_EQ(r->value, bytes);
  EXPECT_EQ(r->timestamp_ms, 1796428800000);
  ASSERT_EQ(r->headers.size(), 2u);
  EXPECT_EQ(r->headers[0], (std::pair<std::string, std::optional<std::string>>{"a", "1"}));
  EXPECT_EQ(r->headers[1].second, std::nullopt);
  // Null and absent key and value; standard escapes; a surrogate pair; spaces.
  r = ParseJsonRecordLine(R"( { "key" : null , "value": "\u00e9\u20ac\ud83d\ude00\n\/" } )");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->key, std::nullopt);
  EXPECT_EQ(r->value, "\xe9\xe2\x82\xac\xf0\x9f\x98\x80\n/");  // \u00e9: a raw byte, as escaped
  r = ParseJsonRecordLine("{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value, std::nullopt);
  EXPECT_EQ(r->timestamp_ms, std::nullopt);
  for (const char* bad : {"", "plain text", "{\"value\":\"x\"", "{\"value\":x}", "{\"value\":1}",
                          "{\"headers\":[]}", "{\"timestamp\":\"soon\"}", "{} trailing",
                          R"({"value":"\q"})", R"({"value":"\ud83d"})", "{\"a\":1,}"}) {
    EXPECT_FALSE(ParseJsonRecordLine(bad).ok()) << "'" << bad << "' accepted";
  }
  EXPECT_NE(ParseJsonRecordLine("{\"value\":x}").status().message().find("column 10"),
            std::string::npos);
}

TEST(ToolUtilTest, RecordTemplatesFormatLikeKcat) {
  const std::string key = "k1", value = "hello";
  client::ConsumerRecord r;
  r.topic = "orders";
  r.partition = 2;
  r.offset = 41;
  r.timestamp_ms = 1796428800000;
  r.key = key;
  r.value = value;
  r.headers = {{"a", std::string_view("1")}, {"b", std::nullopt}};
  auto t = RecordTemplate::Parse(R"(%t [%p] @%o %T: %k=%s (%K/%S) {%h} 100%%\t|\\\n)");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::string out;
  t->Format(r, &out);
  EXPECT_EQ(out, "orders [2] @41 1796428800000: k1=hello (2/5) {a=1,b=} 100%\t|\\\n");
  // Null key and value print as nothing, their sizes as -1.
  r.key.reset();
  r.value.reset();
  r.headers.clear();
  out.clear();
  RecordTemplate::Parse("%k|%v|%K|%S|%h").value().Format(r, &out);
  EXPECT_EQ(out, "||-1|-1|");
  for (const char* bad : {"%x", "ends with %", R"(\q)"}) {
    auto b = RecordTemplate::Parse(bad);
    EXPECT_FALSE(b.ok()) << "'" << bad << "' accepted";
  }
  EXPECT_NE(RecordTemplate::Parse("%t %x").status().message().find("'%x'"), std::string::npos);
}

TEST(ToolUtilTest, ParseBootstrapListNeedsAHostAndAPortInEveryEntry) {
  EXPECT_EQ(ParseBootstrapList("localhost:9092").value(),
            (std::vector<std::string>{"localhost:9092"}));
  EXPECT_EQ(ParseBootstrapList("a:1,10.0.0.2:9092,[::1]:65535").value(),
            (std::vector<std::string>{"a:1", "10.0.0.2:9092", "[::1]:65535"}));
  for (const char* bad : {"127.0.0.1", "", "a:1,", ",a:1", "a:", ":9092", "a:0", "a:65536",
                          "a:9092x", "a:-1", "::1:9092", "[::1]", "a:1,b"}) {
    auto r = ParseBootstrapList(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "' accepted";
  }
  auto no_port = ParseBootstrapList("127.0.0.1");
  ASSERT_FALSE(no_port.ok());
  EXPECT_NE(no_port.status().message().find("'127.0.0.1'"), std::string::npos);
  EXPECT_NE(no_port.status().message().find("host:port"), std::string::npos);
}

}  // namespace
}  // namespace rill::tools
