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
// As ParseTimeMs, and also a time relative to `now_ms`: "-" then a whole number and a unit of ms,
// s, m, h or d ("-1h" is an hour before `now_ms`, "-90s", "-2d").
Result<int64_t> ParseTimeMsAt(std::string_view text, int64_t now_ms);

// Where `rillctl consume` starts in each partition (--offset/-o, --from): kcat's words and forms.
struct StartPosition {
  enum Kind { kEarliest, kLatest, kOffset, kFromEnd, kTimestamp } kind = kEarliest;
  // kOffset: the offset; kFromEnd: how many records back from the end (> 0); kTimestamp: ms.
  int64_t value = 0;
};
// earliest|beginning, latest|end, N (an offset), -N (N records back from the end of each
// partition), @TIME (the first record at or after TIME, as ParseTimeMsAt), and the long forms
// offset:N and timestamp:TIME. InvalidArgument naming the text otherwise.
Result<StartPosition> ParseStartPosition(std::string_view text, int64_t now_ms);

// One line of `rillctl produce --input json`: a JSON object as `consume --format json` prints it.
// "key" and "value" are strings or null (absent: null), "headers" an object of strings or nulls,
// "timestamp" an integer (ms); other members ("topic", "partition", "offset") are ignored.
// \u escapes decode to UTF-8, except \u0080..\u00ff, which are the raw bytes JsonString
// escapes (so consume's output of any bytes reads back as the same bytes).
struct JsonRecordLine {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  std::optional<int64_t> timestamp_ms;
};
// InvalidArgument saying what is wrong and where (the column) otherwise.
Result<JsonRecordLine> ParseJsonRecordLine(std::string_view line);

// A kcat-style output template for one record: %t topic, %p partition, %o offset, %k key,
// %v (or %s) value, %T timestamp (ms), %h headers (k=v,k=v), %K / %S key / value size in bytes
// (-1 for null), %% a '%'; \n, \t, \r and \\ escapes. Null keys and values print as nothing.
// Nothing is added: end the template with \n for one line per record.
class RecordTemplate {
 public:
  // InvalidArgument naming an unknown %-directive or escape.
  static Result<RecordTemplate> Parse(std::string_view text);
  // Appends the record as the template says.
  void Format(const client::ConsumerRecord& r, std::string* out) const;

 private:
  struct Part {
    char directive = 0;  // 0: literal text
    std::string literal;
  };
  std::vector<Part> parts_;
};
// A bootstrap list "host:port[,host:port...]" (IPv6 hosts in brackets, "[::1]:9092"): every
// entry needs a host and a port 1..65535; whitespace around an entry is dropped. Returns the
// entries (the client library's own parser, which ConnectionConfig::bootstrap goes through).
Result<std::vector<std::string>> ParseBootstrapList(std::string_view text);

}  // namespace rill::tools
