// The access log's costs: on a core, the record of a session that is
// logged (fill_record and the ring's enqueue) and what a session of a
// server without access_log pays (SessionLog's notes and the check at its
// end); in terminus-mgmtd, formatting a record, and the whole turn —
// dequeue, format, write — in records per second on one core. TSC cycles
// are counted around the measured calls only.
#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dataplane/access_log.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/tcp/tcp.h"
#include "mgmt/access_log_format.h"
#include "mgmt/access_log_reader.h"
#include "mgmt/access_log_writer.h"

namespace {

using namespace terminus;

rte_mempool* g_pool = nullptr;

// The integration test's formats: nginx's documented "basic", a long one
// with the TLS and upstream variables, and one with escape=json.
const char* kConfig = R"(
stream {
    log_format basic '$remote_addr [$time_local] $protocol $status $bytes_sent $bytes_received $session_time';
    log_format main '$remote_addr:$remote_port $server_addr:$server_port [$time_local] $protocol $status '
                    '$bytes_sent $bytes_received $session_time "$upstream_addr" "$upstream_bytes_sent" '
                    '"$upstream_bytes_received" "$upstream_connect_time" "$ssl_protocol" "$ssl_cipher" '
                    '"$ssl_server_name" "$ssl_session_reused" "$ssl_preread_server_name" $connection $msec';
    log_format js escape=json '{"remote_addr":"$remote_addr","remote_port":"$remote_port","status":"$status",'
                    '"bytes_sent":"$bytes_sent","sni":"$ssl_server_name","time":"$time_iso8601"}';
    server { listen 80; proxy_pass 198.18.0.1:9001; access_log /dev/shm/terminus-bench-basic.log basic; }
    server { listen 81; proxy_pass 198.18.0.1:9001; access_log /dev/shm/terminus-bench-main.log main; }
    server { listen 82; proxy_pass 198.18.0.1:9001; access_log /dev/shm/terminus-bench-js.log js; }
    server { listen 83; proxy_pass 198.18.0.1:9001; access_log /dev/shm/terminus-bench-buf.log main buffer=64k; }
    server { listen 84; proxy_pass 198.18.0.1:9001; }
}
)";

std::shared_ptr<const config::Config> config() {
    static auto cfg = [] {
        auto r = config::load_string(kConfig, "/tmp/bench.conf");
        return r.config;
    }();
    return cfg;
}

struct Null : tcp::Output {
    void send(rte_mbuf* m, uint32_t) override { rte_pktmbuf_free(m); }
};

// A proxy on one core, its generation's routes, and a session as the
// relay leaves it at its end, on server block SERVER.
struct Core {
    Null out;
    tcp::Stack stack;
    dataplane::proxy::Proxy proxy;
    dataplane::proxy::Routes routes;
    std::vector<std::unique_ptr<dataplane::proxy::ServerListener>> listeners;
    dataplane::proxy::Session session;

    static tcp::TcpParams params() {
        tcp::TcpParams p;
        p.max_connections = 64;
        return p;
    }
    Core() : stack(params(), g_pool, out, tcp::SipKey{1, 2}, rte_ether_addr{}), proxy(stack, 0, 1, 0xC6120002, 16) {
        routes.cfg = config();
        routes.generation = 1;
        routes.log_signature = mgmt::access_log_signature(*routes.cfg);
        for (const auto& s : routes.cfg->servers) {
            listeners.push_back(std::make_unique<dataplane::proxy::ServerListener>(proxy, s));
        }
    }
    void start(size_t server) {
        auto& s = session;
        s.reset();
        s.routes = &routes;
        s.listener = listeners[server].get();
        s.started_us = 1000;
        s.log.client_ip = 0xC6120001;
        s.log.client_port = 40000;
        s.log.local_ip = 0xC6120002;
        s.log.local_port = static_cast<uint16_t>(80 + server);
        s.log.connection = 1;
        s.log.attempt(0xC6120001, 9001, 100);
        s.log.ready(400);
        s.bytes_to_upstream = 1234;
        s.bytes_to_client = 56789;
        s.has_hello = true;
        const char name[] = "www.example.com";
        std::memcpy(s.hello.server_name_buf, name, sizeof name - 1);
        s.hello.server_name_len = sizeof name - 1;
    }
};

std::string segment_path() { return "/dev/shm/terminus-bench-" + std::to_string(::getpid()) + ".log"; }

// A logged session's end on the core: fill_record and the ring's enqueue
// (the ring drained, untimed, every 1024).
void BM_CoreLoggedSession(benchmark::State& state) {
    Core core;
    auto seg = dataplane::AccessLogSegment::create("bench", 1, 1 << 20, rte_get_tsc_hz(), segment_path());
    auto reader = mgmt::AccessLogReader::open(segment_path());
    if (!seg || !reader) {
        state.SkipWithError("segment");
        return;
    }
    dataplane::AccessLogRing& ring = (*seg)->ring(0);
    std::vector<mgmt::AccessRecord> sink(1024);
    core.start(1);
    uint64_t cycles = 0, n = 0;
    for (auto _ : state) {
        const uint64_t t0 = rte_rdtsc();
        mgmt::AccessRecord r;
        dataplane::fill_record(core.session, ring, 2000, r);
        benchmark::DoNotOptimize(ring.push(r, 2000));
        cycles += rte_rdtsc() - t0;
        if (++n % 1024 == 0) {
            state.PauseTiming();
            while ((*reader)->drain(sink.data(), sink.size()) > 0) {
            }
            state.ResumeTiming();
        }
    }
    state.counters["cycles_per_session"] = static_cast<double>(cycles) / static_cast<double>(n);
    state.counters["dropped"] = static_cast<double>(ring.dropped());
}
BENCHMARK(BM_CoreLoggedSession);

// A session of a server without access_log: what it pays for the access
// log's sake — SessionLog's notes (reset, client, one upstream try and its
// readiness, a status) and free_session's check.
void BM_CoreUnloggedSession(benchmark::State& state) {
    Core core;
    core.start(4);
    auto& s = core.session;
    uint64_t cycles = 0, n = 0, logged = 0;
    for (auto _ : state) {
        const uint64_t t0 = rte_rdtsc();
        s.log = dataplane::SessionLog{};
        s.log.client_ip = 0xC6120001;
        s.log.client_port = static_cast<uint16_t>(n);
        s.log.local_ip = 0xC6120002;
        s.log.local_port = 84;
        s.log.connection = n;
        s.log.attempt(0xC6120001, 9001, 100);
        s.log.ready(400);
        s.log.fail(mgmt::SessionStatus::kBadGateway);
        benchmark::DoNotOptimize(s.log);
        if (!s.listener->server.settings.access_log.empty()) ++logged;
        cycles += rte_rdtsc() - t0;
        ++n;
    }
    state.counters["cycles_per_session"] = static_cast<double>(cycles) / static_cast<double>(n);
    state.counters["logged"] = static_cast<double>(logged);
}
BENCHMARK(BM_CoreUnloggedSession);

// What the two rdtsc around a measured call cost by themselves, to take
// off the figures above.
void BM_TscPair(benchmark::State& state) {
    uint64_t cycles = 0, n = 0;
    for (auto _ : state) {
        const uint64_t t0 = rte_rdtsc();
        benchmark::ClobberMemory();
        cycles += rte_rdtsc() - t0;
        ++n;
    }
    state.counters["cycles"] = static_cast<double>(cycles) / static_cast<double>(n);
}
BENCHMARK(BM_TscPair);

mgmt::AccessRecord a_record(size_t server) {
    Core core;
    core.start(server);
    auto seg = dataplane::AccessLogSegment::create("bench", 1, 4096, rte_get_tsc_hz(), segment_path() + ".one");
    mgmt::AccessRecord r;
    dataplane::fill_record(core.session, (*seg)->ring(0), 5'000'000, r);
    return r;
}

// terminus-mgmtd formatting one record (no I/O). Arg: the server block,
// 0 "basic", 1 the long one, 2 json.
void BM_MgmtdFormat(benchmark::State& state) {
    auto lc = mgmt::LogConfig::build(config());
    const size_t server = static_cast<size_t>(state.range(0));
    const mgmt::AccessRecord r = a_record(server);
    const mgmt::LogContext ctx{"bench", "0.1.0", 1};
    const auto& line = (*lc)->lines(server)[0];
    std::string out;
    uint64_t cycles = 0, bytes = 0;
    for (auto _ : state) {
        out.clear();
        const uint64_t t0 = rte_rdtsc();
        line.format->format(r, ctx, out);
        cycles += rte_rdtsc() - t0;
        bytes += out.size();
    }
    state.counters["cycles_per_record"] = static_cast<double>(cycles) / static_cast<double>(state.iterations());
    state.counters["records_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["line_bytes"] = static_cast<double>(bytes) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_MgmtdFormat)->Arg(0)->Arg(1)->Arg(2);

// terminus-mgmtd's whole turn on one core: dequeue from the ring, check,
// format, write (a file on tmpfs). Arg: the server block, 1 unbuffered
// (one write(2) per turn), 3 the same with buffer=64k.
void BM_MgmtdTurn(benchmark::State& state) {
    const size_t server = static_cast<size_t>(state.range(0));
    const std::string seg_path = segment_path();
    auto seg = dataplane::AccessLogSegment::create("bench", 1, 1 << 20, rte_get_tsc_hz(), seg_path);
    mgmt::AccessLogWriter::Options o;
    o.segment = seg_path;
    o.context = {"bench", "0.1.0", 1};
    mgmt::AccessLogWriter w(std::move(o));
    if (!seg || !w.configure(config()).empty()) {
        state.SkipWithError("set-up");
        return;
    }
    const mgmt::AccessRecord r = a_record(server);
    auto& ring = (*seg)->ring(0);
    const auto now = mgmt::AccessLogWriter::Clock::now();
    w.poll(now);  // attaches
    const std::string file = server == 3 ? "/dev/shm/terminus-bench-buf.log" : "/dev/shm/terminus-bench-main.log";
    constexpr size_t kPerTurn = 1024;
    uint64_t cycles = 0, records = 0;
    for (auto _ : state) {
        state.PauseTiming();
        for (size_t i = 0; i < kPerTurn; ++i) ring.push(r, 0);
        if (records % (kPerTurn * 64) == 0) std::filesystem::resize_file(file, 0);
        state.ResumeTiming();
        const uint64_t t0 = rte_rdtsc();
        records += w.poll(now);
        cycles += rte_rdtsc() - t0;
    }
    w.flush();
    std::filesystem::remove(file);
    state.counters["cycles_per_record"] = static_cast<double>(cycles) / static_cast<double>(records);
    state.counters["records_per_s"] = static_cast<double>(records) /
                                      (static_cast<double>(cycles) / static_cast<double>(rte_get_tsc_hz()));
}
BENCHMARK(BM_MgmtdTurn)->Arg(1)->Arg(3);

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args = {"bench", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                                      "-l", "0", "--file-prefix=bench-" + std::to_string(getpid()),
                                      "--log-level=*:error"};
    std::vector<char*> eal;
    for (auto& s : args) eal.push_back(s.data());
    if (rte_eal_init(static_cast<int>(eal.size()), eal.data()) < 0) return 1;
    g_pool = rte_pktmbuf_pool_create("bench", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ::benchmark::Initialize(&argc, argv);
    ::benchmark::RunSpecifiedBenchmarks();
    ::benchmark::Shutdown();
    ::unlink(segment_path().c_str());
    rte_eal_cleanup();
    return 0;
}
