// What each core publishes into the statistics segment, and how. Private
// to dataplane/.
#pragma once

#include <vector>

#include "dataplane/lcore.h"
#include "mgmt/stats.h"

namespace terminus::dataplane {

// The segment's directory: network, TCP (with connections by state),
// proxy, TLS and poll-loop counters, then each upstream server's state and
// health checks (label server="GROUP/HOST:PORT"; from Lcore::upstreams,
// which every core must have), then handshake failures per TLS server
// block of CFG (label server="FILE:LINE"), in the order publish() writes
// them.
std::vector<mgmt::StatDef> stat_defs(const config::Config& cfg);

// Copies LC's counters into its row (a few hundred bytes, ten times a
// second and at exit; the counters themselves stay in the core's context).
void publish(const Lcore& lc, mgmt::StatsWriter& w);

}  // namespace terminus::dataplane
