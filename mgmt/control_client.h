// The client side of terminusd's control socket (dataplane/control.h): one
// request line, one JSON answer. terminusctl uses it; so will
// terminus-mgmtd to push reloads.
#pragma once

#include <string>

#include "config/result.h"

namespace terminus::mgmt {

// Where the control socket of the configuration FILE is: its
// mgmt { control } (the default when it has none, or when FILE cannot be
// read: then WHY says so).
std::string control_socket_of(const std::string& file, std::string& why);

// Sends REQUEST ("reload", "check FILE", "status") to the socket at PATH
// and returns the answer, or an error that says whether terminusd runs.
// TIMEOUT_S bounds the wait (a reload waits for every core).
Result<std::string> control_request(const std::string& path, const std::string& request, int timeout_s = 30);

}  // namespace terminus::mgmt
