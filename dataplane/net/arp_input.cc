// ARP on the wire: answer requests for our address, learn from every ARP
// packet that names a sender (RFC 826's "merge"), and flood what a core
// learned to the other cores, whose own caches would otherwise stay empty
// when the replies to their requests arrive on another queue.
#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ether.h>

#include "dataplane/lcore.h"
#include "dataplane/net/packet.h"

namespace terminus::dataplane::net {

namespace {

void send_released(Lcore& lc, unsigned port, const rte_ether_addr& mac, rte_mbuf** pkts,
                   unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
        auto* eth = rte_pktmbuf_mtod(pkts[i], rte_ether_hdr*);
        eth->dst_addr = mac;
        tx_enqueue(lc, port, pkts[i]);
    }
}

// Builds an ARP packet in a fresh mbuf; null when the pool is empty.
rte_mbuf* make_arp(Lcore& lc, const PortInfo& p, uint16_t op, const rte_ether_addr& eth_dst,
                   const rte_ether_addr& tha, uint32_t tip_be) {
    rte_mbuf* r = rte_pktmbuf_alloc(lc.pool);
    if (!r) {
        ++lc.counters.nombuf;
        return nullptr;
    }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(
        rte_pktmbuf_append(r, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
    auto* a = reinterpret_cast<rte_arp_hdr*>(eth + 1);
    eth->dst_addr = eth_dst;
    eth->src_addr = p.mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    a->arp_hlen = RTE_ETHER_ADDR_LEN;
    a->arp_plen = 4;
    a->arp_opcode = rte_cpu_to_be_16(op);
    a->arp_data.arp_sha = p.mac;
    a->arp_data.arp_sip = rte_cpu_to_be_32(p.ip);
    a->arp_data.arp_tha = tha;
    a->arp_data.arp_tip = tip_be;
    return r;
}

}  // namespace

void arp_input(Lcore& lc, unsigned port, rte_mbuf* m, bool from_core) {
    const PortInfo& p = lc.ports[port];
    // M starts at the Ethernet header and is only read: it may be shared
    // with the other cores below.
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
        if (!from_core) ++lc.counters.arp_bad;
        rte_pktmbuf_free(m);
        return;
    }
    auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, sizeof(rte_ether_hdr));
    if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4 ||
        rte_is_multicast_ether_addr(&arp->arp_data.arp_sha)) {
        if (!from_core) ++lc.counters.arp_bad;
        rte_pktmbuf_free(m);
        return;
    }
    const uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
    const uint32_t sip = rte_be_to_cpu_32(arp->arp_data.arp_sip);
    const uint32_t tip = rte_be_to_cpu_32(arp->arp_data.arp_tip);
    const uint64_t now = rte_rdtsc();

    // Learn the sender if it is on our link (also from gratuitous ARP).
    const uint32_t mask = p.prefix_len ? ~uint32_t{0} << (32 - p.prefix_len) : 0;
    if (sip != 0 && sip != p.ip && (sip & mask) == (p.ip & mask)) {
        rte_mbuf* released[kArpPendingPerEntry];
        unsigned n = lc.arp.learn(sip, arp->arp_data.arp_sha, now, released);
        send_released(lc, port, arp->arp_data.arp_sha, released, n);
        if (op == RTE_ARP_OP_REPLY && !from_core) ++lc.counters.arp_replies;
    }

    if (from_core) {
        rte_pktmbuf_free(m);
        return;
    }

    // Flood to the other cores (read-only: one buffer, more references).
    for (unsigned c = 0; c < lc.n_cores; ++c) {
        if (c == lc.index) continue;
        rte_mbuf_refcnt_update(m, 1);  // a full ring frees just this reference
        hand_over(lc, c, port, m, MessageKind::kArp);
    }

    if (op != RTE_ARP_OP_REQUEST || tip != p.ip) {
        rte_pktmbuf_free(m);
        return;
    }
    // Answer with a fresh reply (the buffer may be shared with the other
    // cores now, so it is not turned around in place).
    rte_mbuf* r = make_arp(lc, p, RTE_ARP_OP_REPLY, arp->arp_data.arp_sha, arp->arp_data.arp_sha,
                           arp->arp_data.arp_sip);
    rte_pktmbuf_free(m);
    if (!r) return;
    ++lc.counters.arp_requests_answered;
    tx_enqueue(lc, port, r);
}

void arp_request(Lcore& lc, unsigned port, uint32_t ip) {
    const PortInfo& p = lc.ports[port];
    rte_ether_addr broadcast, unknown{};
    memset(&broadcast, 0xff, sizeof broadcast);
    rte_mbuf* r = make_arp(lc, p, RTE_ARP_OP_REQUEST, broadcast, unknown, rte_cpu_to_be_32(ip));
    if (!r) return;
    ++lc.counters.arp_requests_sent;
    tx_enqueue(lc, port, r);
}

bool arp_timer(Lcore& lc, uint64_t now) {
    uint32_t retry[16];
    rte_mbuf* dropped[64];
    unsigned n_dropped = 0;
    unsigned n_retry = lc.arp.expire(now, retry, 16, dropped, 64, &n_dropped);
    for (unsigned i = 0; i < n_retry; ++i) {
        // The port whose subnet holds the address (or the first one).
        unsigned port = 0;
        for (unsigned pi = 0; pi < lc.n_ports; ++pi) {
            const PortInfo& p = lc.ports[pi];
            const uint32_t mask = p.prefix_len ? ~uint32_t{0} << (32 - p.prefix_len) : 0;
            if ((retry[i] & mask) == (p.ip & mask)) port = pi;
        }
        arp_request(lc, port, retry[i]);
    }
    if (n_dropped) {
        lc.counters.arp_unresolved += n_dropped;
        rte_pktmbuf_free_bulk(dropped, n_dropped);
    }
    return n_retry + n_dropped > 0;
}

}  // namespace terminus::dataplane::net
