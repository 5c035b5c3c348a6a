// Which core owns a flow: a pure function of its addresses, the same for
// passive connections (chosen by the client's port) and active ones (whose
// local port we pick so that it maps back to the picking core). Private to
// dataplane/.
#pragma once

#include <cstdint>

#include "dataplane/tcp/tcp_isn.h"

namespace terminus::dataplane {

inline unsigned flow_owner(const tcp::FourTuple& t, unsigned n_cores) {
    if (n_cores <= 1) return 0;
    uint64_t x = (static_cast<uint64_t>(t.remote_ip) << 32 | t.local_ip) ^
                 (static_cast<uint64_t>(t.remote_port) << 16 | t.local_port);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return static_cast<unsigned>(x % n_cores);
}

}  // namespace terminus::dataplane
