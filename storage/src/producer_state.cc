// The producer-state table, its snapshot format and files (rill/storage/producer_state.h).

#include "rill/storage/producer_state.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "rill/proto/assert.h"
#include "rill/proto/crc32c.h"

namespace rill::storage {

namespace {

constexpr char kMagic[4] = {'R', 'P', 'S', 'N'};
constexpr uint16_t kVersion = 1;
constexpr std::string_view kSnapshotSuffix = ".producer-snapshot";
// magic, version, snapshot offset, producer count | ... | crc
constexpr size_t kFileHeaderSize = 4 + 2 + 8 + 4;
constexpr size_t kCrcSize = 4;
// producer id, epoch, last update, batch count
constexpr size_t kProducerSize = 8 + 2 + 8 + 1;
// first seq, last seq, first offset, last offset, max timestamp
constexpr size_t kBatchSize = 4 + 4 + 8 + 8 + 8;

std::string Pid(int64_t id) { return "producer " + std::to_string(id); }

void PutBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads big-endian integers from a span whose length was checked beforehand by the caller
// (Parse checks the remaining size before each record).
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  uint64_t Get(int bytes) {
    RILL_ASSERT(pos_ + static_cast<size_t>(bytes) <= s_.size(), "snapshot reader overrun");
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(s_[pos_++]);
    return v;
  }
  int64_t I64() { return static_cast<int64_t>(Get(8)); }
  int32_t I32() { return static_cast<int32_t>(static_cast<uint32_t>(Get(4))); }
  int16_t I16() { return static_cast<int16_t>(static_cast<uint16_t>(Get(2))); }
  size_t remaining() const { return s_.size() - pos_; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// The sequence `delta` places after `seq`, wrapping past INT32_MAX to 0.
int32_t AddSequence(int32_t seq, int64_t delta) {
  return static_cast<int32_t>((static_cast<int64_t>(seq) + delta) % (int64_t{INT32_MAX} + 1));
}

}  // namespace

BatchIdentity BatchIdentity::FromHeader(const batch::Header& h) {
  return {h.producer_id, h.producer_epoch, h.base_sequence, h.last_offset_delta, h.max_timestamp};
}

int32_t BatchIdentity::last_sequence() const {
  return AddSequence(base_sequence, last_offset_delta);
}

int32_t NextSequence(int32_t seq) { return AddSequence(seq, 1); }

std::string_view ProducerCheckName(ProducerCheck c) {
  switch (c) {
    case ProducerCheck::kAppend:
      return "append";
    case ProducerCheck::kDuplicate:
      return "duplicate";
    case ProducerCheck::kOutOfOrderSequence:
      return "out of order sequence";
    case ProducerCheck::kInvalidProducerEpoch:
      return "invalid producer epoch";
    case ProducerCheck::kInvalidRecord:
      return "invalid record";
    case ProducerCheck::kTooManyProducers:
      return "too many producers";
  }
  return "?";
}

CheckResult ProducerStateTable::Check(const BatchIdentity& b) const {
  if (b.producer_id < 0) return {};
  if (b.producer_epoch < 0 || b.base_sequence < 0 || b.last_offset_delta < 0) {
    return {ProducerCheck::kInvalidRecord, Offset(-1), Offset(-1),
            Pid(b.producer_id) + ": invalid producer fields (epoch " +
                std::to_string(b.producer_epoch) + ", base sequence " +
                std::to_string(b.base_sequence) + ")"};
  }
  auto it = producers_.find(b.producer_id);
  if (it == producers_.end()) {
    // No state for this producer: a new one, or one expired or truncated away. Kafka (since
    // KIP-360) accepts any sequence here rather than failing a producer that lost its state.
    if (producers_.size() >= max_producers_) {
      return {ProducerCheck::kTooManyProducers, Offset(-1), Offset(-1),
              Pid(b.producer_id) + ": the partition already tracks " +
                  std::to_string(producers_.size()) + " producers (the limit)"};
    }
    return {};
  }
  const ProducerEntry& e = it->second;
  // The common case, without scanning the cache: the batch that follows the last one. It cannot
  // also be a duplicate (that would take the cache to span 2^31 sequences).
  if (b.producer_epoch == e.epoch && b.base_sequence == NextSequence(e.batches.back().last_seq)) {
    return {};
  }
  // Duplicates first, as Kafka does: a retry is answered even though its sequence is behind.
  const int32_t last_seq = b.last_sequence();
  if (b.producer_epoch == e.epoch) {
    for (const auto& c : e.batches) {
      if (c.first_seq == b.base_sequence && c.last_seq == last_seq) {
        return {ProducerCheck::kDuplicate, c.first_offset, c.last_offset, {}};
      }
    }
  }
  if (b.producer_epoch < e.epoch) {
    return {ProducerCheck::kInvalidProducerEpoch, Offset(-1), Offset(-1),
            Pid(b.producer_id) + ": epoch " + std::to_string(b.producer_epoch) +
                " is older than the current epoch " + std::to_string(e.epoch)};
  }
  if (b.producer_epoch > e.epoch) {
    if (b.base_sequence == 0) return {};
    return {ProducerCheck::kOutOfOrderSequence, Offset(-1), Offset(-1),
            Pid(b.producer_id) + ": new epoch " + std::to_string(b.producer_epoch) + " (current " +
                std::to_string(e.epoch) + ") must start at sequence 0, got " +
                std::to_string(b.base_sequence)};
  }
  const int32_t expected = NextSequence(e.batches.back().last_seq);
  if (b.base_sequence == expected) return {};
  return {ProducerCheck::kOutOfOrderSequence, Offset(-1), Offset(-1),
          Pid(b.producer_id) + " epoch " + std::to_string(e.epoch) + ": expected sequence " +
              std::to_string(expected) + ", got " + std::to_string(b.base_sequence)};
}

void ProducerStateTable::Update(const BatchIdentity& b, Offset base, Offset last, int64_t now_ms) {
  if (b.producer_id < 0) return;
  RILL_ASSERT(last - base == b.last_offset_delta,
              "producer state: batch [%lld, %lld] does not span last_offset_delta %d",
              static_cast<long long>(base.value()), static_cast<long long>(last.value()),
              b.last_offset_delta);
  auto [it, inserted] = producers_.try_emplace(b.producer_id);
  ProducerEntry& e = it->second;
  if (inserted || e.epoch != b.producer_epoch) {
    e.epoch = b.producer_epoch;
    e.batches.clear();
    e.batches.reserve(4);  // grows with the producer's batches, up to kProducerBatchesKept
  }
  if (e.batches.size() == kProducerBatchesKept) e.batches.erase(e.batches.begin());
  e.batches.push_back({b.base_sequence, b.last_sequence(), base, last, b.max_timestamp});
  e.last_update_ms = now_ms;
}

bool ProducerStateTable::TruncateTo(Offset end) {
  bool changed = false;
  for (auto it = producers_.begin(); it != producers_.end();) {
    auto& batches = it->second.batches;
    const size_t before = batches.size();
    std::erase_if(batches, [&](const ProducerBatch& c) { return c.last_offset >= end; });
    changed |= batches.size() != before;
    it = batches.empty() ? producers_.erase(it) : std::next(it);
  }
  return changed;
}

size_t ProducerStateTable::ExpireIdle(int64_t now_ms, int64_t expiration_ms) {
  return std::erase_if(
      producers_, [&](const auto& p) { return now_ms - p.second.last_update_ms >= expiration_ms; });
}

const ProducerEntry* ProducerStateTable::Find(int64_t producer_id) const {
  auto it = producers_.find(producer_id);
  return it == producers_.end() ? nullptr : &it->second;
}

std::string ProducerStateTable::Serialize(Offset snapshot_offset) const {
  std::string out(kMagic, sizeof(kMagic));
  PutBE(&out, kVersion, 2);
  PutBE(&out, static_cast<uint64_t>(snapshot_offset.value()), 8);
  PutBE(&out, producers_.size(), 4);
  for (const auto& [id, e] : producers_) {
    PutBE(&out, static_cast<uint64_t>(id), 8);
    PutBE(&out, static_cast<uint16_t>(e.epoch), 2);
    PutBE(&out, static_cast<uint64_t>(e.last_update_ms), 8);
    PutBE(&out, e.batches.size(), 1);
    for (const auto& c : e.batches) {
      PutBE(&out, static_cast<uint32_t>(c.first_seq), 4);
      PutBE(&out, static_cast<uint32_t>(c.last_seq), 4);
      PutBE(&out, static_cast<uint64_t>(c.first_offset.value()), 8);
      PutBE(&out, static_cast<uint64_t>(c.last_offset.value()), 8);
      PutBE(&out, static_cast<uint64_t>(c.max_timestamp), 8);
    }
  }
  PutBE(&out, crc32c::Value(out), 4);
  return out;
}

Result<ProducerStateTable::Snapshot> ProducerStateTable::Parse(std::string_view bytes) {
  auto corrupt = [](const std::string& what) {
    return Status::Corruption("producer snapshot: " + what);
  };
  if (bytes.size() < kFileHeaderSize + kCrcSize) {
    return corrupt("truncated: " + std::to_string(bytes.size()) + " bytes, the header needs " +
                   std::to_string(kFileHeaderSize + kCrcSize));
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kCrcSize);
  const uint32_t stored = static_cast<uint32_t>(Reader(bytes.substr(body.size())).Get(4));
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return corrupt("bad magic");
  if (stored != crc32c::Value(body)) {
    return corrupt("crc mismatch (truncated or damaged file of " + std::to_string(bytes.size()) +
                   " bytes)");
  }
  Reader r(body.substr(sizeof(kMagic)));
  const uint16_t version = static_cast<uint16_t>(r.Get(2));
  if (version != kVersion) return corrupt("unsupported version " + std::to_string(version));
  const Offset offset(r.I64());
  const uint32_t count = static_cast<uint32_t>(r.Get(4));
  if (offset < Offset(0)) return corrupt("negative snapshot offset");
  Snapshot out{offset, ProducerStateTable()};
  int64_t prev_id = -1;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string at = "producer entry " + std::to_string(i);
    if (r.remaining() < kProducerSize) return corrupt(at + ": truncated");
    const int64_t id = r.I64();
    ProducerEntry e;
    e.epoch = r.I16();
    e.last_update_ms = r.I64();
    const size_t n = r.Get(1);
    if (id <= prev_id) return corrupt(at + ": producer id " + std::to_string(id) + " out of order");
    if (e.epoch < 0) return corrupt(at + ": negative epoch");
    if (n < 1 || n > kProducerBatchesKept) {
      return corrupt(at + ": " + std::to_string(n) + " batches");
    }
    if (r.remaining() < n * kBatchSize) return corrupt(at + ": truncated batches");
    for (size_t j = 0; j < n; ++j) {
      ProducerBatch c;
      c.first_seq = r.I32();
      c.last_seq = r.I32();
      c.first_offset = Offset(r.I64());
      c.last_offset = Offset(r.I64());
      c.max_timestamp = r.I64();
      // What Update guarantees: a batch of consecutive offsets and sequences, below the
      // snapshot offset, after the previous batch.
      const int64_t span = c.last_offset - c.first_offset;
      if (c.first_seq < 0 || c.last_seq < 0 || c.first_offset < Offset(0) || span < 0 ||
          span > INT32_MAX || c.last_offset >= offset ||
          AddSequence(c.first_seq, span) != c.last_seq ||
          (!e.batches.empty() && c.first_offset <= e.batches.back().last_offset)) {
        return corrupt(at + ": batch " + std::to_string(j) + " inconsistent");
      }
      e.batches.push_back(c);
    }
    out.table.producers_.emplace(id, std::move(e));
    prev_id = id;
  }
  if (r.remaining() != 0) return corrupt(std::to_string(r.remaining()) + " trailing bytes");
  return out;
}

ProducerStateTable ProducerStateTable::Rebuild(ProducerStateTable table, Offset snapshot_offset,
                                               const std::function<bool(batch::Header* h)>& next,
                                               int64_t now_ms) {
  batch::Header h{};
  while (next(&h)) {
    if (Offset(h.base_offset) < snapshot_offset) continue;
    table.Update(BatchIdentity::FromHeader(h), Offset(h.base_offset), Offset(h.last_offset()),
                 now_ms);
  }
  return table;
}

std::string ProducerSnapshotFileName(Offset offset) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(offset.value()));
  return std::string(buf) + std::string(kSnapshotSuffix);
}

std::optional<Offset> ParseProducerSnapshotFileName(std::string_view name) {
  if (name.size() != 20 + kSnapshotSuffix.size() || !name.ends_with(kSnapshotSuffix)) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    if (v > (INT64_MAX - (name[i] - '0')) / 10) return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return Offset(v);
}

Status WriteProducerSnapshot(FileSystem* fs, const std::string& dir,
                             const ProducerStateTable& table, Offset offset) {
  return WriteFileAtomically(fs, JoinPath(dir, ProducerSnapshotFileName(offset)),
                             table.Serialize(offset));
}

Result<LoadedProducerSnapshot> LoadLatestProducerSnapshot(FileSystem* fs, const std::string& dir,
                                                          Offset max_offset) {
  RILL_ASSIGN_OR_RETURN(auto names, fs->ListDir(dir));
  std::vector<std::pair<Offset, std::string>> files;
  for (auto& name : names) {
    if (auto o = ParseProducerSnapshotFileName(name); o && *o <= max_offset) {
      files.emplace_back(*o, std::move(name));
    }
  }
  std::sort(files.begin(), files.end(), std::greater<>());
  LoadedProducerSnapshot out;
  for (const auto& [offset, name] : files) {
    RILL_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(fs, JoinPath(dir, name)));
    auto parsed = ProducerStateTable::Parse(bytes);
    if (parsed.ok() && parsed->offset != offset) {
      parsed = Status::Corruption("producer snapshot: file name says offset " +
                                  std::to_string(offset.value()) + ", contents say " +
                                  std::to_string(parsed->offset.value()));
    }
    if (!parsed.ok()) {
      out.corrupt_files.push_back(name);
      continue;
    }
    out.snapshot = std::move(parsed).value();
    break;
  }
  return out;
}

}  // namespace rill::storage
