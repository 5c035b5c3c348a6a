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

// The next local port from NEXT on, within [LO, HI] and wrapping, whose
// flow LOCAL_IP:port -> REMOTE_IP:REMOTE_PORT this core owns, so that the
// replies come back to it (Seastar's tcp::connect does the same); 0 when
// none is left. NEXT moves past the port returned.
inline uint16_t pick_local_port(uint16_t& next, uint16_t lo, uint16_t hi, uint32_t local_ip,
                                uint32_t remote_ip, uint16_t remote_port, unsigned core, unsigned n_cores) {
    for (unsigned tries = 0; tries <= static_cast<unsigned>(hi - lo); ++tries) {
        if (next < lo || next > hi) next = lo;
        const uint16_t p = next;
        next = p == hi ? lo : static_cast<uint16_t>(p + 1);
        if (flow_owner(tcp::FourTuple{local_ip, remote_ip, p, remote_port}, n_cores) == core) return p;
    }
    return 0;
}

}  // namespace terminus::dataplane
