#include "dataplane/tcp/tcp_segment.h"

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <cstring>

namespace terminus::tcp {

ParseResult parse_segment(const rte_mbuf* m, unsigned ihl, Segment& out) {
    constexpr unsigned kEth = sizeof(rte_ether_hdr);
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, kEth);
    const unsigned ip_total = rte_be_to_cpu_16(ip->total_length);
    const unsigned tcp_len = ip_total - ihl;
    if (tcp_len < sizeof(rte_tcp_hdr) || rte_pktmbuf_data_len(m) < kEth + ihl + sizeof(rte_tcp_hdr)) {
        return ParseResult::kBadHeader;
    }
    const auto* th = rte_pktmbuf_mtod_offset(m, const rte_tcp_hdr*, kEth + ihl);
    const unsigned doff = static_cast<unsigned>(th->data_off >> 4) * 4;
    if (doff < sizeof(rte_tcp_hdr) || doff > tcp_len ||
        rte_pktmbuf_data_len(m) < kEth + ihl + doff) {
        return ParseResult::kBadHeader;
    }
    const uint64_t ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    if (ck == RTE_MBUF_F_RX_L4_CKSUM_BAD) return ParseResult::kBadChecksum;
    if (ck != RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
        rte_ipv4_udptcp_cksum_mbuf_verify(m, ip, kEth + ihl) != 0) {
        return ParseResult::kBadChecksum;
    }
    const auto* opts = reinterpret_cast<const uint8_t*>(th + 1);
    if (parse_options(opts, doff - sizeof(rte_tcp_hdr), out.options) != OptionsResult::kOk) {
        return ParseResult::kBadOptions;
    }
    out.tuple.local_ip = rte_be_to_cpu_32(ip->dst_addr);
    out.tuple.remote_ip = rte_be_to_cpu_32(ip->src_addr);
    out.tuple.local_port = rte_be_to_cpu_16(th->dst_port);
    out.tuple.remote_port = rte_be_to_cpu_16(th->src_port);
    out.seq = rte_be_to_cpu_32(th->sent_seq);
    out.ack = rte_be_to_cpu_32(th->recv_ack);
    out.window = rte_be_to_cpu_16(th->rx_win);
    out.flags = th->tcp_flags;
    out.payload_offset = static_cast<uint16_t>(kEth + ihl + doff);
    out.payload_len = tcp_len - doff;
    return ParseResult::kOk;
}

rte_mbuf* build_segment(rte_mempool* pool, const Route& route, const OutSegment& s) {
    constexpr unsigned kEth = sizeof(rte_ether_hdr);
    constexpr unsigned kIp = sizeof(rte_ipv4_hdr);
    const unsigned tcp_hdr = sizeof(rte_tcp_hdr) + s.options_len;
    const unsigned total = kEth + kIp + tcp_hdr + s.payload_len;
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    if (total > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, static_cast<uint16_t>(total)));
    eth->dst_addr = route.dst_mac;
    eth->src_addr = route.src_mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(kIp + tcp_hdr + s.payload_len));
    ip->packet_id = 0;
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);  // path MTU discovery
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->hdr_checksum = 0;
    ip->src_addr = rte_cpu_to_be_32(s.tuple.local_ip);
    ip->dst_addr = rte_cpu_to_be_32(s.tuple.remote_ip);

    auto* th = reinterpret_cast<rte_tcp_hdr*>(ip + 1);
    th->src_port = rte_cpu_to_be_16(s.tuple.local_port);
    th->dst_port = rte_cpu_to_be_16(s.tuple.remote_port);
    th->sent_seq = rte_cpu_to_be_32(s.seq);
    th->recv_ack = rte_cpu_to_be_32(s.ack);
    th->data_off = static_cast<uint8_t>((tcp_hdr / 4) << 4);
    th->tcp_flags = s.flags;
    th->rx_win = rte_cpu_to_be_16(s.window);
    th->cksum = 0;
    th->tcp_urp = 0;
    auto* p = reinterpret_cast<uint8_t*>(th + 1);
    if (s.options_len) std::memcpy(p, s.options, s.options_len);
    if (s.payload_len) std::memcpy(p + s.options_len, s.payload, s.payload_len);

    m->l2_len = kEth;
    m->l3_len = kIp;
    m->l4_len = tcp_hdr;
    if (route.offload_ip_cksum) {
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    } else {
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    if (route.offload_tcp_cksum) {
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
        th->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
    } else {
        th->cksum = rte_ipv4_udptcp_cksum(ip, th);
    }
    return m;
}

}  // namespace terminus::tcp
