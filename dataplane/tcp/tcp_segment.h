// A received TCP segment, parsed and checked, and the building of the
// segments we send: IPv4 + TCP headers with the checksums filled in (or
// left to the NIC). Private to dataplane/.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <cstdint>

#include "dataplane/tcp/tcp_isn.h"
#include "dataplane/tcp/tcp_options.h"

namespace terminus::tcp {

enum TcpFlags : uint8_t {
    kFin = 0x01,
    kSyn = 0x02,
    kRst = 0x04,
    kPsh = 0x08,
    kAck = 0x10,
    kUrg = 0x20,
};

struct Segment {
    FourTuple tuple;  // from our side: local = destination of the segment
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint16_t window = 0;  // as sent, not yet scaled
    uint8_t flags = 0;
    uint16_t payload_offset = 0;  // from the start of the mbuf's data
    uint32_t payload_len = 0;
    TcpOptions options;

    // Sequence space the segment occupies (RFC 9293 3.4: SYN and FIN
    // count one each).
    uint32_t seg_len() const {
        return payload_len + ((flags & kSyn) ? 1 : 0) + ((flags & kFin) ? 1 : 0);
    }
};

enum class ParseResult { kOk, kBadHeader, kBadChecksum, kBadOptions };

// Parses the TCP segment in M, which starts at the Ethernet header and
// holds a checked IPv4 header of IHL bytes. CHECKSUM_VERIFIED: the NIC
// checked the TCP checksum already.
ParseResult parse_segment(const rte_mbuf* m, unsigned ihl, Segment& out);

// Where a segment goes on the wire.
struct Route {
    rte_ether_addr src_mac{};
    rte_ether_addr dst_mac{};
    bool offload_ip_cksum = false;
    bool offload_tcp_cksum = false;
};

struct OutSegment {
    FourTuple tuple;  // local = source
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint16_t window = 0;  // already scaled down
    uint8_t flags = 0;
    const uint8_t* options = nullptr;  // padded to a multiple of 4
    uint8_t options_len = 0;
    const uint8_t* payload = nullptr;
    uint32_t payload_len = 0;
};

// Builds Ethernet + IPv4 + TCP + payload in one mbuf from POOL; null when
// the pool is empty or the segment does not fit one mbuf.
rte_mbuf* build_segment(rte_mempool* pool, const Route& route, const OutSegment& s);

}  // namespace terminus::tcp
