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
  // At most this many examples of each kind of anomaly are kept in CheckResult::examples.
  int max_examples = 5;
};

// Unavailability after the faults of one kind: for one fault, the time from its start until
// every partition had an acks=all write acknowledged after it.
struct Unavailability {
  int faults = 0;
  int64_t total_us = 0;
  int64_t longest_us = 0;
};

struct CheckResult {
  int64_t acked = 0;             // sends acknowledged (type ok)
  int64_t unacked_written = 0;   // sends not acknowledged whose value is in the log anyway
  int64_t lost = 0;              // acknowledged values missing from the final read
  int64_t wrong_offset = 0;      // acknowledged values found, but not at the acknowledged offset
  int64_t truncated_reads = 0;   // consumer reads of an offset the final log holds otherwise
  int64_t duplicates = 0;        // extra copies of a value in the final log
  int64_t phantoms = 0;          // values in the log that no producer sent
  int64_t out_of_order = 0;      // offsets going back: in the log, a consumer, a producer's acks
  int64_t commits_backwards = 0; // a committed offset lower than one committed before it
  int64_t double_owners = 0;     // two group members owning one partition at once
  int64_t missing_failovers = 0; // a partition of a downed leader never seen led by another node
  int64_t reads = 0;             // consumer reads checked
  int64_t commits = 0;           // acknowledged commits checked
  int64_t final_records = 0;     // records in the final read
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
