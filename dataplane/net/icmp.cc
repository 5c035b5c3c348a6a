// ICMP: echo replies (RFC 792, RFC 1122 3.2.2.6) and the messages TCP
// needs to hear about. Replies are written into the request's buffer.
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include "dataplane/flow.h"
#include "dataplane/lcore.h"
#include "dataplane/net/packet.h"

namespace terminus::dataplane::net {

namespace {
constexpr uint8_t kIcmpDestUnreach = 3;  // RFC 792 (DPDK 22.11 has no name for it)
}

void icmp_input(Lcore& lc, unsigned port, rte_mbuf* m, unsigned ihl) {
    const PortInfo& p = lc.ports[port];
    constexpr unsigned kEth = sizeof(rte_ether_hdr);
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    const unsigned total = rte_be_to_cpu_16(ip->total_length);
    const unsigned len = total - ihl;
    // Echo bodies may span segments; the checksum is checked over the
    // whole message.
    if (len < sizeof(rte_icmp_hdr) || rte_pktmbuf_data_len(m) < kEth + ihl + sizeof(rte_icmp_hdr)) {
        ++lc.counters.icmp_bad;
        rte_pktmbuf_free(m);
        return;
    }
    uint16_t sum = 0;
    if (rte_raw_cksum_mbuf(m, kEth + ihl, len, &sum) != 0 || sum != 0xffff) {
        ++lc.counters.icmp_bad;
        rte_pktmbuf_free(m);
        return;
    }
    auto* icmp = rte_pktmbuf_mtod_offset(m, rte_icmp_hdr*, kEth + ihl);
    const uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);

    if (icmp->icmp_type == RTE_IP_ICMP_ECHO_REQUEST && icmp->icmp_code == 0) {
        // RFC 1122 3.2.2.6: an echo to a broadcast address may be ignored.
        if (dst != p.ip) {
            ++lc.counters.icmp_other;
            rte_pktmbuf_free(m);
            return;
        }
        // Turn the request around: type 8 -> 0 changes the checksum by
        // 0x0800 in one's complement (RFC 1624).
        icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
        uint32_t ck = static_cast<uint32_t>(icmp->icmp_cksum) +
                      rte_cpu_to_be_16(RTE_IP_ICMP_ECHO_REQUEST << 8);
        icmp->icmp_cksum = static_cast<uint16_t>((ck & 0xffff) + (ck >> 16));
        ip->dst_addr = ip->src_addr;
        ip->src_addr = rte_cpu_to_be_32(p.ip);
        ip->time_to_live = 64;
        ip->fragment_offset = 0;
        ip->hdr_checksum = 0;
        rte_ether_addr peer = eth->src_addr;
        eth->dst_addr = peer;
        eth->src_addr = p.mac;
        m->ol_flags = 0;
        if (p.tx_ip_cksum) {
            m->l2_len = kEth;
            m->l3_len = ihl;
            m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
        } else {
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        ++lc.counters.icmp_echo_answered;
        tx_enqueue(lc, port, m);
        return;
    }
    if (icmp->icmp_type == kIcmpDestUnreach && icmp->icmp_code == 4) {
        // Fragmentation needed (RFC 1191): the quoted IPv4 header and the
        // first 8 bytes of our TCP segment name the connection; its owner
        // lowers the MSS. The next-hop MTU is in the low half of the
        // "unused" word (RFC 1191 4). Counted by the core that handles it.
        const unsigned quoted = kEth + ihl + sizeof(rte_icmp_hdr);
        if (rte_pktmbuf_data_len(m) >= quoted + sizeof(rte_ipv4_hdr) + 8) {
            const auto* qip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, quoted);
            const unsigned qihl = static_cast<unsigned>(qip->version_ihl & 0x0f) * 4;
            if (qip->next_proto_id == IPPROTO_TCP && qihl >= sizeof(rte_ipv4_hdr) &&
                rte_pktmbuf_data_len(m) >= quoted + qihl + 8 &&
                rte_be_to_cpu_32(qip->src_addr) == p.ip) {
                const auto* ports = rte_pktmbuf_mtod_offset(m, const uint16_t*, quoted + qihl);
                const tcp::FourTuple t{p.ip, rte_be_to_cpu_32(qip->dst_addr), rte_be_to_cpu_16(ports[0]),
                                       rte_be_to_cpu_16(ports[1])};
                const unsigned owner = flow_owner(t, lc.n_cores);
                if (owner != lc.index) {
                    // The owner sees the whole message again (from_core).
                    hand_over(lc, owner, port, m, MessageKind::kPacket);  // freed if its ring is full
                    return;
                } else if (lc.tcp) {
                    ++lc.counters.icmp_frag_needed;
                    const uint16_t mtu = rte_be_to_cpu_16(icmp->icmp_seq_nb);
                    lc.tcp->path_mtu(t, mtu);
                }
            }
        }
    } else {
        ++lc.counters.icmp_other;
    }
    rte_pktmbuf_free(m);
}

}  // namespace terminus::dataplane::net
