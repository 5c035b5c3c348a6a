// The Terminus dataplane: DPDK poll-mode lcores, each with its own RX/TX
// queues, packet handling and (from issue #4 on) TCP stack. terminusd calls
// run(); nothing else in the project starts lcores.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace terminus::dataplane {

struct RunOptions {
    // Names this instance: the EAL file prefix and the statistics segment
    // derive from it, so that several terminusd can run side by side.
    std::string instance = "default";
    // The configuration file, read again by a reload (SIGHUP, terminusctl
    // reload).
    std::string config_path;
};

// Directives the dataplane does not implement yet, as "FILE:LINE:COL:
// error: ..." lines. terminusd refuses to start while any is written.
std::vector<config::Diagnostic> unsupported_directives(const config::Config& cfg);

// Replaces upstream and proxy_pass host names in CFG by their IPv4
// addresses (getaddrinfo, at start, as nginx does); returns an error for
// each name that does not resolve.
std::vector<config::Diagnostic> resolve_hosts(config::Config& cfg);

// Brings up the EAL, the ports and the lcores and polls until SIGTERM or
// SIGINT; SIGHUP reloads OPTIONS.config_path (control.h). Returns the
// process exit status.
int run(const config::Config& cfg, const RunOptions& options);

}  // namespace terminus::dataplane
