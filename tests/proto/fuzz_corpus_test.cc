// Replays the committed fuzz corpus (tests/proto/corpus/) through LLVMFuzzerTestOneInput
// compiled with GCC, so every test run exercises the fuzz entry point. A crash or failed
// RILL_ASSERT fails the test.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(FuzzCorpus, EveryCorpusFileDecodesWithoutCrashing) {
  std::filesystem::path dir(RILL_FUZZ_CORPUS_DIR);
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
              0);
    ++files;
  }
  EXPECT_GE(files, 5) << "the corpus should hold the committed seed inputs";
}

TEST(FuzzCorpus, EmptyAndTinyInputs) {
  uint8_t b[1] = {0};
  EXPECT_EQ(LLVMFuzzerTestOneInput(b, 0), 0);
  EXPECT_EQ(LLVMFuzzerTestOneInput(b, 1), 0);
}

}  // namespace
