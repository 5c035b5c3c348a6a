// Start-up and shut-down of the dataplane: EAL, mempool, ports, rings
// between cores, one Lcore context per core, the poll loops, and what the
// log says about each. The TLS session exchanges travel on the cores'
// message rings (messages.h) with the frames they hand over.
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

#include "dataplane/access_log.h"
#include "dataplane/control.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "dataplane/lcore.h"
#include "dataplane/messages.h"
#include "dataplane/net/packet.h"
#include "dataplane/proxy/health.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/publish.h"
#include "dataplane/runtime.h"
#include "mgmt/error_log.h"
#include "tls/upstream.h"

#include <sys/random.h>

namespace terminus::dataplane {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<unsigned> g_draining{0};

extern "C" void on_stop_signal(int) { g_stop.store(true, std::memory_order_relaxed); }
extern "C" void on_reload_signal(int) { Control::request_reload(); }
extern "C" void on_reopen_signal(int) {
    errlog::reopen();  // async-signal-safe: open, dup2, close
    Control::request_reopen();
}

#define log(...) log_as("terminusd", __VA_ARGS__)

// Directives the dataplane implements today; everything else written in
// the configuration is refused by name at start (never ignored).
constexpr std::string_view kImplemented[] = {
    "dataplane", "port", "lcores", "mbufs", "eal_args", "max_connections", "syncookies",
    "tcp_congestion", "stream", "upstream", "server", "listen", "proxy_pass", "least_conn",
    "hash", "random", "zone", "proxy_next_upstream", "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout", "proxy_buffer_size", "proxy_timeout",
    "proxy_connect_timeout", "proxy_half_close", "shutdown_timeout", "server_name",
    // Active health checks (proxy/health.h).
    "health_check", "match", "send", "expect",
    // TLS termination (tls/).
    "ssl_certificate", "ssl_certificate_key", "ssl_password_file", "ssl_protocols", "ssl_ciphers",
    "ssl_conf_command", "ssl_prefer_server_ciphers", "ssl_ecdh_curve", "ssl_dhparam",
    "ssl_session_cache", "ssl_session_timeout", "ssl_session_tickets", "ssl_session_ticket_key",
    "ssl_handshake_timeout", "ssl_verify_client", "ssl_verify_depth", "ssl_client_certificate",
    "ssl_trusted_certificate", "ssl_crl", "ssl_alpn", "ssl_stapling", "ssl_stapling_file",
    "ssl_reject_handshake",
    // Two sides per connection (proxy/transport.h): preread, maps, PROXY protocol.
    "ssl_preread", "preread_timeout", "preread_buffer_size", "map", "hostnames", "volatile", "default",
    "proxy_protocol", "proxy_protocol_version", "proxy_protocol_timeout", "set_real_ip_from",
    // TLS to upstreams (tls/upstream.h).
    "proxy_ssl", "proxy_ssl_certificate", "proxy_ssl_certificate_key", "proxy_ssl_password_file",
    "proxy_ssl_protocols", "proxy_ssl_ciphers", "proxy_ssl_conf_command", "proxy_ssl_verify",
    "proxy_ssl_verify_depth", "proxy_ssl_trusted_certificate", "proxy_ssl_crl", "proxy_ssl_server_name",
    "proxy_ssl_name", "proxy_ssl_session_reuse", "proxy_ssl_alpn",
    // Access rules (proxy/access.h), and return instead of proxy_pass.
    "allow", "deny", "return",
    // mgmt {}: the control socket (terminusd) and the metrics endpoint
    // (terminus-mgmtd, which reads the same file).
    "mgmt", "control", "metrics", "ticket_key_rotation",
    // limit_conn (proxy/limit_conn.h).
    "limit_conn_zone", "limit_conn", "limit_conn_dry_run", "limit_conn_log_level",
    // Logs: the error log (mgmt/error_log.h), the access log's rings
    // (access_log.h) that terminus-mgmtd writes out.
    "log_format", "access_log", "error_log", "access_log_buffer"};

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
    for (const auto& u : cfg.upstreams) {
        std::string bad;
        if (u.method == config::BalanceMethod::kHash && !proxy::Balancer::key_supported(u.hash_key, bad)) {
            refuse(u.loc, "\"hash\" on " + bad + " (keys may use $remote_addr, $remote_port, "
                          "$binary_remote_addr, $server_addr and $server_port)");
        }
    }
    for (const auto& srv : cfg.servers) {
        if (srv.settings.limit_conn.size() > proxy::Session::kMaxLimits) {
            refuse(srv.settings.limit_conn[proxy::Session::kMaxLimits].loc,
                   "more than " + std::to_string(proxy::Session::kMaxLimits) + " \"limit_conn\" in one server");
        }
    }
    // "crypto cryptodev:DEVICE": no record engine submits to a device yet
    // (OpenSSL does every record); running without it would be a silent
    // software fallback.
    if (cfg.dataplane.crypto == config::CryptoBackend::kCryptodev) {
        for (const auto& w : cfg.written) {
            if (w.name == "crypto") {
                refuse(w.loc, "\"crypto cryptodev:" + cfg.dataplane.crypto_device +
                                  "\" (OpenSSL protects every record today: write \"crypto openssl;\")");
            }
        }
    }
    for (auto& d : access_log_problems(cfg)) out.push_back(std::move(d));
    for (const auto& w : cfg.written) {
        bool done = false;
        for (auto name : kImplemented) done |= w.name == name;
        if (!done) refuse(w.loc, "\"" + w.name + "\"");
    }
    return out;
}

int run(const config::Config& cfg, const RunOptions& options) {
    const auto& dp = cfg.dataplane;
    // The main error_log, before anything else logs (EAL's lines too: its
    // file becomes stderr). Without one, stderr from info up, as always.
    errlog::set_program("terminusd");
    if (const std::string err = errlog::configure(errlog::main_of(cfg)); !err.empty()) {
        log("%s", err.c_str());
        return 1;
    }
    Runtime rt("terminusd");
    if (rt.start(dp, options.instance) != 0) return 1;
    const unsigned n_cores = rt.n_cores;
    rte_mempool* pool = rt.pool;
    std::vector<PortInfo>& ports = rt.ports;
    Lcore* lcores = rt.lcores.get();

    // TCP and the proxy on every core; one secret for ISNs and SYN cookies.
    tcp::SipKey secret;
    if (getrandom(&secret, sizeof secret, 0) != static_cast<ssize_t>(sizeof secret)) {
        log("cannot read random bytes for the TCP secret");
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
    std::vector<std::unique_ptr<tcp::Stack>> stacks;
    std::vector<std::unique_ptr<proxy::Proxy>> proxies;
    // What outlives configuration generations (generation.h): the random
    // ticket keys and both session exchanges, whose transports are the
    // message rings, wired before the cores start. They outlive the
    // generations too (declared first, freed last).
    tls::TlsCarry carry;
    carry.random_keys = tls::TicketKeys::random();
    std::unique_ptr<ExchangeMessages> session_messages, upstream_messages;
    std::vector<Mailbox*> mailboxes;
    for (unsigned i = 0; i < n_cores; ++i) mailboxes.push_back(&lcores[i].messages);
    if (n_cores > 1) {
        carry.sessions = std::make_shared<tls::SessionExchange>(n_cores);
        carry.upstream_sessions = std::make_shared<tls::SessionExchange>(n_cores);
        if (!carry.sessions->ok() || !carry.upstream_sessions->ok()) {
            log("TLS: cannot make the session exchanges' pools");
            return 1;
        }
        session_messages = std::make_unique<ExchangeMessages>(*carry.sessions, MessageKind::kSessionEntry,
                                                              mailboxes.data(), n_cores);
        upstream_messages = std::make_unique<ExchangeMessages>(*carry.upstream_sessions,
                                                               MessageKind::kUpstreamSession, mailboxes.data(),
                                                               n_cores);
    }
    for (unsigned i = 0; i < n_cores; ++i) {
        stacks.push_back(std::make_unique<tcp::Stack>(tp, pool, *rt.outputs[i], secret, ports[0].mac));
        proxies.push_back(std::make_unique<proxy::Proxy>(*stacks.back(), i, n_cores, ports[0].ip,
                                                         tp.max_connections / 2));
        lcores[i].tcp = stacks.back().get();
        lcores[i].proxy = proxies.back().get();
        lcores[i].app = proxies.back().get();
        add_default_pollers(lcores[i]);
        add_poller(lcores[i], {"proxy", [](Lcore&, void* p) { return static_cast<proxy::Proxy*>(p)->poll(); },
                               proxies.back().get(), Poller::Stage::kApplication});
    }
    // The access log's rings, one per core, whatever this configuration
    // logs (a reload may add an access_log); terminus-mgmtd drains them.
    auto access_log = AccessLogSegment::create(options.instance, n_cores, cfg.mgmt.access_log_buffer, rte_get_tsc_hz());
    if (access_log) {
        for (unsigned i = 0; i < n_cores; ++i) proxies[i]->set_access_log(&(*access_log)->ring(i));
        log("access log: %s, %u records of %zu bytes per core (mgmt { access_log_buffer %lu; }), drained by "
            "terminus-mgmtd",
            (*access_log)->path().c_str(), (*access_log)->records_per_ring() - 1, sizeof(mgmt::AccessRecord),
            static_cast<unsigned long>(cfg.mgmt.access_log_buffer));
    } else {
        errlog::write(config::LogLevel::kError, "%s: sessions are not logged", access_log.error().c_str());
    }
    // The first configuration generation, installed on every core before
    // they start; the control thread makes the next ones.
    GenerationBase base;
    base.n_cores = n_cores;
    for (auto& p : proxies) base.proxies.push_back(p.get());
    base.stack0 = stacks[0].get();
    base.now_us0 = &lcores[0].now_us;
    base.local_ip = ports[0].ip;
    base.carry = carry;
    base.instance = options.instance;
    base.tsc_hz = rte_get_tsc_hz();
    auto control = std::make_unique<Control>(base, lcores, rt.rings,
                                             options.config_path.empty() ? cfg.path : options.config_path);
    if (auto ok = control->start(std::make_shared<const config::Config>(cfg)); !ok) {
        log("%s", ok.error().c_str());
        return 1;
    }
    if (const proxy::HealthChecker* health = control->current()->health.get()) {
        log("health checks: %zu servers checked from core 0, up to %zu at once", health->targets(), health->probes());
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

    log("statistics: %s (terminusctl stats --name %s)", mgmt::stats_path(options.instance).c_str(),
        options.instance.c_str());

    // Announce our addresses (gratuitous ARP, RFC 5227 2.4).
    for (unsigned p = 0; p < ports.size(); ++p) net::arp_request(lcores[0], p, ports[p].ip);

    struct sigaction sa{};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, nullptr);
    sa.sa_handler = on_reopen_signal;
    sigaction(SIGUSR1, &sa, nullptr);

    g_drain_us = static_cast<uint64_t>(dp.shutdown_timeout.count()) * 1000;
    log("running; SIGTERM drains established sessions for %.3g s (shutdown_timeout), SIGHUP reloads %s",
        static_cast<double>(g_drain_us) / 1e6, cfg.path.c_str());
    log("TLS: random session ticket keys shared by %u cores, rotated every %lu s, kept across reloads", n_cores,
        static_cast<unsigned long>(cfg.mgmt.ticket_key_rotation.count() / 1000));
    errlog::started();
    // The control thread (not an lcore): reloads, the control socket,
    // ticket-key rotation, generations (control.h).
    std::atomic<bool> control_stop{false};
    std::thread control_thread([&control_stop, c = control.get()] { c->run(control_stop); });
    rt.run(launch);
    control_stop.store(true);
    control_thread.join();
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
    for (const auto& p : proxies) {
#define TERMINUS_X(name, help) tls_total.name += p->tls_counters().name;
        TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) tls_total.failed[f] += p->tls_counters().failed[f];
    }
    const auto& core_tls = control->current()->core_tls;
    const config::Config& last = *control->current()->cfg;
#define TERMINUS_X(name, help) \
    if (tls_total.name) log("  tls_%-20s %12lu  %s", #name, static_cast<unsigned long>(tls_total.name), help);
    TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    // Failures per server block of the generation last served.
    for (size_t srv = 0; srv < last.servers.size(); ++srv) {
        for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) {
            uint64_t n = 0;
            for (const auto& ct : core_tls) {
                if (const tls::ServerTls* st = ct->server(srv)) n += st->failed[f];
            }
            if (n) {
                log("  tls server at %s:%d: %lu handshakes failed: %s", last.servers[srv].loc.file.c_str(),
                    last.servers[srv].loc.line, static_cast<unsigned long>(n),
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
    // Sessions first (their TLS belongs to generations), then the
    // generations, then the stacks.
    proxies.clear();
    control.reset();
    stacks.clear();
    return 0;
}

}  // namespace terminus::dataplane
