// The per-lcore context: everything one poll-mode core owns, passed down by
// reference (never reached through a global indexed by rte_lcore_id()).
// Private to dataplane/.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/messages.h"
#include "dataplane/net/arp.h"
#include "dataplane/net/counters.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/worker.h"

namespace terminus::dataplane::proxy {
class Proxy;
class SharedUpstreams;
}
namespace terminus::mgmt {
class StatsWriter;
}

namespace terminus::dataplane {

constexpr unsigned kBurst = 32;
constexpr unsigned kMaxPorts = 4;
constexpr unsigned kMaxCores = 16;
constexpr unsigned kMaxPollers = 16;
static_assert(kMaxCores <= kMaxMessageCores, "a mailbox reaches every core");

// A port as every core sees it; written once at start, then read-only.
struct PortInfo {
    uint16_t port_id = 0;
    rte_ether_addr mac{};
    uint32_t ip = 0;  // host byte order
    uint8_t prefix_len = 0;
    uint32_t gateway = 0;  // 0: none
    uint16_t mtu = 1500;
    bool tx_ip_cksum = false;  // the NIC fills IPv4 header checksums
};

// Packets waiting for tx_burst, per port; flushed every loop iteration.
struct TxQueue {
    std::array<rte_mbuf*, kBurst> pkts{};
    uint16_t count = 0;
};

struct alignas(RTE_CACHE_LINE_SIZE) Lcore {
    unsigned index = 0;    // 0..n_cores-1: which flows this core owns
    unsigned lcore_id = 0;
    uint16_t queue = 0;    // RX/TX queue on every port
    unsigned n_cores = 1;
    unsigned n_ports = 0;
    const PortInfo* ports = nullptr;
    rte_mempool* pool = nullptr;
    uint64_t tsc_hz = 0;
    // Its end of the message rings to and from every other core
    // (messages.h): handed-over frames, ARP floods, session entries.
    Mailbox messages;
    std::array<TxQueue, kMaxPorts> tx{};
    net::ArpTable arp;
    net::NetCounters counters;
    uint64_t now_us = 0;   // this loop iteration's clock
    uint64_t now_tsc = 0;  // the same, in TSC cycles
    tcp::Stack* tcp = nullptr;
    Application* app = nullptr;
    proxy::Proxy* proxy = nullptr;  // terminusd's application, for its statistics
    // Every upstream server's state, for the statistics (core 0 reports it).
    const proxy::SharedUpstreams* upstreams = nullptr;
    mgmt::StatsWriter* stats = nullptr;
    // Where the core reports a quiescent state after each loop iteration
    // (thread id: INDEX), so that the control thread knows when nothing
    // it retired can still be in use here (generation.h); null: nobody asks.
    rte_rcu_qsbr* qsbr = nullptr;
    // The loop: rx, rings and TCP timers first, then what the
    // application adds, then housekeeping and tx (add_default_pollers).
    std::array<Poller, kMaxPollers> pollers{};
    unsigned n_pollers = 0;
    uint64_t next_housekeeping = 0;  // TSC
};

// Adds P to LC's loop after the pollers of its stage and of earlier
// stages; false when the list is full.
bool add_poller(Lcore& lc, const Poller& p);
// The pollers every core runs: rx, rings from the other cores, TCP
// timers (when LC has a stack), ARP housekeeping and statistics
// (periodic), tx.
void add_default_pollers(Lcore& lc);

// Sends frames of the TCP stack: resolves the next hop with ARP (queueing
// the frame while it resolves) and hands them to the TX queue.
class LcoreOutput final : public tcp::Output {
  public:
    explicit LcoreOutput(Lcore& lc) : lc_(lc) {}
    void send(rte_mbuf* frame, uint32_t remote_ip) override;

  private:
    Lcore& lc_;
};

// The port that reaches IP and the next hop on it (IP itself, or the
// port's gateway).
unsigned route(const Lcore& lc, uint32_t ip, uint32_t& next_hop);

// Queues PKT for transmission on PORT; sends the burst when it is full.
void tx_enqueue(Lcore& lc, unsigned port, rte_mbuf* pkt);
// Sends whatever is queued; returns whether anything was sent.
bool tx_flush(Lcore& lc);

// Handles one received frame. FROM_CORE is true for frames another core
// handed over (they were counted there).
void handle_frame(Lcore& lc, unsigned port, rte_mbuf* m, bool from_core);

// Hands frame M, received on PORT, to core CORE as a message of KIND
// (kPacket or kArp), which then handles it as if it had received it.
// Counts handoffs_out, or handoff_full when CORE's ring is full (M freed:
// one reference of it). Returns whether it went.
bool hand_over(Lcore& lc, unsigned core, unsigned port, rte_mbuf* m, MessageKind kind);

// One turn of LC's loop: every poller once. Returns whether any made
// progress (and counts the iteration's cycles as busy if so).
bool run_once(Lcore& lc);

// The poll loop of one lcore. When STOP becomes true it stops accepting,
// lets established sessions finish for DRAIN_US, resets what is left, and
// returns.
// DRAINING counts the cores that stopped accepting; the main core logs
// once all have, which is when a new connection is sure to be refused.
int lcore_main(Lcore& lc, const std::atomic<bool>& stop, uint64_t drain_us,
               std::atomic<unsigned>& draining);

}  // namespace terminus::dataplane
