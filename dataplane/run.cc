// Start-up and shut-down of the dataplane: EAL, mempool, ports, rings
// between cores, one Lcore context per core, the poll loops, and what the
// log says about each.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <algorithm>
#include <string_view>
#include <thread>

#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "dataplane/lcore.h"
#include "dataplane/net/packet.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/publish.h"

#include <sys/random.h>

namespace terminus::dataplane {

namespace {

volatile bool g_stop = false;
std::atomic<unsigned> g_draining{0};

extern "C" void on_stop_signal(int) { g_stop = true; }

__attribute__((format(printf, 1, 2))) void log(const char* fmt, ...) {
    std::fprintf(stderr, "terminusd: ");
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

std::string mac_string(const rte_ether_addr& a) {
    char buf[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(buf, sizeof buf, &a);
    return buf;
}

// Directives the dataplane implements today; everything else written in
// the configuration is refused by name at start (never ignored).
constexpr std::string_view kImplemented[] = {
    "dataplane", "port", "lcores", "mbufs", "eal_args", "max_connections", "syncookies",
    "tcp_congestion", "stream", "upstream", "server", "listen", "proxy_pass", "least_conn",
    "hash", "random", "zone", "proxy_next_upstream", "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout", "proxy_buffer_size", "proxy_timeout",
    "proxy_connect_timeout", "proxy_half_close", "shutdown_timeout", "server_name",
    // TLS termination (tls/).
    "ssl_certificate", "ssl_certificate_key", "ssl_password_file", "ssl_protocols", "ssl_ciphers",
    "ssl_conf_command", "ssl_prefer_server_ciphers", "ssl_ecdh_curve", "ssl_dhparam",
    "ssl_session_cache", "ssl_session_timeout", "ssl_session_tickets", "ssl_session_ticket_key",
    "ssl_handshake_timeout", "ssl_verify_client", "ssl_verify_depth", "ssl_client_certificate",
    "ssl_trusted_certificate", "ssl_crl", "ssl_alpn", "ssl_stapling", "ssl_stapling_file",
    "ssl_reject_handshake"};

int setup_port(const config::PortConfig& pc, unsigned n_queues, rte_mempool* pool, PortInfo& out) {
    uint16_t port_id = 0;
    if (rte_eth_dev_get_port_by_name(pc.device.c_str(), &port_id) != 0) {
        log("port %s: DPDK has no such device (is its driver loaded?)", pc.device.c_str());
        return -1;
    }
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
        log("port %s: cannot read device info: %s", pc.device.c_str(), rte_strerror(-rc));
        return -1;
    }
    if (info.max_rx_queues < n_queues || info.max_tx_queues < n_queues) {
        log("port %s: %u lcores need %u RX/TX queues, the device has %u/%u", pc.device.c_str(),
            n_queues, n_queues, info.max_rx_queues, info.max_tx_queues);
        return -1;
    }
    rte_eth_conf conf{};
    const uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP);
    const bool use_rss = n_queues > 1 && rss != 0;
    if (use_rss) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss;
    }
    const uint64_t tx_ck = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    const bool tx_ip_cksum = (info.tx_offload_capa & tx_ck) == tx_ck;
    if (tx_ip_cksum) conf.txmode.offloads |= tx_ck;
    const uint64_t rx_ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    if ((info.rx_offload_capa & rx_ck) == rx_ck) conf.rxmode.offloads |= rx_ck;

    if (int rc = rte_eth_dev_configure(port_id, static_cast<uint16_t>(n_queues),
                                       static_cast<uint16_t>(n_queues), &conf);
        rc != 0) {
        log("port %s: configure failed: %s", pc.device.c_str(), rte_strerror(-rc));
        return -1;
    }
    uint16_t rxd = 1024, txd = 1024;
    rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd);
    const int socket = rte_eth_dev_socket_id(port_id);
    for (unsigned q = 0; q < n_queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(port_id, static_cast<uint16_t>(q), rxd,
                                            static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                            nullptr, pool);
            rc != 0) {
            log("port %s: RX queue %u: %s", pc.device.c_str(), q, rte_strerror(-rc));
            return -1;
        }
        if (int rc = rte_eth_tx_queue_setup(port_id, static_cast<uint16_t>(q), txd,
                                            static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                            nullptr);
            rc != 0) {
            log("port %s: TX queue %u: %s", pc.device.c_str(), q, rte_strerror(-rc));
            return -1;
        }
    }
    if (pc.mtu != 1500) {
        if (int rc = rte_eth_dev_set_mtu(port_id, pc.mtu); rc != 0) {
            log("port %s: cannot set MTU %u: %s", pc.device.c_str(), pc.mtu, rte_strerror(-rc));
            return -1;
        }
    }
    if (int rc = rte_eth_dev_start(port_id); rc != 0) {
        log("port %s: start failed: %s", pc.device.c_str(), rte_strerror(-rc));
        return -1;
    }
    rte_eth_promiscuous_disable(port_id);

    out.port_id = port_id;
    rte_eth_macaddr_get(port_id, &out.mac);
    out.ip = pc.address.addr;
    out.prefix_len = pc.address.len;
    out.gateway = pc.gateway.value_or(0);
    out.mtu = pc.mtu;
    out.tx_ip_cksum = tx_ip_cksum;
    log("port %s: DPDK port %u (%s), MAC %s, %s/%u%s%s, MTU %u, %u RX/TX queues of %u/%u, "
        "RSS %s, IPv4 checksum offload rx %s tx %s",
        pc.device.c_str(), port_id, info.driver_name, mac_string(out.mac).c_str(),
        config::ipv4_to_string(out.ip).c_str(), out.prefix_len, out.gateway ? " gateway " : "",
        out.gateway ? config::ipv4_to_string(out.gateway).c_str() : "", out.mtu, n_queues, rxd,
        txd, use_rss ? "on" : "off (cores hand flows to their owner)",
        (conf.rxmode.offloads & rx_ck) ? "on" : "off", tx_ip_cksum ? "on" : "off");
    return 0;
}

// How long SIGTERM lets established sessions finish before resetting
// them (dataplane { shutdown_timeout }), set before the lcores start.
uint64_t g_drain_us = 10'000'000;

int launch(void* arg) {
    return lcore_main(*static_cast<Lcore*>(arg), g_stop, g_drain_us, g_draining);
}

}  // namespace

std::vector<config::Diagnostic> unsupported_directives(const config::Config& cfg) {
    std::vector<config::Diagnostic> out;
    auto refuse = [&](const config::Location& loc, const std::string& what) {
        out.push_back(config::Diagnostic{config::Severity::kError, loc,
                                         what + " is valid but the dataplane does not implement it "
                                                "yet; remove it to start terminusd (terminusd -t "
                                                "accepts it)"});
    };
    // Parameters of implemented directives that are not implemented.
    for (const auto& s : cfg.servers) {
        for (const auto& l : s.listen) {
            if (l.proxy_protocol) refuse(l.loc, "\"listen ... proxy_protocol\"");
        }
    }
    for (const auto& u : cfg.upstreams) {
        std::string bad;
        if (u.method == config::BalanceMethod::kHash && !proxy::Balancer::key_supported(u.hash_key, bad)) {
            refuse(u.loc, "\"hash\" on " + bad + " (keys may use $remote_addr, $remote_port, "
                          "$binary_remote_addr, $server_addr and $server_port)");
        }
    }
    for (const auto& w : cfg.written) {
        bool done = false;
        for (auto name : kImplemented) done |= w.name == name;
        if (!done) refuse(w.loc, "\"" + w.name + "\"");
    }
    return out;
}

int run(const config::Config& cfg, const RunOptions& options) {
    const auto& dp = cfg.dataplane;
    EalPlan plan = plan_eal(dp, options.instance, free_hugepages());
    if (plan.no_huge) {
        log("no free hugepages: running on anonymous memory (--no-huge, %u MB)", plan.memory_mb);
    }
    std::string cmdline;
    for (const auto& a : plan.args) cmdline += (cmdline.empty() ? "" : " ") + a;
    log("EAL: %s", cmdline.c_str());
    std::vector<char*> argv;
    for (auto& a : plan.args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) < 0) {
        log("EAL initialisation failed: %s", rte_strerror(rte_errno));
        return 1;
    }

    const unsigned n_cores = rte_lcore_count();
    if (n_cores > kMaxCores || dp.ports.size() > kMaxPorts) {
        log("at most %u lcores and %u ports", kMaxCores, kMaxPorts);
        rte_eal_cleanup();
        return 1;
    }
    rte_mempool* pool = rte_pktmbuf_pool_create("terminus_mbufs", dp.mbufs, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE,
                                                static_cast<int>(rte_socket_id()));
    if (!pool) {
        log("cannot create a pool of %u mbufs: %s", dp.mbufs, rte_strerror(rte_errno));
        rte_eal_cleanup();
        return 1;
    }

    std::vector<PortInfo> ports(dp.ports.size());
    for (size_t i = 0; i < dp.ports.size(); ++i) {
        if (setup_port(dp.ports[i], n_cores, pool, ports[i]) != 0) {
            rte_eal_cleanup();
            return 1;
        }
    }

    // One context per lcore, in lcore order; rings for every ordered pair.
    std::unique_ptr<Lcore[]> lcores(new Lcore[n_cores]);
    unsigned idx = 0;
    unsigned lcore_id;
    RTE_LCORE_FOREACH(lcore_id) {
        Lcore& lc = lcores[idx];
        lc.index = idx;
        lc.lcore_id = lcore_id;
        lc.queue = static_cast<uint16_t>(idx);
        lc.n_cores = n_cores;
        lc.n_ports = static_cast<unsigned>(ports.size());
        lc.ports = ports.data();
        lc.pool = pool;
        lc.tsc_hz = rte_get_tsc_hz();
        lc.arp.set_timing({300 * lc.tsc_hz, lc.tsc_hz});
        ++idx;
    }
    for (unsigned i = 0; i < n_cores; ++i) {
        for (unsigned j = 0; j < n_cores; ++j) {
            if (i == j) continue;
            const std::string name = "tm_ring_" + std::to_string(i) + "_" + std::to_string(j);
            rte_ring* r = rte_ring_create(name.c_str(), 1024, static_cast<int>(rte_socket_id()),
                                          RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (!r) {
                log("cannot create ring %s: %s", name.c_str(), rte_strerror(rte_errno));
                rte_eal_cleanup();
                return 1;
            }
            lcores[i].to[j] = r;
            lcores[j].from[i] = r;
        }
    }
    log("%u lcores (main %u), %u mbufs, %zu port%s; flows are owned by the core their hash "
        "selects, others hand them over through %u rings",
        n_cores, rte_get_main_lcore(), dp.mbufs, ports.size(), ports.size() == 1 ? "" : "s",
        n_cores * (n_cores - 1));

    // TCP and the proxy on every core; one secret for ISNs and SYN cookies.
    tcp::SipKey secret;
    if (getrandom(&secret, sizeof secret, 0) != static_cast<ssize_t>(sizeof secret)) {
        log("cannot read random bytes for the TCP secret");
        rte_eal_cleanup();
        return 1;
    }
    uint64_t buffer = 64 * 1024;
    for (const auto& srv : cfg.servers) buffer = std::max(buffer, srv.settings.proxy_buffer_size);
    tcp::TcpParams tp;
    tp.mss = static_cast<uint16_t>(ports[0].mtu - 40);
    tp.rcv_buf = tp.snd_buf = static_cast<uint32_t>(std::min<uint64_t>(buffer, 1u << 24));
    tp.max_connections = std::max(64u, dp.max_connections / n_cores);
    tp.syncookies = dp.syncookies;
    tp.congestion = dp.tcp_congestion;
    std::vector<std::unique_ptr<LcoreOutput>> outputs;
    std::vector<std::unique_ptr<tcp::Stack>> stacks;
    std::vector<std::unique_ptr<proxy::Proxy>> proxies;
    // Connections and failures per upstream server, seen by every core.
    proxy::SharedUpstreams shared_upstreams(cfg);
    // TLS: what the cores share (ticket keys), then each core's contexts.
    bool any_tls = false;
    for (const auto& srv : cfg.servers) {
        for (const auto& l : srv.listen) any_tls |= l.ssl;
    }
    std::unique_ptr<tls::SharedTls> shared_tls;
    std::vector<std::unique_ptr<tls::CoreTls>> core_tls;
    if (any_tls) {
        auto sh = tls::SharedTls::create(cfg, n_cores);
        if (!sh) {
            log("TLS: %s", sh.error().c_str());
            rte_eal_cleanup();
            return 1;
        }
        shared_tls = std::move(*sh);
    }
    for (unsigned i = 0; i < n_cores; ++i) {
        outputs.push_back(std::make_unique<LcoreOutput>(lcores[i]));
        stacks.push_back(std::make_unique<tcp::Stack>(tp, pool, *outputs.back(), secret, ports[0].mac));
        if (any_tls) {
            auto ct = tls::CoreTls::create(cfg, *shared_tls, i);
            if (!ct) {
                log("TLS: %s", ct.error().c_str());
                rte_eal_cleanup();
                return 1;
            }
            core_tls.push_back(std::move(*ct));
        }
        proxies.push_back(std::make_unique<proxy::Proxy>(cfg, shared_upstreams, *stacks.back(), i, n_cores,
                                                         ports[0].ip, tp.max_connections / 2,
                                                         any_tls ? core_tls.back().get() : nullptr));
        proxies.back()->start();
        lcores[i].tcp = stacks.back().get();
        lcores[i].proxy = proxies.back().get();
    }
    log("TCP: MSS %u, %u-byte windows, %u connections per core, SYN cookies %s, %s",
        tp.mss, tp.rcv_buf, tp.max_connections,
        dp.syncookies == config::SynCookies::kOff ? "off" : dp.syncookies == config::SynCookies::kOn ? "when a backlog is full" : "always",
        config::to_string(dp.tcp_congestion));
    for (const auto& srv : cfg.servers) {
        for (const auto& l : srv.listen) {
            log("listening on %s:%u -> %s", l.address ? config::ipv4_to_string(l.address).c_str() : "*",
                l.port, srv.proxy_pass.value.c_str());
        }
    }

    auto stats = mgmt::StatsWriter::create(options.instance, stat_defs(cfg), n_cores, rte_get_tsc_hz());
    if (!stats) {
        log("%s", stats.error().c_str());
        rte_eal_cleanup();
        return 1;
    }
    for (unsigned i = 0; i < n_cores; ++i) lcores[i].stats = &*stats;
    log("statistics: %s (terminusctl stats --name %s)", mgmt::stats_path(options.instance).c_str(),
        options.instance.c_str());

    // Announce our addresses (gratuitous ARP, RFC 5227 2.4).
    for (unsigned p = 0; p < ports.size(); ++p) net::arp_request(lcores[0], p, ports[p].ip);

    struct sigaction sa{};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    for (unsigned i = 1; i < n_cores; ++i) {
        rte_eal_remote_launch(launch, &lcores[i], lcores[i].lcore_id);
    }
    g_drain_us = static_cast<uint64_t>(dp.shutdown_timeout.count()) * 1000;
    log("running; SIGTERM drains established sessions for %.3g s (shutdown_timeout)",
        static_cast<double>(g_drain_us) / 1e6);
    // The control thread (not an lcore): rotates the random session ticket
    // keys every mgmt { ticket_key_rotation }, keeping the previous key
    // for decryption; the lcores see the new key at their next ticket.
    std::atomic<bool> control_stop{false};
    std::thread control;
    if (shared_tls) {
        const uint64_t period_ms = static_cast<uint64_t>(cfg.mgmt.ticket_key_rotation.count());
        log("TLS: random session ticket keys shared by %u cores, rotated every %lu s", n_cores,
            static_cast<unsigned long>(period_ms / 1000));
        control = std::thread([&control_stop, period_ms, keys = shared_tls->random_keys.get()] {
            uint64_t waited_ms = 0;
            while (!control_stop.load(std::memory_order_relaxed)) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                waited_ms += 100;
                if (waited_ms >= period_ms) {
                    keys->rotate();
                    waited_ms = 0;
                }
            }
        });
    }
    launch(&lcores[0]);
    rte_eal_mp_wait_lcore();
    control_stop.store(true);
    if (control.joinable()) control.join();
    log("stopped: new connections refused, established ones given %.3g s to finish, the rest reset",
        static_cast<double>(g_drain_us) / 1e6);

    net::NetCounters total;
    for (unsigned i = 0; i < n_cores; ++i) {
#define TERMINUS_X(name, help) total.name += lcores[i].counters.name;
        TERMINUS_NET_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    }
#define TERMINUS_X(name, help) \
    if (total.name) log("  %-24s %12lu  %s", #name, static_cast<unsigned long>(total.name), help);
    TERMINUS_NET_COUNTERS(TERMINUS_X)
#undef TERMINUS_X

    tcp::TcpCounters tcp_total;
    proxy::ProxyCounters proxy_total;
    for (unsigned i = 0; i < n_cores; ++i) {
#define TERMINUS_X(name, help) tcp_total.name += stacks[i]->counters().name;
        TERMINUS_TCP_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(name, help) proxy_total.name += proxies[i]->counters().name;
        TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        proxy_total.sessions_active += proxies[i]->counters().sessions_active;
    }
#define TERMINUS_X(name, help) \
    if (tcp_total.name) log("  tcp_%-20s %12lu  %s", #name, static_cast<unsigned long>(tcp_total.name), help);
    TERMINUS_TCP_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(name, help) \
    if (proxy_total.name) log("  proxy_%-18s %12lu  %s", #name, static_cast<unsigned long>(proxy_total.name), help);
    TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    log("  %-24s %12lu  %s", "proxy_sessions_active", static_cast<unsigned long>(proxy_total.sessions_active),
        "sessions still open at exit");
    tls::TlsCounters tls_total;
    for (const auto& ct : core_tls) {
#define TERMINUS_X(name, help) tls_total.name += ct->counters.name;
        TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) tls_total.failed[f] += ct->counters.failed[f];
    }
#define TERMINUS_X(name, help) \
    if (tls_total.name) log("  tls_%-20s %12lu  %s", #name, static_cast<unsigned long>(tls_total.name), help);
    TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    // Failures per server block, as the statistics segment does not carry them yet.
    for (size_t srv = 0; srv < cfg.servers.size(); ++srv) {
        for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) {
            uint64_t n = 0;
            for (const auto& ct : core_tls) {
                if (const tls::ServerTls* st = ct->server(srv)) n += st->failed[f];
            }
            if (n) {
                log("  tls server at %s:%d: %lu handshakes failed: %s", cfg.servers[srv].loc.file.c_str(),
                    cfg.servers[srv].loc.line, static_cast<unsigned long>(n),
                    tls::to_string(static_cast<tls::Failure>(f)));
            }
        }
    }
    for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) {
        if (tls_total.failed[f]) {
            log("  tls_failed_%-13s %12lu  handshakes failed: %s", tls::to_string(static_cast<tls::Failure>(f)),
                static_cast<unsigned long>(tls_total.failed[f]), tls::to_string(static_cast<tls::Failure>(f)));
        }
    }
    proxies.clear();
    stacks.clear();

    for (const auto& p : ports) {
        rte_eth_dev_stop(p.port_id);
        rte_eth_dev_close(p.port_id);
    }
    rte_eal_cleanup();
    return 0;
}

}  // namespace terminus::dataplane
