// IPv4 receive: the checks of RFC 1122 3.2.1 in order, each failure
// counted and dropped. A packet from the network is never an error.
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "dataplane/flow.h"
#include "dataplane/lcore.h"
#include "dataplane/net/packet.h"

namespace terminus::dataplane::net {

void ipv4_input(Lcore& lc, unsigned port, rte_mbuf* m, bool from_core) {
    const PortInfo& p = lc.ports[port];
    constexpr unsigned kEth = sizeof(rte_ether_hdr);
    auto drop = [&](uint64_t& counter) {
        ++counter;
        rte_pktmbuf_free(m);
    };
    if (rte_pktmbuf_data_len(m) < kEth + sizeof(rte_ipv4_hdr)) return drop(lc.counters.ip_bad_header);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, kEth);

    // 3.2.1.1: version; 3.2.1.2: header checksum; lengths must hold.
    const unsigned ihl = static_cast<unsigned>(ip->version_ihl & 0x0f) * 4;
    const unsigned total = rte_be_to_cpu_16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || total < ihl ||
        kEth + total > rte_pktmbuf_pkt_len(m) || kEth + ihl > rte_pktmbuf_data_len(m)) {
        return drop(lc.counters.ip_bad_header);
    }
    if (!from_core) {
        const uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
        if (ck == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
            (ck != RTE_MBUF_F_RX_IP_CKSUM_GOOD && rte_raw_cksum(ip, ihl) != 0xffff)) {
            return drop(lc.counters.ip_bad_checksum);
        }
    }
    // Ethernet pads short frames: the IP total length is what counts.
    if (rte_pktmbuf_pkt_len(m) > kEth + total) {
        rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - kEth - total));
    }
    // 3.2.1.3: addressed to us (limited broadcast and the subnet
    // broadcast are only meaningful for ICMP here).
    const uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
    const uint32_t mask = p.prefix_len ? ~uint32_t{0} << (32 - p.prefix_len) : 0;
    const bool broadcast = dst == 0xffffffffu || dst == ((p.ip & mask) | ~mask);
    if (dst != p.ip && !broadcast) return drop(lc.counters.ip_not_for_us);
    // 3.2.1.4: no reassembly; Terminus's peers use path MTU discovery.
    if ((rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
        return drop(lc.counters.ip_fragments);
    }
    if (ihl > sizeof(rte_ipv4_hdr)) ++lc.counters.ip_options;

    switch (ip->next_proto_id) {
        case IPPROTO_ICMP:
            icmp_input(lc, port, m, ihl);
            return;
        case IPPROTO_TCP: {
            if (broadcast) return drop(lc.counters.ip_not_for_us);
            if (!lc.tcp) return drop(lc.counters.tcp_unhandled);
            // The flow belongs to the core its addresses select; another
            // core's flows go to it over their ring, as they arrived.
            if (rte_pktmbuf_data_len(m) < kEth + ihl + 4) return drop(lc.counters.ip_bad_header);
            const auto* ports = rte_pktmbuf_mtod_offset(m, const uint16_t*, kEth + ihl);
            const tcp::FourTuple t{dst, rte_be_to_cpu_32(ip->src_addr), rte_be_to_cpu_16(ports[1]),
                                   rte_be_to_cpu_16(ports[0])};
            const unsigned owner = flow_owner(t, lc.n_cores);
            if (owner != lc.index) {
                hand_over(lc, owner, port, m, MessageKind::kPacket);  // counted either way
                return;
            }
            ++lc.counters.tcp_segments;
            lc.tcp->input(m, ihl, lc.now_us);
            return;
        }
        default:
            return drop(lc.counters.ip_unknown_protocol);
    }
}

}  // namespace terminus::dataplane::net
