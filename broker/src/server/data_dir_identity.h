#pragma once

// The broker's claim on its data dir: `<data_dir>/meta.properties` (Kafka's name and format)
// records the node id that first used the directory. A later start with another node id is
// refused, so two brokers of a cluster never share a data dir and a changed `node.id` never
// meets another node's metadata log (a mixed-up volume in docker compose, a copied config).
//
//   # Rill broker data dir: written at its first start. Do not edit.
//   version=1
//   node.id=1
//
// A data dir without the file (new, or from a release before the file existed) is claimed: the
// file is written atomically (temp file, fdatasync, rename, directory fsync).

#include <cstdint>
#include <string>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::broker {

// OK when `data_dir` is (now) node `node_id`'s; InvalidArgument naming both ids when it is
// another node's; Corruption when meta.properties cannot be parsed; IOError when it cannot be
// read or written.
Status ClaimDataDir(const std::string& data_dir, int32_t node_id);

// Parses meta.properties; the node id it records.
Result<int32_t> ParseDataDirIdentity(std::string_view text);

}  // namespace rill::broker
