// The Prometheus exposition of terminusd's statistics, as terminus-mgmtd
// serves it on GET /metrics (text format 0.0.4). Names follow HAProxy's
// built-in exporter (addons/promex): terminus_process_* for the appliance,
// terminus_<group>_<name> summed over cores for the appliance-wide groups
// (net, tcp, proxy, loop, tls, upstream_tls, memory), terminus_server_*
// with labels proxy="GROUP",server="HOST:PORT" for each upstream server,
// counters ending in _total, and a state as one series per state (1 for
// the current one, HAProxy's haproxy_server_status{state="UP"}).
//
// Where a reason or a state is a label instead of a name:
//   terminus_tls_handshake_failures_total{server="FILE:LINE",reason="timeout"}
//       per TLS server block (the segment's tls_server group); the
//       per-core tls failed_* counters are their sum over server blocks
//       and are not repeated
//   terminus_upstream_tls_handshake_failures_total{reason="unknown_ca"}
//   terminus_tcp_connections{state="ESTABLISHED"}
//   terminus_server_status{proxy,server,state="UP"}, one per state
//   terminus_server_check_status{proxy,server,state="PASSED"}, one per result
// Per core (label core="N"), only where a sum hides what matters, a core
// that saturates while the others idle:
//   terminus_core_busy_seconds_total, terminus_core_poll_seconds_total
//       (the loop's busy and total TSC cycles over the TSC frequency)
// Groups and names this file does not know (a newer terminusd) come out
// under the generic rule, terminus_<group>_<name>[_total] with the
// segment's label, so nothing published is left out.
#pragma once

#include <cstdint>
#include <string>

#include "mgmt/stats.h"

namespace terminus::mgmt {

// The exporter's own process, under the names every Prometheus client
// library uses for it (process_cpu_seconds_total, ...).
struct ExporterProcess {
    double start_time_seconds = 0;  // since the epoch
    double cpu_seconds = 0;         // user + system
    uint64_t resident_memory_bytes = 0;
    uint64_t virtual_memory_bytes = 0;
    uint64_t open_fds = 0;
    uint64_t max_fds = 0;
};

// This process, from /proc/self; fields it cannot read stay 0.
ExporterProcess read_exporter_process();

// The exposition: terminus_up 1 and everything TERMINUSD holds, or
// terminus_up 0 alone when TERMINUSD is null (terminusd not running);
// then EXPORTER's process_* when given. Every family has # HELP and
// # TYPE, its samples are contiguous and no series repeats (entries that
// would give the same series are summed).
std::string render_metrics(const Snapshot* terminusd, const ExporterProcess* exporter);

// A label value or HELP text escaped as the text format wants it:
// backslash, double quote (label values only) and line feed.
std::string escape_label_value(const std::string& s);
std::string escape_help(const std::string& s);

}  // namespace terminus::mgmt
