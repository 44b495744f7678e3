#include "rill/client/version.h"

namespace rill::client {

std::string_view Version() { return RILL_VERSION_STRING; }

}  // namespace rill::client
