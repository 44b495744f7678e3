#pragma once

// The bootstrap list of ConnectionConfig: "host:port[,host:port...]". Pure (no gRPC), so rillctl's
// parser and its tests share it.

#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/status.h"

namespace rill::client::internal {

// The entries of a bootstrap list, in order, without surrounding whitespace (" a:1 , b:2 " is
// {"a:1", "b:2"}). Every entry needs a host and a port 1..65535; an IPv6 host goes in brackets
// ("[::1]:9092"). InvalidArgument naming the first bad entry otherwise (an empty entry too:
// "a:1,", "").
Result<std::vector<std::string>> ParseBootstrapList(std::string_view text);

}  // namespace rill::client::internal
