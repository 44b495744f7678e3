// meta.properties: a data dir is claimed by the first broker that starts on it; a broker with
// another node id is refused with a message naming both; the file's format is checked.

#include "server/data_dir_identity.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "broker_fixture.h"

namespace rill::broker::testing {
namespace {

TEST(DataDirIdentityTest, ParsesTheFileAndRejectsWhatIsNotOne) {
  auto id = ParseDataDirIdentity("# comment\n\nversion=1\r\n node.id = 7 \n");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, 7);
  EXPECT_EQ(ParseDataDirIdentity("node.id=1\n").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseDataDirIdentity("version=2\nnode.id=1\n").status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(ParseDataDirIdentity("version=1\nnode.id=x\n").status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(ParseDataDirIdentity("version=1\nnode.id=-3\n").status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(ParseDataDirIdentity("version=1\nnode.id\n").status().code(), StatusCode::kCorruption);
}

class DataDirClaimTest : public BrokerFixture {
 protected:
  // A second broker on this fixture's data dir with node id `node`; its Start status.
  Status StartAs(int32_t node) {
    BrokerConfig c = config_;
    c.node_id = node;
    c.voters = "";
    Broker other(
        c, [](ControllerConfig cc) { return std::make_unique<MemoryController>(std::move(cc)); },
        std::make_unique<MemoryLogStore>(true));
    Status st = other.Start();
    other.Shutdown();
    return st;
  }
};

TEST_F(DataDirClaimTest, AnotherNodeIdIsRefusedAndTheOwnerStartsAgain) {
  StartBroker();  // node 1 claims the dir
  broker_->Shutdown();
  broker_.reset();
  const auto file = std::filesystem::path(config_.data_dir) / "meta.properties";
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("version=1\nnode.id=1\n"), std::string::npos) << text;

  Status st = StartAs(2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("belongs to node 1"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("this broker is node 2"), std::string::npos) << st.ToString();
  EXPECT_TRUE(StartAs(1).ok());

  // A damaged file is a clear error, not a silent re-claim.
  std::ofstream(file, std::ios::trunc) << "garbage\n";
  st = StartAs(1);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("meta.properties"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace rill::broker::testing
