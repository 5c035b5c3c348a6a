// terminus-loadgen: a load generator on the Terminus dataplane. It runs
// its own poll-mode cores and userspace TCP, OpenSSL on the client side,
// and reaches the server under test over a DPDK port (net_memif to
// terminusd: two DPDK processes sharing memory, no kernel on the path;
// net_tap to a kernel server in a namespace). It is also the backend the
// server proxies to, so one program sees both ends of every connection.
//
// It prints a progress line a second on stderr and a JSON summary on
// stdout (or --json FILE).
#include <getopt.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <sys/random.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "config/config.h"
#include "dataplane/net/packet.h"
#include "dataplane/runtime.h"
#include "perf/loadgen/loadgen.h"

namespace {

using namespace terminus;
using loadgen::Options;

constexpr const char* kProgram = "terminus-loadgen";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: terminus-loadgen --port DEV[,k=v...] --address IP/LEN [options]\n"
                 "  dataplane:\n"
                 "    --port DEVARGS      DPDK device, e.g. net_memif0,role=client,socket=/run/x.sock\n"
                 "    --address IP/LEN    our address on it;  --gateway IP\n"
                 "    --lcores LIST       cores, as EAL's -l (default 1)\n"
                 "    --mbufs N           packet buffers (default 65535)\n"
                 "    --name NAME         EAL file prefix terminus-NAME (default loadgen)\n"
                 "  clients:\n"
                 "    --target IP:PORT    the server under test (none: backend only)\n"
                 "    --tls               TLS clients (default plain TCP)\n"
                 "    --tls-version V     1.2 | 1.3 (default: negotiate)\n"
                 "    --sigalgs S         ecdsa | rsa | an OpenSSL list (picks the certificate)\n"
                 "    --groups G          key-exchange groups, e.g. X25519\n"
                 "    --ciphers C         TLS 1.2 ciphers;  --ciphersuites C  TLS 1.3 suites\n"
                 "    --sni NAME          server name to send\n"
                 "    --resume MODE       none | ticket | session-id (default none: full handshakes)\n"
                 "    --request BYTES     sent by each client (default 0; k, m, g suffixes)\n"
                 "    --response BYTES    awaited by each client (default 1)\n"
                 "    --hold SECONDS      keep each connection open after its response (-1: to the end)\n"
                 "    --concurrency N     connections open at once (default 1)\n"
                 "    --rate R            new connections per second (default 0: as fast as possible)\n"
                 "    --connections N     stop after N (default 0: run for --duration)\n"
                 "    --warmup N          each core's first N connections one at a time (default 0)\n"
                 "    --duration S        seconds of load (default 10)\n"
                 "    --connect-timeout S (default 5)\n"
                 "  backend:\n"
                 "    --backend PORT      also serve as the upstream: read --request bytes,\n"
                 "                        answer --response bytes (default: none)\n"
                 "    --backend-tls       the backend speaks TLS 1.2 and 1.3, with a session cache and\n"
                 "                        tickets; counts the handshakes it served, full and resumed\n"
                 "    --backend-cert F --backend-key F   its certificate chain and key (PEM; repeat\n"
                 "                        the pair for ECDSA and RSA side by side)\n"
                 "  output:\n"
                 "    --json FILE         the summary (default stdout);  --quiet  no progress line\n"
                 "    --wait-link S       wait for the link and the target's ARP reply (default 10)\n"
                 "    --linger S          after the load, wait for open connections (default 5)\n");
}

bool parse_size(const char* s, uint64_t& out) {
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (end == s || v < 0) return false;
    double mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1024, ++end;
    else if (*end == 'm' || *end == 'M') mul = 1024.0 * 1024, ++end;
    else if (*end == 'g' || *end == 'G') mul = 1024.0 * 1024 * 1024, ++end;
    if (*end) return false;
    out = static_cast<uint64_t>(v * mul);
    return true;
}

bool parse_port_devargs(const std::string& s, config::PortConfig& p) {
    size_t start = 0;
    bool first = true;
    while (start <= s.size()) {
        const size_t comma = s.find(',', start);
        const std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (first) {
            p.device = part;
            first = false;
        } else if (!part.empty()) {
            const size_t eq = part.find('=');
            if (eq == std::string::npos) return false;
            p.devargs.emplace_back(part.substr(0, eq), part.substr(eq + 1));
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return !p.device.empty();
}

struct Run {
    Options o;
    config::DataplaneConfig dp;
    std::string name = "loadgen";
    std::string json;
    bool quiet = false;
    double duration_s = 10;
    double wait_link_s = 10;
    double linger_s = 5;
};

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

int core_main(void* arg) {
    auto& lc = *static_cast<dataplane::Lcore*>(arg);
    while (!g_stop.load(std::memory_order_relaxed)) dataplane::run_once(lc);
    lc.app->abort_all();
    const uint64_t until = lc.now_us + 50'000;  // let the resets leave
    while (lc.now_us < until) dataplane::run_once(lc);
    return 0;
}

void json_hist(std::string& out, const char* name, const loadgen::Histogram& h, bool last = false) {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "    \"%s\": {\"count\": %lu, \"mean\": %.1f, \"p50\": %lu, \"p90\": %lu, \"p99\": %lu, "
                  "\"p99_9\": %lu, \"max\": %lu}%s\n",
                  name, static_cast<unsigned long>(h.count()), h.mean(), static_cast<unsigned long>(h.quantile(0.5)),
                  static_cast<unsigned long>(h.quantile(0.9)), static_cast<unsigned long>(h.quantile(0.99)),
                  static_cast<unsigned long>(h.quantile(0.999)), static_cast<unsigned long>(h.max()),
                  last ? "" : ",");
    out += buf;
}

int parse(int argc, char** argv, Run& r) {
    enum {
        kPort = 256, kAddress, kGateway, kLcores, kMbufs, kName, kTarget, kTls, kTlsVersion, kSigalgs, kGroups,
        kCiphers, kSuites, kSni, kResume, kRequest, kResponse, kHold, kConcurrency, kRate, kConnections, kWarmup,
        kDuration, kConnectTimeout, kBackend, kBackendTls, kBackendCert, kBackendKey, kJson, kQuiet, kWaitLink,
        kLinger, kHelp
    };
    static const option longopts[] = {
        {"port", required_argument, nullptr, kPort}, {"address", required_argument, nullptr, kAddress},
        {"gateway", required_argument, nullptr, kGateway}, {"lcores", required_argument, nullptr, kLcores},
        {"mbufs", required_argument, nullptr, kMbufs}, {"name", required_argument, nullptr, kName},
        {"target", required_argument, nullptr, kTarget}, {"tls", no_argument, nullptr, kTls},
        {"tls-version", required_argument, nullptr, kTlsVersion}, {"sigalgs", required_argument, nullptr, kSigalgs},
        {"groups", required_argument, nullptr, kGroups}, {"ciphers", required_argument, nullptr, kCiphers},
        {"ciphersuites", required_argument, nullptr, kSuites}, {"sni", required_argument, nullptr, kSni},
        {"resume", required_argument, nullptr, kResume}, {"request", required_argument, nullptr, kRequest},
        {"response", required_argument, nullptr, kResponse}, {"hold", required_argument, nullptr, kHold},
        {"concurrency", required_argument, nullptr, kConcurrency}, {"rate", required_argument, nullptr, kRate},
        {"connections", required_argument, nullptr, kConnections},
        {"warmup", required_argument, nullptr, kWarmup},
        {"duration", required_argument, nullptr, kDuration},
        {"connect-timeout", required_argument, nullptr, kConnectTimeout},
        {"backend", required_argument, nullptr, kBackend}, {"backend-tls", no_argument, nullptr, kBackendTls},
        {"backend-cert", required_argument, nullptr, kBackendCert},
        {"backend-key", required_argument, nullptr, kBackendKey}, {"json", required_argument, nullptr, kJson},
        {"quiet", no_argument, nullptr, kQuiet}, {"wait-link", required_argument, nullptr, kWaitLink},
        {"linger", required_argument, nullptr, kLinger}, {"help", no_argument, nullptr, kHelp},
        {nullptr, 0, nullptr, 0}};
    config::PortConfig port;
    bool have_port = false, have_address = false;
    r.o.response = 1;
    r.dp.lcores = {1};
    r.dp.mbufs = 65535;
    r.dp.max_connections = 131072;
    int opt;
    auto bad = [&](const char* what) {
        std::fprintf(stderr, "%s: bad %s \"%s\"\n", kProgram, what, optarg);
        return 2;
    };
    while ((opt = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
        switch (opt) {
            case kPort:
                if (!parse_port_devargs(optarg, port)) return bad("--port");
                have_port = true;
                break;
            case kAddress: {
                std::string a = optarg;
                const size_t slash = a.find('/');
                auto ip = config::parse_ipv4(a.substr(0, slash));
                if (!ip) return bad("--address");
                port.address.addr = *ip;
                port.address.len = static_cast<uint8_t>(slash == std::string::npos ? 24 : std::stoi(a.substr(slash + 1)));
                have_address = true;
                break;
            }
            case kGateway: {
                auto ip = config::parse_ipv4(optarg);
                if (!ip) return bad("--gateway");
                port.gateway = *ip;
                break;
            }
            case kLcores: {
                r.dp.lcores.clear();
                std::string s = optarg;
                size_t start = 0;
                while (start < s.size()) {
                    size_t comma = s.find(',', start);
                    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                    const size_t dash = part.find('-');
                    const unsigned lo = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
                    const unsigned hi = dash == std::string::npos ? lo : static_cast<unsigned>(std::stoul(part.substr(dash + 1)));
                    for (unsigned c = lo; c <= hi; ++c) r.dp.lcores.push_back(c);
                    if (comma == std::string::npos) break;
                    start = comma + 1;
                }
                if (r.dp.lcores.empty()) return bad("--lcores");
                break;
            }
            case kMbufs: r.dp.mbufs = static_cast<uint32_t>(std::stoul(optarg)); break;
            case kName: r.name = optarg; break;
            case kTarget: {
                std::string t = optarg;
                const size_t colon = t.rfind(':');
                if (colon == std::string::npos) return bad("--target");
                auto ip = config::parse_ipv4(t.substr(0, colon));
                if (!ip) return bad("--target");
                r.o.target_ip = *ip;
                r.o.target_port = static_cast<uint16_t>(std::stoul(t.substr(colon + 1)));
                break;
            }
            case kTls: r.o.tls = true; break;
            case kTlsVersion:
                if (!std::strcmp(optarg, "1.2")) r.o.tls_version = TLS1_2_VERSION;
                else if (!std::strcmp(optarg, "1.3")) r.o.tls_version = TLS1_3_VERSION;
                else return bad("--tls-version");
                break;
            case kSigalgs: r.o.sigalgs = optarg; break;
            case kGroups: r.o.groups = optarg; break;
            case kCiphers: r.o.ciphers = optarg; break;
            case kSuites: r.o.ciphersuites = optarg; break;
            case kSni: r.o.sni = optarg; break;
            case kResume:
                if (!std::strcmp(optarg, "none")) r.o.resume = loadgen::Resume::kNone;
                else if (!std::strcmp(optarg, "ticket")) r.o.resume = loadgen::Resume::kTicket;
                else if (!std::strcmp(optarg, "session-id")) r.o.resume = loadgen::Resume::kSessionId;
                else return bad("--resume");
                break;
            case kRequest: if (!parse_size(optarg, r.o.request)) return bad("--request"); break;
            case kResponse: if (!parse_size(optarg, r.o.response)) return bad("--response"); break;
            case kHold: r.o.hold_s = std::stod(optarg); break;
            case kConcurrency: r.o.concurrency = static_cast<unsigned>(std::stoul(optarg)); break;
            case kRate: r.o.rate = std::stod(optarg); break;
            case kConnections: r.o.connections = std::stoull(optarg); break;
            case kWarmup: r.o.warmup = std::stoull(optarg); break;
            case kDuration: r.duration_s = std::stod(optarg); break;
            case kConnectTimeout: r.o.connect_timeout_s = std::stod(optarg); break;
            case kBackend: r.o.backend_port = static_cast<uint16_t>(std::stoul(optarg)); break;
            case kBackendTls: r.o.backend_tls = true; break;
            case kBackendCert: r.o.backend_certs.emplace_back(optarg); break;
            case kBackendKey: r.o.backend_keys.emplace_back(optarg); break;
            case kJson: r.json = optarg; break;
            case kQuiet: r.quiet = true; break;
            case kWaitLink: r.wait_link_s = std::stod(optarg); break;
            case kLinger: r.linger_s = std::stod(optarg); break;
            case kHelp: usage(stdout); std::exit(0);
            default: usage(stderr); return 2;
        }
    }
    if (!have_port || !have_address) {
        std::fprintf(stderr, "%s: --port and --address are required\n", kProgram);
        usage(stderr);
        return 2;
    }
    if (!r.o.target_ip && !r.o.backend_port) {
        std::fprintf(stderr, "%s: nothing to do: give --target, --backend or both\n", kProgram);
        return 2;
    }
    if (r.o.resume == loadgen::Resume::kSessionId && r.o.tls_version == TLS1_3_VERSION) {
        std::fprintf(stderr, "%s: TLS 1.3 resumes with tickets only (--resume ticket)\n", kProgram);
        return 2;
    }
    if (r.o.resume != loadgen::Resume::kNone && r.o.response == 0) {
        std::fprintf(stderr, "%s: resumption needs --response of at least 1 byte (TLS 1.3 tickets "
                             "arrive after the handshake)\n", kProgram);
        return 2;
    }
    if (r.o.backend_tls && (!r.o.backend_port || r.o.backend_certs.empty() ||
                            r.o.backend_certs.size() != r.o.backend_keys.size())) {
        std::fprintf(stderr, "%s: --backend-tls needs --backend PORT and one --backend-key for each "
                             "--backend-cert\n", kProgram);
        return 2;
    }
    if (r.o.concurrency == 0) r.o.concurrency = 1;
    port.loc.file = "command line";
    r.dp.ports.push_back(port);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Run r;
    if (int rc = parse(argc, argv, r); rc != 0) return rc;
    const Options& o = r.o;

    dataplane::Runtime rt(kProgram);
    if (rt.start(r.dp, r.name) != 0) return 1;
    const unsigned n = rt.n_cores;

    tcp::SipKey secret;
    if (getrandom(&secret, sizeof secret, 0) != static_cast<ssize_t>(sizeof secret)) return 1;
    if (getrandom(r.o.backend_ticket_keys, sizeof r.o.backend_ticket_keys, 0) !=
        static_cast<ssize_t>(sizeof r.o.backend_ticket_keys)) {
        return 1;
    }
    tcp::TcpParams tp;
    tp.mss = static_cast<uint16_t>(rt.ports[0].mtu - 40);
    tp.rcv_buf = tp.snd_buf = 256 * 1024;
    tp.max_connections = std::max(64u, r.dp.max_connections / n);
    std::vector<std::unique_ptr<tcp::Stack>> stacks;
    std::vector<std::unique_ptr<loadgen::Core>> cores;
    std::unique_ptr<loadgen::CoreStats[]> stats(new loadgen::CoreStats[n]);
    for (unsigned i = 0; i < n; ++i) {
        dataplane::Lcore& lc = rt.lcores[i];
        stacks.push_back(std::make_unique<tcp::Stack>(tp, rt.pool, *rt.outputs[i], secret, rt.ports[0].mac));
        lc.tcp = stacks.back().get();
        cores.push_back(std::make_unique<loadgen::Core>(o, lc, *stacks.back(), rt.ports[0].ip, stats[i]));
        std::string why;
        if (!cores.back()->init_tls(why)) {
            dataplane::log_as(kProgram, "TLS: %s", why.c_str());
            return 2;
        }
        lc.app = cores.back().get();
        dataplane::add_default_pollers(lc);
        dataplane::add_poller(lc, {"loadgen", [](dataplane::Lcore&, void* a) { return static_cast<loadgen::Core*>(a)->poll(); },
                                   cores.back().get(), dataplane::Poller::Stage::kApplication});
    }

    // The peer must be there: a memif link comes up when both sides run.
    const auto link_deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                                        std::chrono::duration<double>(r.wait_link_s));
    for (;;) {
        rte_eth_link link{};
        rte_eth_link_get_nowait(rt.ports[0].port_id, &link);
        if (link.link_status == RTE_ETH_LINK_UP) break;
        if (std::chrono::steady_clock::now() > link_deadline) {
            dataplane::log_as(kProgram, "port %s: no link after %.0f s (is the peer running?)",
                              r.dp.ports[0].device.c_str(), r.wait_link_s);
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Announce ourselves, then wait until the target answers ARP: the
    // server may still be coming up (a TAP moved into its namespace),
    // and a SYN lost to that would add a retransmission to the figures.
    {
        dataplane::Lcore& lc0 = rt.lcores[0];
        dataplane::net::arp_request(lc0, 0, rt.ports[0].ip);
        uint32_t hop = 0;
        const unsigned port = o.target_ip ? dataplane::route(lc0, o.target_ip, hop) : 0;
        uint64_t next_ask = 0;
        while (hop && !lc0.arp.lookup(hop, rte_rdtsc())) {
            if (std::chrono::steady_clock::now() > link_deadline) {
                dataplane::log_as(kProgram, "%s does not answer ARP (is the server up?)",
                                  config::ipv4_to_string(hop).c_str());
                return 1;
            }
            if (rte_rdtsc() >= next_ask) {
                dataplane::net::arp_request(lc0, port, hop);
                next_ask = rte_rdtsc() + rte_get_tsc_hz() / 10;
            }
            dataplane::run_once(lc0);
        }
        dataplane::tx_flush(lc0);
    }

    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    dataplane::log_as(kProgram, "%u core%s, %s%s%s, concurrency %u, rate %s, for %s", n, n == 1 ? "" : "s",
                      o.target_ip ? (o.tls ? "TLS clients to " : "TCP clients to ") : "no clients",
                      o.target_ip ? config::ipv4_to_string(o.target_ip).c_str() : "",
                      o.backend_port ? (", backend on port " + std::to_string(o.backend_port)).c_str() : "",
                      o.concurrency, o.rate > 0 ? std::to_string(o.rate).c_str() : "max",
                      o.connections ? (std::to_string(o.connections) + " connections").c_str()
                                    : (std::to_string(r.duration_s) + " s").c_str());

    // The control thread (not an lcore): progress, the end of the run.
    auto sum = [&](std::atomic<uint64_t> loadgen::CoreStats::*f) {
        uint64_t t = 0;
        for (unsigned i = 0; i < n; ++i) t += (stats[i].*f).load(std::memory_order_relaxed);
        return t;
    };
    const uint64_t tsc_hz = rte_get_tsc_hz();
    auto loop_cycles = [&](bool busy) {
        uint64_t t = 0;
        for (unsigned i = 0; i < n; ++i) {
            const auto& c = rt.lcores[i].counters;
            t += busy ? c.loop_busy_cycles : c.loop_cycles;
        }
        return t;
    };
    double elapsed = 0;
    uint64_t busy0 = 0, all0 = 0;
    std::thread control([&] {
        const auto t0 = std::chrono::steady_clock::now();
        uint64_t last_done = 0, last_hs = 0, last_bytes = 0;
        auto last = t0;
        bool ending = false;
        std::chrono::steady_clock::time_point end_at{};
        while (!g_stop.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            const auto now = std::chrono::steady_clock::now();
            const double t = std::chrono::duration<double>(now - t0).count();
            const bool quota_done = o.connections && sum(&loadgen::CoreStats::started) >= o.connections &&
                                    sum(&loadgen::CoreStats::active) == 0;
            if (!ending && o.target_ip && (t >= r.duration_s || quota_done)) {
                ending = true;
                elapsed = t;
                for (auto& c : cores) c->stop_starting();  // relaxed enough: a bool the cores poll
                end_at = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     std::chrono::duration<double>(o.hold_s < 0 ? 0 : r.linger_s));
            }
            if (!o.target_ip && t >= r.duration_s) {
                elapsed = t;
                g_stop.store(true);
            }
            if (ending && (sum(&loadgen::CoreStats::active) == 0 || now >= end_at)) g_stop.store(true);
            if (std::chrono::duration<double>(now - last).count() >= 1.0) {
                const double dt = std::chrono::duration<double>(now - last).count();
                const uint64_t done = sum(&loadgen::CoreStats::completed);
                const uint64_t hs = sum(&loadgen::CoreStats::handshakes);
                const uint64_t bytes = sum(&loadgen::CoreStats::bytes_received) + sum(&loadgen::CoreStats::bytes_sent);
                if (!r.quiet) {
                    std::fprintf(stderr,
                                 "%s: %5.1f s  %8.0f conn/s  %8.0f hs/s  %8.3f Gbit/s  active %6lu  failed %lu\n",
                                 kProgram, t, static_cast<double>(done - last_done) / dt,
                                 static_cast<double>(hs - last_hs) / dt,
                                 static_cast<double>(bytes - last_bytes) * 8 / dt / 1e9,
                                 static_cast<unsigned long>(sum(&loadgen::CoreStats::active)),
                                 static_cast<unsigned long>(sum(&loadgen::CoreStats::failed_connect) +
                                                            sum(&loadgen::CoreStats::failed_tls) +
                                                            sum(&loadgen::CoreStats::failed_reset)));
                }
                last = now;
                last_done = done;
                last_hs = hs;
                last_bytes = bytes;
            }
        }
        if (elapsed == 0) elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
    busy0 = loop_cycles(true);
    all0 = loop_cycles(false);
    rt.run(core_main);
    control.join();

    loadgen::Latencies lat;
    for (auto& c : cores) lat.merge(c->latencies());
    std::string out = "{\n  \"tool\": \"terminus-loadgen\",\n";
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "  \"options\": {\"target\": \"%s:%u\", \"tls\": %s, \"tls_version\": \"%s\", \"sigalgs\": \"%s\", "
                  "\"groups\": \"%s\", \"resume\": \"%s\", \"request\": %lu, \"response\": %lu, \"hold_s\": %g, "
                  "\"concurrency\": %u, \"rate\": %g, \"warmup\": %lu, \"cores\": %u, \"backend_tls\": %s},\n",
                  config::ipv4_to_string(o.target_ip).c_str(), o.target_port, o.tls ? "true" : "false",
                  o.tls_version == TLS1_3_VERSION ? "1.3" : o.tls_version == TLS1_2_VERSION ? "1.2" : "any",
                  o.sigalgs.c_str(), o.groups.c_str(),
                  o.resume == loadgen::Resume::kTicket ? "ticket" : o.resume == loadgen::Resume::kSessionId ? "session-id" : "none",
                  static_cast<unsigned long>(o.request), static_cast<unsigned long>(o.response), o.hold_s,
                  o.concurrency, o.rate, static_cast<unsigned long>(o.warmup), n, o.backend_tls ? "true" : "false");
    out += buf;
    std::snprintf(buf, sizeof buf, "  \"duration_s\": %.3f,\n  \"counts\": {", elapsed);
    out += buf;
    bool first = true;
#define TERMINUS_X(name, help)                                                                             \
    std::snprintf(buf, sizeof buf, "%s\"%s\": %lu", first ? "" : ", ", #name,                               \
                  static_cast<unsigned long>(sum(&loadgen::CoreStats::name)));                              \
    out += buf;                                                                                            \
    first = false;
    TERMINUS_LOADGEN_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    out += "},\n";
    const double secs = elapsed > 0 ? elapsed : 1;
    const uint64_t bytes = sum(&loadgen::CoreStats::bytes_received) + sum(&loadgen::CoreStats::bytes_sent);
    std::snprintf(buf, sizeof buf,
                  "  \"connections_per_s\": %.1f,\n  \"handshakes_per_s\": %.1f,\n  \"resumed_per_s\": %.1f,\n"
                  "  \"throughput_gbit_s\": %.4f,\n",
                  static_cast<double>(sum(&loadgen::CoreStats::completed)) / secs,
                  static_cast<double>(sum(&loadgen::CoreStats::handshakes)) / secs,
                  static_cast<double>(sum(&loadgen::CoreStats::resumed)) / secs,
                  static_cast<double>(bytes) * 8 / secs / 1e9);
    out += buf;
    out += "  \"latency_us\": {\n";
    json_hist(out, "connect", lat.connect);
    json_hist(out, "handshake", lat.handshake);
    json_hist(out, "first_byte", lat.first_byte);
    json_hist(out, "total", lat.total, true);
    out += "  },\n";
    std::snprintf(buf, sizeof buf,
                  "  \"loop\": {\"busy_cycles\": %lu, \"cycles\": %lu, \"tsc_hz\": %lu}\n}\n",
                  static_cast<unsigned long>(loop_cycles(true) - busy0),
                  static_cast<unsigned long>(loop_cycles(false) - all0), static_cast<unsigned long>(tsc_hz));
    out += buf;
    if (r.json.empty()) {
        std::fputs(out.c_str(), stdout);
    } else if (FILE* f = std::fopen(r.json.c_str(), "w")) {
        std::fputs(out.c_str(), f);
        std::fclose(f);
    } else {
        dataplane::log_as(kProgram, "cannot write %s", r.json.c_str());
        return 1;
    }
    for (auto& c : cores) c.reset();
    stacks.clear();
    return 0;
}
