// KvStore: atomic write batches, get, prefix scan, persistence across reopen.

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "rill/storage/kv_store.h"

namespace rill::storage {
namespace {

TEST(KvStoreTest, WriteBatchGetPrefixScanAndReopen) {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("rill-kv-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  {
    auto kv = KvStore::Open(dir);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    WriteBatch b;
    b.Put("offsets/g1/t-0", "10");
    b.Put("offsets/g1/t-1", "20");
    b.Put("offsets/g2/t-0", "30");
    b.Put("applied", "7");
    b.Delete("missing");
    ASSERT_TRUE((*kv)->Write(b, /*sync=*/true).ok());
    EXPECT_EQ(*(*kv)->Get("applied"), "7");
    EXPECT_TRUE((*kv)->Get("nope").status().IsNotFound());
    auto scan = (*kv)->PrefixScan("offsets/g1/");
    ASSERT_TRUE(scan.ok());
    ASSERT_EQ(scan->size(), 2u);
    EXPECT_EQ((*scan)[0], std::make_pair(std::string("offsets/g1/t-0"), std::string("10")));
    EXPECT_EQ((*scan)[1], std::make_pair(std::string("offsets/g1/t-1"), std::string("20")));
    ASSERT_TRUE((*kv)->Delete("offsets/g1/t-0", true).ok());
    ASSERT_TRUE((*kv)->Put("binary", std::string("a\0b", 3), true).ok());
  }
  auto kv = KvStore::Open(dir);
  ASSERT_TRUE(kv.ok());
  EXPECT_TRUE((*kv)->Get("offsets/g1/t-0").status().IsNotFound());
  EXPECT_EQ(*(*kv)->Get("offsets/g2/t-0"), "30");
  EXPECT_EQ(*(*kv)->Get("binary"), std::string("a\0b", 3));
  EXPECT_EQ((*kv)->PrefixScan("offsets/")->size(), 2u);
  EXPECT_TRUE((*kv)->PrefixScan("zzz")->empty());
  kv->reset();
  // A second open of a locked database is an error value, not a crash.
  auto a = KvStore::Open(dir);
  auto b = KvStore::Open(dir);
  EXPECT_TRUE(a.ok());
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kIOError) << b.status().ToString();
  a->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rill::storage
