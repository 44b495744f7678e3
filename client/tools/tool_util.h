#pragma once

// Small helpers shared by rillctl and rill-bench: JSON string escaping, aligned tables, exit
// codes for errors.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/status.h"

namespace rill::tools {

// Exit codes: 0 success, 1 failure, 2 bad usage (CLI11), 3 not found (unknown topic),
// 4 broker unreachable or timed out.
int ExitCodeFor(const Status& status);

// Prints "rillctl: error: <message>" to stderr and returns ExitCodeFor(status).
int Fail(std::string_view tool, const Status& status);

// A JSON string literal (quotes included) for arbitrary bytes: invalid UTF-8 bytes become \u00XX.
std::string JsonString(std::string_view s);

// Prints rows as left-aligned columns separated by two spaces; the first row is the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// "a=b" -> {"a", "b"}; InvalidArgument without '='.
Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view kv);

}  // namespace rill::tools
