// libFuzzer entry point for the record-batch decoder. Built with clang as rill_fuzz_batch_reader
// (cmake --build build/dev --target rill_fuzz_batch_reader), and with GCC into
// rill_proto_fuzz_corpus_test, which replays tests/proto/corpus/ through this same function.
//
// The input is treated as: a batch (CRC checked and unchecked), a stream of batches, and a
// compressed payload for every codec. Any crash, sanitizer report or broken invariant is a bug.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rill/proto/batch_header.h"
#include "rill/proto/compression.h"
#include "rill/proto/record_batch.h"

namespace {

constexpr size_t kLimit = 1 << 20;

void DecodeBatch(std::string_view bytes, bool verify_crc) {
  rill::batch::DecodeOptions opts;
  opts.verify_crc = verify_crc;
  opts.max_decompressed_bytes = kLimit;
  auto reader = rill::batch::BatchReader::Open(bytes, opts);
  if (!reader.ok()) {
    RILL_ASSERT(!reader.status().message().empty(), "error without a message");
    return;
  }
  rill::batch::RecordView v;
  int32_t n = 0;
  for (;;) {
    auto more = reader->Next(&v);
    if (!more.ok()) {
      RILL_ASSERT(!more.status().message().empty(), "error without a message");
      return;
    }
    if (!*more) break;
    ++n;
    RILL_ASSERT(n <= reader->header().record_count, "more records than recordCount");
  }
  RILL_ASSERT(n == reader->header().record_count, "end reported with %d of %d records", n,
              reader->header().record_count);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  DecodeBatch(bytes, /*verify_crc=*/false);
  DecodeBatch(bytes, /*verify_crc=*/true);

  rill::batch::BatchIterator it(bytes, /*verify_crc=*/false);
  size_t total = 0;
  while (it.Next()) total += it.batch().size();
  RILL_ASSERT(total <= bytes.size(), "iterator walked past its input");

  for (auto c : {rill::batch::Compression::kGzip, rill::batch::Compression::kSnappy,
                 rill::batch::Compression::kLz4, rill::batch::Compression::kZstd}) {
    auto out = rill::batch::Decompress(c, bytes, kLimit);
    if (out.ok()) RILL_ASSERT(out->size() <= kLimit, "decompression exceeded its limit");
  }
  return 0;
}
