#include "topic_config.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace rill::broker {
namespace {

TEST(TopicConfigTest, DefaultsAreKafkasAndEveryKeyIsDocumented) {
  std::map<std::string, std::string> e = EffectiveTopicConfigs({});
  EXPECT_EQ(e.at("retention.ms"), "604800000");
  EXPECT_EQ(e.at("retention.bytes"), "-1");
  EXPECT_EQ(e.at("segment.bytes"), "1073741824");
  EXPECT_EQ(e.at("segment.ms"), "604800000");
  EXPECT_EQ(e.at("flush.policy"), "group");
  EXPECT_EQ(e.at("max.message.bytes"), "1048588");
  EXPECT_EQ(e.at("cleanup.policy"), "delete");
  EXPECT_EQ(e.at("message.timestamp.type"), "CreateTime");
  EXPECT_EQ(e.at("min.insync.replicas"), "1");
  EXPECT_EQ(e.at("index.interval.bytes"), "4096");
  EXPECT_EQ(e.size(), TopicConfigDefs().size());
  for (const TopicConfigDef& d : TopicConfigDefs()) {
    EXPECT_FALSE(d.doc.empty()) << d.name;
    // Every default is itself valid.
    EXPECT_TRUE(ValidateTopicConfigEntry(std::string(d.name), std::string(d.default_value)).ok())
        << d.name;
  }
}

TEST(TopicConfigTest, ValidValuesPass) {
  std::map<std::string, std::string> ok = {{"retention.ms", "-1"},
                                           {"retention.bytes", "1073741824"},
                                           {"segment.bytes", "1048576"},
                                           {"segment.ms", "3600000"},
                                           {"flush.policy", "interval"},
                                           {"flush.interval.ms", "5"},
                                           {"max.message.bytes", "10485760"},
                                           {"cleanup.policy", "delete"},
                                           {"message.timestamp.type", "LogAppendTime"},
                                           {"min.insync.replicas", "2"},
                                           {"index.interval.bytes", "0"}};
  EXPECT_TRUE(ValidateTopicConfigs(ok).ok()) << ValidateTopicConfigs(ok).ToString();
  Result<TopicConfig> c = ParseTopicConfig(ok);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->retention_ms, -1);
  EXPECT_EQ(c->segment_bytes, 1048576);
  EXPECT_EQ(c->flush_policy, TopicFlushPolicy::kInterval);
  EXPECT_EQ(c->flush_interval_ms, 5);
  EXPECT_EQ(c->max_message_bytes, 10485760);
  EXPECT_EQ(c->timestamp_type, TopicTimestampType::kLogAppendTime);
  EXPECT_EQ(c->min_insync_replicas, 2);
  EXPECT_EQ(c->index_interval_bytes, 0);
}

TEST(TopicConfigTest, BadEntriesNameTheKeyAndValue) {
  struct Case {
    const char* key;
    const char* value;
  };
  for (Case c : {Case{"retention.ms", "-2"}, Case{"retention.ms", "7d"}, Case{"retention.ms", ""},
                 Case{"retention.bytes", "1.5"}, Case{"segment.bytes", "0"},
                 Case{"segment.bytes", "99999999999"}, Case{"segment.ms", "0"},
                 Case{"flush.policy", "always"}, Case{"flush.interval.ms", "0"},
                 Case{"max.message.bytes", "-1"}, Case{"message.timestamp.type", "createtime"},
                 Case{"min.insync.replicas", "0"}, Case{"index.interval.bytes", " 1"},
                 Case{"retention.ms", "99999999999999999999"}}) {
    Status st = ValidateTopicConfigs({{c.key, c.value}});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.key << "=" << c.value;
    EXPECT_NE(st.message().find(c.key), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find(std::string("'") + c.value + "'"), std::string::npos)
        << st.ToString();
  }
}

TEST(TopicConfigTest, UnknownKeyAndCompactAreRejectedClearly) {
  Status unknown = ValidateTopicConfigs({{"retention.hours", "1"}});
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("unknown topic config 'retention.hours'"), std::string::npos);
  EXPECT_NE(unknown.message().find("retention.ms"), std::string::npos);  // lists known keys

  Status compact = ValidateTopicConfigs({{"cleanup.policy", "compact"}});
  EXPECT_FALSE(compact.ok());
  EXPECT_NE(compact.message().find("not supported"), std::string::npos) << compact.ToString();
}

TEST(TopicConfigTest, DescribeMarksOverrides) {
  std::vector<DescribedTopicConfig> d = DescribeTopicConfigs({{"retention.ms", "1000"}});
  ASSERT_EQ(d.size(), TopicConfigDefs().size());
  std::set<std::string> names;
  for (const DescribedTopicConfig& c : d) {
    names.insert(c.name);
    EXPECT_FALSE(c.doc.empty());
    if (c.name == "retention.ms") {
      EXPECT_FALSE(c.is_default);
      EXPECT_EQ(c.value, "1000");
    } else {
      EXPECT_TRUE(c.is_default) << c.name;
    }
  }
  EXPECT_EQ(names.size(), d.size());
}

}  // namespace
}  // namespace rill::broker
