// JSON forms of the node <-> control plane messages (heartbeat, orders, logs), shared by the
// platform's /api/nodes routes and the remote node's HTTP link.
#pragma once

#include "platform/control_plane.h"

namespace infera::platform {

json to_json(const NodeHeartbeat& hb);
NodeHeartbeat heartbeat_from_json(const json& j);  // throws json::exception on a malformed body
json to_json(const NodeOrders& o);
NodeOrders orders_from_json(const json& j);
LogRecord log_from_json(const json& j);

}  // namespace infera::platform
