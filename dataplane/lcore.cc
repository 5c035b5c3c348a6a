// The poll loop: a list of pollers, each returning whether it did work.
// The loop counts busy iterations and the cycles they took, so that a core
// that polls at 100% still reports what it really spent.
#include "dataplane/lcore.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <cstdio>

#include "dataplane/net/packet.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/publish.h"
#include "mgmt/error_log.h"

namespace terminus::dataplane {

void tx_enqueue(Lcore& lc, unsigned port, rte_mbuf* pkt) {
    TxQueue& q = lc.tx[port];
    q.pkts[q.count++] = pkt;
    if (q.count == kBurst) tx_flush(lc);
}

bool tx_flush(Lcore& lc) {
    bool sent_any = false;
    for (unsigned p = 0; p < lc.n_ports; ++p) {
        TxQueue& q = lc.tx[p];
        if (q.count == 0) continue;
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < q.count; ++i) bytes += rte_pktmbuf_pkt_len(q.pkts[i]);
        const uint16_t sent = rte_eth_tx_burst(lc.ports[p].port_id, lc.queue, q.pkts.data(), q.count);
        for (uint16_t i = sent; i < q.count; ++i) bytes -= rte_pktmbuf_pkt_len(q.pkts[i]);
        lc.counters.tx_frames += sent;
        lc.counters.tx_bytes += bytes;
        if (sent < q.count) {
            // The NIC's ring is full: drop what is left rather than stall
            // the loop; TCP retransmits.
            lc.counters.tx_dropped += q.count - sent;

            rte_pktmbuf_free_bulk(q.pkts.data() + sent, q.count - sent);
        }
        q.count = 0;
        sent_any |= sent > 0;
    }
    return sent_any;
}

void handle_frame(Lcore& lc, unsigned port, rte_mbuf* m, bool from_core) {
    const PortInfo& p = lc.ports[port];
    if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr)) {
        ++lc.counters.eth_bad;
        rte_pktmbuf_free(m);
        return;
    }
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    if (!rte_is_same_ether_addr(&eth->dst_addr, &p.mac) &&
        !rte_is_broadcast_ether_addr(&eth->dst_addr)) {
        ++lc.counters.eth_not_for_us;
        rte_pktmbuf_free(m);
        return;
    }
    switch (rte_be_to_cpu_16(eth->ether_type)) {
        case RTE_ETHER_TYPE_ARP:
            net::arp_input(lc, port, m, from_core);
            return;
        case RTE_ETHER_TYPE_IPV4:
            net::ipv4_input(lc, port, m, from_core);
            return;
        default:
            ++lc.counters.eth_unknown_type;
            rte_pktmbuf_free(m);
            return;
    }
}

unsigned route(const Lcore& lc, uint32_t ip, uint32_t& next_hop) {
    // The port whose subnet holds the address, else the first port with a
    // gateway (one routing rule per port is all the dataplane has).
    unsigned port = 0;
    next_hop = 0;
    for (unsigned p = 0; p < lc.n_ports; ++p) {
        const PortInfo& pi = lc.ports[p];
        const uint32_t mask = pi.prefix_len ? ~uint32_t{0} << (32 - pi.prefix_len) : 0;
        if ((ip & mask) == (pi.ip & mask)) {
            next_hop = ip;
            return p;
        }
        if (!next_hop && pi.gateway) {
            port = p;
            next_hop = pi.gateway;
        }
    }
    if (!next_hop) next_hop = ip;  // no gateway: try the link
    return port;
}

void LcoreOutput::send(rte_mbuf* m, uint32_t remote_ip) {
    uint32_t next_hop = 0;
    const unsigned port = route(lc_, remote_ip, next_hop);
    const PortInfo& pi = lc_.ports[port];
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->src_addr = pi.mac;
    if (const rte_ether_addr* mac = lc_.arp.lookup(next_hop, lc_.now_tsc)) {
        eth->dst_addr = *mac;
        tx_enqueue(lc_, port, m);
        return;
    }
    switch (lc_.arp.enqueue(next_hop, m, lc_.now_tsc)) {
        case net::ArpTable::Queued::kSendRequest:
            net::arp_request(lc_, port, next_hop);
            break;
        case net::ArpTable::Queued::kWaiting:
            break;
        case net::ArpTable::Queued::kFull:
            ++lc_.counters.arp_queue_full;
            rte_pktmbuf_free(m);
            break;
    }
}

bool hand_over(Lcore& lc, unsigned core, unsigned port, rte_mbuf* m, MessageKind kind) {
    Message msg;
    msg.kind = kind;
    msg.arg = port;
    msg.ptr = m;
    if (lc.messages.send(core, msg)) {
        ++lc.counters.handoffs_out;
        return true;
    }
    ++lc.counters.handoff_full;  // and ring_full_<kind>; M was freed
    return false;
}

namespace {

bool poll_rx(Lcore& lc, void*) {
    bool work = false;
    rte_mbuf* pkts[kBurst];
    for (unsigned p = 0; p < lc.n_ports; ++p) {
        const uint16_t n = rte_eth_rx_burst(lc.ports[p].port_id, lc.queue, pkts, kBurst);
        if (n == 0) continue;
        work = true;
        lc.counters.rx_frames += n;
        // One receive burst for TCP: each connection is woken and ACKed
        // once for all its segments in it.
        if (lc.tcp) lc.tcp->begin_burst();
        for (uint16_t i = 0; i < n; ++i) {
            lc.counters.rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
            if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
            handle_frame(lc, p, pkts[i], false);
        }
        if (lc.tcp) lc.tcp->end_burst(lc.now_us);
    }
    return work;
}

// Everything the other cores sent: a burst from each ring, by kind (the
// handlers registered on lc.messages). Progress is messages handled.
bool poll_rings(Lcore& lc, void*) { return lc.messages.poll() > 0; }

// Handed-over frames (kPacket, kArp) carry the port they arrived on.
void deliver_frames(void* ctx, unsigned, const Message* msgs, unsigned n) {
    Lcore& lc = *static_cast<Lcore*>(ctx);
    lc.counters.handoffs_in += n;
    // One receive burst for TCP: each connection is woken and ACKed once
    // for all its segments in it.
    if (lc.tcp) lc.tcp->begin_burst();
    for (unsigned i = 0; i < n; ++i) {
        if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(static_cast<rte_mbuf*>(msgs[i + 1].ptr), void*));
        const unsigned port = msgs[i].arg < lc.n_ports ? msgs[i].arg : 0;
        handle_frame(lc, port, static_cast<rte_mbuf*>(msgs[i].ptr), true);
    }
    if (lc.tcp) lc.tcp->end_burst(lc.now_us);
}

void free_frame(void*, const Message& m) { rte_pktmbuf_free(static_cast<rte_mbuf*>(m.ptr)); }

bool poll_timers(Lcore& lc, void*) { return lc.tcp->poll(lc.now_us); }

// ARP expiry and the statistics segment, ten times a second.
bool poll_housekeeping(Lcore& lc, void*) {
    const uint64_t now = lc.now_tsc;
    if (now < lc.next_housekeeping) return false;
    lc.next_housekeeping = now + lc.tsc_hz / 10;
    net::arp_timer(lc, now);
    if (lc.stats) publish(lc, *lc.stats);
    return true;  // publishing is work done
}

bool poll_tx(Lcore& lc, void*) { return tx_flush(lc); }

}  // namespace

bool add_poller(Lcore& lc, const Poller& p) {
    if (lc.n_pollers == kMaxPollers) return false;
    unsigned at = lc.n_pollers;
    while (at > 0 && lc.pollers[at - 1].stage > p.stage) {
        lc.pollers[at] = lc.pollers[at - 1];
        --at;
    }
    lc.pollers[at] = p;
    ++lc.n_pollers;
    return true;
}

void add_default_pollers(Lcore& lc) {
    using S = Poller::Stage;
    lc.messages.on(MessageKind::kPacket, {deliver_frames, free_frame, &lc});
    lc.messages.on(MessageKind::kArp, {deliver_frames, free_frame, &lc});
    // Rings before rx: a frame another core handed over arrived before
    // what this core's queue holds now, and a flow whose packets come both
    // ways (a TAP's queue choice moves to where we send from) stays in
    // order -- PAWS and the out-of-order queue would pay for it.
    // Always: the control thread's ring is one of them.
    add_poller(lc, {"rings", poll_rings, nullptr, S::kInput});
    add_poller(lc, {"rx", poll_rx, nullptr, S::kInput});
    if (lc.tcp) add_poller(lc, {"timers", poll_timers, nullptr, S::kInput});
    lc.now_tsc = rte_rdtsc();
    lc.next_housekeeping = lc.now_tsc + lc.tsc_hz / 10;
    add_poller(lc, {"housekeeping", poll_housekeeping, nullptr, S::kOutput});
    add_poller(lc, {"tx", poll_tx, nullptr, S::kOutput});
}

bool run_once(Lcore& lc) {
    const uint64_t start = rte_rdtsc();
    lc.now_tsc = start;
    lc.now_us = start / (lc.tsc_hz / 1'000'000);
    if (lc.app) lc.app->set_now(lc.now_us);
    bool work = false;
    for (unsigned i = 0; i < lc.n_pollers; ++i) {
        Poller& p = lc.pollers[i];
        if (p.fn(lc, p.arg)) {
            ++p.progress;
            work = true;
        }
    }
    // Nothing of this iteration is held any more.
    if (lc.qsbr) rte_rcu_qsbr_quiescent(lc.qsbr, lc.index);
    const uint64_t end = rte_rdtsc();
    ++lc.counters.loop_iterations;
    lc.counters.loop_cycles += end - start;
    if (work) {
        ++lc.counters.loop_busy_iterations;
        lc.counters.loop_busy_cycles += end - start;
    }
    return work;
}

int lcore_main(Lcore& lc, const std::atomic<bool>& stop, uint64_t drain_us,
               std::atomic<unsigned>& draining) {
    struct Online {
        rte_rcu_qsbr* v;
        unsigned id;
        Online(rte_rcu_qsbr* q, unsigned i) : v(q), id(i) {
            if (v) rte_rcu_qsbr_thread_online(v, id);
        }
        ~Online() {
            if (v) rte_rcu_qsbr_thread_offline(v, id);
        }
    } online(lc.qsbr, lc.index);
    while (!stop.load(std::memory_order_relaxed)) run_once(lc);
    if (!lc.app) {
        if (lc.stats) publish(lc, *lc.stats);
        return 0;
    }
    // Graceful shutdown: no new connections, established ones may finish.
    lc.app->stop_accepting();
    // DRAINING counts cores that stopped accepting and still have sessions
    // (+1 each) and cores whose sessions are gone (+kDone each): every core
    // keeps polling — and refusing — until all are done or time is up, so
    // that no queue goes unread while a client waits for its RST.
    constexpr unsigned kDone = 1u << 16;
    draining.fetch_add(1);
    const uint64_t deadline = lc.now_us + drain_us;
    bool told = false, done = false;
    while (lc.now_us < deadline) {
        run_once(lc);
        const unsigned d = draining.load();
        if (lc.index == 0 && !told && (d & (kDone - 1)) + (d >> 16) == lc.n_cores) {
            errlog::report_at(errlog::Level::kNotice, "terminusd", "draining: new connections are refused on every core");
            told = true;
        }
        if (!done && lc.app->sessions_active() == 0) {
            draining.fetch_add(kDone - 1);  // one fewer draining, one more done
            done = true;
        }
        if ((draining.load() >> 16) == lc.n_cores) break;
    }
    if (lc.index == 0 && !told) {
        errlog::report_at(errlog::Level::kNotice, "terminusd", "draining: new connections are refused on every core");
    }
    lc.app->abort_all();
    // Let the resets leave.
    const uint64_t flush_until = lc.now_us + 50'000;
    while (lc.now_us < flush_until) run_once(lc);
    if (lc.stats) publish(lc, *lc.stats);
    return 0;
}

}  // namespace terminus::dataplane
