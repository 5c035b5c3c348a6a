// The TCP stack's receive and send paths between two stacks joined in
// memory (no NIC, no loss): cycles per received in-order data segment,
// cycles per sent segment, and the server's cost to accept and close a
// connection. TSC cycles are counted around the stack calls only.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataplane/tcp/tcp.h"

namespace {

using namespace terminus::tcp;

rte_mempool* g_pool = nullptr;
constexpr unsigned kIhl = sizeof(rte_ipv4_hdr);

struct Queue : Output {
    std::vector<rte_mbuf*> frames;
    void send(rte_mbuf* m, uint32_t) override { frames.push_back(m); }
};

struct Sink : Handler, Listener {
    Stack* stack = nullptr;
    Connection* conn = nullptr;
    uint64_t received = 0;
    int closed = 0;
    bool copy = true;  // read() the bytes out, or skip() them as a relay's forward() does
    Handler* accept(Connection& c) override {
        conn = &c;
        return this;
    }
    void on_established(Connection&) override {}
    void on_readable(Connection& c) override {
        static char buf[65536];
        uint32_t n;
        if (copy) {
            while ((n = stack->read(c, buf, sizeof buf, 0)) > 0) received += n;
        } else {
            received += stack->skip(c, UINT32_MAX, 0);
        }
        if (c.fin_received && c.state == TcpState::kCloseWait) stack->shutdown(c, 0);
    }
    void on_writable(Connection&) override {}
    void on_closed(Connection&, CloseReason) override { ++closed; }
};

TcpParams params() {
    TcpParams p;
    p.max_connections = 1024;
    p.rcv_buf = p.snd_buf = 1 << 20;
    p.time_wait_us = 1000;
    return p;
}

// Delivers queued frames to TO, timing TO's input; returns the cycles.
// NIC_CKSUM: mark the TCP checksum verified, as a NIC with RX offload does.
uint64_t deliver(Queue& q, Stack& to, uint64_t now, uint64_t* frames, bool nic_cksum = false) {
    uint64_t cycles = 0;
    while (!q.frames.empty()) {
        std::vector<rte_mbuf*> batch;
        batch.swap(q.frames);
        // In bursts of up to 32, as the poll loop's rx_burst hands them
        // over: one handler wake-up and ACK decision per burst.
        for (size_t at = 0; at < batch.size(); at += 32) {
            const size_t end = std::min(batch.size(), at + 32);
            const uint64_t t0 = rte_rdtsc();
            to.begin_burst();
            for (size_t i = at; i < end; ++i) {
                if (nic_cksum) batch[i]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
                to.input(batch[i], kIhl, now);
                ++*frames;
            }
            to.end_burst(now);
            cycles += rte_rdtsc() - t0;
        }
    }
    return cycles;
}

// Arg 0: software checksum and a reader that copies (the TAP lab).
// Arg 1: NIC-verified checksum and a consumer that takes the segments
// without copying, as the proxy's forward() does.
void BM_TcpBulk(benchmark::State& state) {
    const bool nic = state.range(0) == 1;
    Queue a_out, b_out;
    Stack a(params(), g_pool, a_out, SipKey{1, 2}, rte_ether_addr{});
    Stack b(params(), g_pool, b_out, SipKey{3, 4}, rte_ether_addr{});
    Sink server, client;
    server.stack = &b;
    server.copy = !nic;
    client.stack = &a;
    b.listen(0xc6120001, 80, &server, 16);
    Connection* c = a.connect(FourTuple{0xc6120002, 0xc6120001, 40000, 80}, &client, 0);
    uint64_t dummy = 0, now = 1;
    for (int i = 0; i < 4; ++i) {
        deliver(a_out, b, now, &dummy);
        deliver(b_out, a, now, &dummy);
    }
    const std::string chunk(64 * 1024, 'x');
    uint64_t rx_cycles = 0, rx_segments = 0, tx_cycles = 0, tx_segments = 0;
    for (auto _ : state) {
        uint32_t off = 0;
        while (off < chunk.size()) {
            uint64_t t0 = rte_rdtsc();
            off += a.write(*c, chunk.data() + off, static_cast<uint32_t>(chunk.size() - off), now);
            tx_cycles += rte_rdtsc() - t0;
            tx_segments += a_out.frames.size();
            rx_cycles += deliver(a_out, b, now, &rx_segments, nic);
            // ACKs back to the sender (counted as send-path work).
            uint64_t acks = 0;
            tx_cycles += deliver(b_out, a, now, &acks);
            tx_segments += a_out.frames.size();
            rx_cycles += deliver(a_out, b, now, &rx_segments, nic);
            now += 10;
        }
    }
    state.counters["rx_cycles_per_segment"] = static_cast<double>(rx_cycles) / static_cast<double>(rx_segments);
    state.counters["tx_cycles_per_segment"] = static_cast<double>(tx_cycles) / static_cast<double>(tx_segments ? tx_segments : 1);
    state.counters["segments"] = static_cast<double>(rx_segments);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(chunk.size()));
}
BENCHMARK(BM_TcpBulk)->Arg(0)->Arg(1);

void BM_TcpAcceptClose(benchmark::State& state) {
    Queue a_out, b_out;
    Stack a(params(), g_pool, a_out, SipKey{1, 2}, rte_ether_addr{});
    Stack b(params(), g_pool, b_out, SipKey{3, 4}, rte_ether_addr{});
    Sink server, client;
    server.stack = &b;
    client.stack = &a;
    b.listen(0xc6120001, 80, &server, 1024);
    uint64_t server_cycles = 0, conns = 0, frames = 0;
    uint64_t now = 1;
    uint16_t port = 1024;
    for (auto _ : state) {
        Connection* c = a.connect(FourTuple{0xc6120002, 0xc6120001, port, 80}, &client, now);
        port = static_cast<uint16_t>(port == 65535 ? 1024 : port + 1);
        for (int i = 0; i < 3; ++i) {
            server_cycles += deliver(a_out, b, now, &frames);
            deliver(b_out, a, now, &frames);
        }
        a.shutdown(*c, now);
        for (int i = 0; i < 4; ++i) {
            server_cycles += deliver(a_out, b, now, &frames);
            deliver(b_out, a, now, &frames);
        }
        now += 2000;  // past the client's short TIME-WAIT
        a.poll(now);
        const uint64_t t0 = rte_rdtsc();
        b.poll(now);
        server_cycles += rte_rdtsc() - t0;
        ++conns;
    }
    const double hz = static_cast<double>(rte_get_tsc_hz());
    state.counters["server_us_per_connection"] =
        static_cast<double>(server_cycles) / static_cast<double>(conns) / hz * 1e6;
    state.counters["server_cycles_per_connection"] = static_cast<double>(server_cycles) / static_cast<double>(conns);
    state.counters["connections_left"] = static_cast<double>(b.connections());
}
BENCHMARK(BM_TcpAcceptClose);

void BM_TcpConnectionMemory(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(sizeof(Connection));
    // What an idle established connection holds: its slab entry, two
    // table slots (the table is sized 2x), and its timer entries (the
    // wheel has kNumTcpTimers per connection).
    state.counters["bytes_per_connection"] =
        static_cast<double>(sizeof(Connection) + 2 * sizeof(int32_t) + kNumTcpTimers * 40);
}
BENCHMARK(BM_TcpConnectionMemory);

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args = {"bench", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                                      "-l", "0", "--file-prefix=bench-" + std::to_string(getpid()),
                                      "--log-level=*:error"};
    std::vector<char*> eal;
    for (auto& s : args) eal.push_back(s.data());
    if (rte_eal_init(static_cast<int>(eal.size()), eal.data()) < 0) return 1;
    g_pool = rte_pktmbuf_pool_create("bench", 32767, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ::benchmark::Initialize(&argc, argv);
    ::benchmark::RunSpecifiedBenchmarks();
    ::benchmark::Shutdown();
    rte_eal_cleanup();
    return 0;
}
