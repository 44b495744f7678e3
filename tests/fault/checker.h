#pragma once

// The checker of a fault-injection run: a pure function of the history (history.h), with no
// processes, clocks or files, so its rules are unit-tested on hand-written histories
// (checker_test.cc). tests/fault/README.md lists what each count means.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "history.h"

namespace rill::fault {

struct CheckOptions {
  // Duplicates (one value written at two offsets by a producer's retry) are counted always, and
  // fail the run only with this set: without idempotence a retry may write a record twice.
  bool fail_on_duplicates = false;
  // An OFFSET_OUT_OF_RANGE answer to a consumer for an offset the log holds is counted always,
  // and fails the run only with this set: the broker answers so while a new leader's high
  // watermark is below what consumers already read (tests/fault/README.md, known bugs).
  bool fail_on_out_of_range = false;
  // Reordered sends are counted always, and fail the run only with this set: the client keeps
  // a partition's order only while its leader stays put (tests/fault/README.md, known bugs).
  bool fail_on_reorder = false;
  // At most this many examples of each kind of anomaly are kept in CheckResult::examples.
  int max_examples = 5;
};

// Unavailability after the faults of one kind: for one fault, the time from its start until
// every partition had acknowledged an acks=all write sent after the fault began.
struct Unavailability {
  int faults = 0;
  int64_t total_us = 0;
  int64_t longest_us = 0;
  std::vector<int64_t> each_us;  // per fault, in the order they happened
  // The middle of each_us (the lower of the two middle values for an even count); 0 when empty.
  int64_t median_us() const;
};

struct CheckResult {
  int64_t acked = 0;            // sends acknowledged (type ok)
  int64_t unacked_written = 0;  // sends not acknowledged whose value is in the log anyway
  int64_t lost = 0;             // acknowledged values missing from the final read
  int64_t wrong_offset = 0;     // acknowledged values found, but not at the acknowledged offset
  int64_t truncated_reads = 0;  // consumer reads of an offset the final log holds otherwise
  int64_t duplicates = 0;       // extra copies of a value in the final log
  int64_t phantoms = 0;         // values in the log that no producer sent
  int64_t out_of_order = 0;     // offsets going back: in the final read or a consumer's reads
  // Acknowledged records that landed below a record their producer sent to the partition
  // before them (the producer runs with max_in_flight = 1, which promises the send order).
  int64_t reordered_sends = 0;
  // Informational: an ack that completed after the ack of a later record of the same producer
  // and partition (the client promises completions in order per partition).
  int64_t late_acks = 0;
  int64_t commits_backwards = 0;  // a committed offset lower than one committed before it
  int64_t double_owners = 0;      // two group members owning one partition at once
  int64_t missing_failovers = 0;  // a partition of a downed leader never seen led by another node
  int64_t spurious_out_of_range = 0;  // out-of-range answers for offsets the final log holds
  int64_t reads = 0;                  // consumer reads checked
  int64_t commits = 0;                // acknowledged commits checked
  int64_t final_records = 0;          // records in the final read
  int64_t unreadable_partitions = 0;  // not read through after the run: not judged, a failure
  int faults = 0;
  int64_t unavailable_total_us = 0;
  std::map<std::string, Unavailability> unavailability;  // by fault kind
  // "lost: w0-17 acknowledged at 2@345", at most CheckOptions::max_examples per kind.
  std::vector<std::string> examples;

  bool ok(const CheckOptions& options) const;
};

CheckResult Check(const std::vector<Op>& history, const CheckOptions& options = {});

// "cycles 100, acked 1,234,567, lost 0, wrong offset 0, truncated reads 0, duplicates 0,
// unavailable 3.2 s total"
std::string SummaryLine(const CheckResult& result, int cycles);
// The summary line, the other counts, the longest unavailability per fault kind and the
// examples, one per line.
std::string Report(const CheckResult& result, int cycles);

// 1234567 -> "1,234,567"
std::string WithThousands(int64_t n);

}  // namespace rill::fault
