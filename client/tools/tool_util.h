#pragma once

// Small helpers shared by rillctl and rill-bench: JSON string escaping, aligned tables, exit
// codes for errors.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rill/client/types.h"
#include "rill/proto/status.h"

namespace rill::tools {

// Exit codes: 0 success, 1 failure (also a group reset/delete refused while the group has active
// members), 2 bad usage (CLI11, or a value the tool's own parsers refuse), 3 not found (unknown
// topic or group), 4 broker unreachable or timed out.
int ExitCodeFor(const Status& status);

// Prints "rillctl: error: <message>" to stderr and returns ExitCodeFor(status).
int Fail(std::string_view tool, const Status& status);

// A JSON string literal (quotes included) for arbitrary bytes: invalid UTF-8 bytes become \u00XX.
std::string JsonString(std::string_view s);

// Prints rows as left-aligned columns separated by two spaces; the first row is the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// "a=b" -> {"a", "b"}; InvalidArgument without '='.
Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view kv);

// A `--topic` argument of rillctl group reset-offsets: "orders" (every partition) or
// "orders:0,2,5" (those partitions; empty `partitions` means every partition).
struct TopicPartitionsArg {
  std::string topic;
  std::vector<int32_t> partitions;
};
// InvalidArgument for an empty topic, an empty or non-numeric or negative partition.
Result<TopicPartitionsArg> ParseTopicPartitions(std::string_view arg);

// Partitions grouped by topic in first-seen topic order, partitions sorted:
// {a-1, a-0, b-3} -> "a:0,1 b:3"; "-" when empty.
std::string FormatTopicPartitions(const std::vector<client::TopicPartition>& tps);

// An offset for a table cell: "-" for a negative (unset) offset.
std::string OffsetCell(int64_t offset);

// Strict parsers for what users type (rillctl): the whole text must be the value, or the result
// is InvalidArgument naming it.
//
// A decimal integer, optionally negative, with no other characters ("5abc", "", " 5" fail).
Result<int64_t> ParseInt(std::string_view text);
// A time as milliseconds since the Unix epoch: either an integer (ms) or an ISO-8601 date-time
// with seconds and a zone, "2026-12-05T10:00:00Z", "2026-12-05T10:00:00.250+01:00" (fraction
// optional, up to 9 digits; a zone of Z, +HH:MM or -HH:MM is required).
Result<int64_t> ParseTimeMs(std::string_view text);
// A bootstrap list "host:port[,host:port...]" (IPv6 hosts in brackets, "[::1]:9092"): every
// entry needs a host and a port 1..65535; whitespace around an entry is dropped. Returns the
// entries (the client library's own parser, which ConnectionConfig::bootstrap goes through).
Result<std::vector<std::string>> ParseBootstrapList(std::string_view text);

}  // namespace rill::tools
