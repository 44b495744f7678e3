#pragma once

// The history of a fault-injection run (tests/fault/README.md): every operation the workload,
// the nemesis and the final read performed, one JSON object per line, in the spirit of Jepsen's
// histories. The checker (checker.h) judges a run from this file alone, so a saved history can
// be checked again (`rill-chaos --check FILE`).
//
// A line:
//   {"time_us":1234,"process":"producer-0","type":"ok","f":"send","value":"w0-17",
//    "partition":2,"offset":345,"node":-1,"error":""}
// Fields with their default value (-1, "") may be left out.

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rill::fault {

// Jepsen's operation types: an `invoke` starts an operation; `ok` says it happened, `fail` that
// it did not; `info` that its outcome is unknown, or an observation that is no operation at all
// (a fault, a leader seen in metadata).
enum class OpType { kInvoke, kOk, kFail, kInfo };

// What an operation did (the `f` field). Fixed names, so the checker and the file agree:
//   send          producer: one record, `value` to `partition`; ok carries its `offset`
//   read          consumer: `value` read at `partition`/`offset` (type ok)
//   commit        group member: committed offset `offset` (next to read) for `partition`
//   committed     the group's committed offset for `partition` read after the run (info)
//   assign/revoke/lost   group member: it now owns / released / lost `partition` (info)
//   fault/heal    nemesis: `value` is the fault kind, `node` its target (-1: all)
//   led           nemesis: `node` led `partition` when the fault began (so failover is required)
//   leader        nemesis: metadata named `node` leader of `partition` during the fault
//   final-read    after healing: the record `value` at `partition`/`offset` (type ok)
//   final-unreadable  after healing: `partition` could not be read through (not judged)
struct Op {
  int64_t time_us = 0;  // since the start of the run (steady clock)
  std::string process{};
  OpType type = OpType::kInfo;
  std::string f{};
  std::string value{};
  int32_t partition = -1;
  int64_t offset = -1;
  int32_t node = -1;
  std::string error{};
};

// One line, without the newline.
std::string ToJson(const Op& op);
// Parses a line ToJson wrote (or any flat object with these fields); nullopt if malformed.
std::optional<Op> ParseJson(std::string_view line);

// Reads a whole history file; a malformed line is an error naming its number.
bool ReadHistory(const std::string& path, std::vector<Op>* out, std::string* error);

// Appends operations to a file. Thread-safe; buffered, so Flush() (or the destructor) before the
// file is read.
class HistoryWriter {
 public:
  // Null file when it cannot be opened (see ok()).
  explicit HistoryWriter(const std::string& path);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  bool ok() const { return file_ != nullptr; }
  // Stamps `op.time_us` with NowUs() when it is 0.
  void Append(Op op);
  void Flush();
  // Microseconds since this writer was made.
  int64_t NowUs() const;

 private:
  std::mutex mu_;
  std::FILE* file_;
  const int64_t start_ns_;
};

const char* OpTypeName(OpType type);

}  // namespace rill::fault
