#include "dataplane/publish.h"

#include <string_view>

#include "dataplane/proxy/balancer.h"
#include "dataplane/proxy/health.h"
#include "dataplane/proxy/proxy.h"
#include "tls/upstream.h"

namespace terminus::dataplane {

namespace {

bool is_loop(std::string_view name) { return name.substr(0, 5) == "loop_"; }

// What is shown of each upstream server (label server="GROUP/HOST:PORT"):
// its state, connections and passive failures, its health checks — six
// values, in the order stat_defs() names them and publish() writes them.
constexpr size_t kPerUpstreamServer = 6;

std::vector<std::string> peer_state_names() {
    std::vector<std::string> v;
#define TERMINUS_X(id, name) v.push_back(name);
    TERMINUS_PEER_STATES(TERMINUS_X)
#undef TERMINUS_X
    return v;
}

std::vector<std::string> check_result_names() {
    std::vector<std::string> v;
#define TERMINUS_X(id, name) v.push_back(name);
    TERMINUS_CHECK_RESULTS(TERMINUS_X)
#undef TERMINUS_X
    return v;
}

// The upstream servers proxy_ssl re-encrypts to, as "GROUP/ADDRESS:PORT"
// (or "ADDRESS:PORT" for proxy_pass ADDRESS:PORT), each with the keys its
// sessions and counts are kept under; in configuration order.
std::vector<std::pair<std::string, std::vector<tls::UpstreamKey>>> upstream_tls_peers(const config::Config& cfg) {
    std::vector<std::pair<std::string, std::vector<tls::UpstreamKey>>> out;
    auto add = [&](const std::string& where, const tls::UpstreamKey& k) {
        for (auto& e : out) {
            if (e.first == where) {
                e.second.push_back(k);
                return;
            }
        }
        out.push_back({where, {k}});
    };
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        const config::Server& srv = cfg.servers[i];
        if (!srv.settings.proxy_ssl) continue;
        const auto idx = static_cast<uint32_t>(i);
        if (srv.proxy_pass.kind == config::ProxyPass::Kind::kAddress && srv.proxy_pass.address) {
            add(config::ipv4_to_string(*srv.proxy_pass.address) + ":" + std::to_string(srv.proxy_pass.port),
                tls::UpstreamKey{idx, *srv.proxy_pass.address, srv.proxy_pass.port});
        } else if (const config::Upstream* u = srv.proxy_pass.kind == config::ProxyPass::Kind::kUpstream
                                                   ? cfg.find_upstream(srv.proxy_pass.upstream)
                                                   : nullptr) {
            for (const auto& us : u->servers) {
                if (!us.address) continue;
                add(u->name + "/" + config::ipv4_to_string(*us.address) + ":" + std::to_string(us.port),
                    tls::UpstreamKey{idx, *us.address, us.port});
            }
        }
    }
    return out;
}

// The same list for publish(), made once per core: it runs ten times a
// second and must not build strings each time.
const std::vector<std::pair<std::string, std::vector<tls::UpstreamKey>>>& upstream_tls_peers_once(
    const config::Config& cfg) {
    thread_local const config::Config* made_for = nullptr;
    thread_local std::vector<std::pair<std::string, std::vector<tls::UpstreamKey>>> peers;
    if (made_for != &cfg) {
        peers = upstream_tls_peers(cfg);
        made_for = &cfg;
    }
    return peers;
}

}  // namespace

std::vector<mgmt::StatDef> stat_defs(const config::Config& cfg) {
    using mgmt::StatKind;
    std::vector<mgmt::StatDef> d;
#define TERMINUS_X(name, help) \
    d.push_back({is_loop(#name) ? "loop" : "net", is_loop(#name) ? std::string(#name).substr(5) : #name, help, StatKind::kCounter});
    TERMINUS_NET_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(name, help) d.push_back({"tcp", #name, help, StatKind::kCounter});
    TERMINUS_TCP_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(id, label) \
    d.push_back({"tcp", std::string("conns_") + #id, "connections in " label, StatKind::kGauge});
    TERMINUS_TCP_STATES(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(name, help) d.push_back({"proxy", #name, help, StatKind::kCounter});
    TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    d.push_back({"proxy", "sessions_active", "sessions open now", StatKind::kGauge});
#define TERMINUS_X(name, help) d.push_back({"tls", #name, help, StatKind::kCounter});
    TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(name, help) d.push_back({"tls", "failed_" #name, help, StatKind::kCounter});
    TERMINUS_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
    d.push_back({"memory", "mbufs_in_use", "packet buffers in use (all cores)", StatKind::kGauge});
    d.push_back({"config", "generation",
                 "configuration generation new connections get on this core (each core reports its own)",
                 StatKind::kGauge});
    d.push_back({"config", "generations_retired",
                 "older generations this core still serves sessions of", StatKind::kGauge});
    // Per upstream server, before the TLS servers (whose rows a core
    // without TLS leaves out): core 0 reports them, the others 0.
    const auto states = peer_state_names();
    const auto results = check_result_names();
    for (const auto& u : cfg.upstreams) {
        for (const auto& srv : u.servers) {
            // The address, not the name: a name may stand for several.
            const std::string host = srv.address ? config::ipv4_to_string(*srv.address) : srv.host;
            const std::string where = u.name + "/" + host + ":" + std::to_string(srv.port);
            d.push_back({"upstream", "state",
                         "up; down (its server line); unavail (max_fails); unhealthy (health checks); checking",
                         StatKind::kState, "server", where, states});
            d.push_back({"upstream", "conns", "connections open to it (all cores)", StatKind::kGauge, "server", where});
            d.push_back({"upstream", "fails", "failed connects counted against max_fails", StatKind::kGauge, "server",
                         where});
            d.push_back({"upstream", "checks", "health checks done", StatKind::kCounter, "server", where});
            d.push_back({"upstream", "checks_failed", "health checks failed", StatKind::kCounter, "server", where});
            d.push_back({"upstream", "last_check", "how the last health check ended", StatKind::kState, "server",
                         where, results});
        }
    }
    // Per TLS server block: the servers CoreTls builds contexts for.
    for (const auto& srv : cfg.servers) {
        bool ssl = false;
        for (const auto& l : srv.listen) ssl |= l.ssl;
        if (!ssl) continue;
        const std::string where = srv.loc.file + ":" + std::to_string(srv.loc.line);
#define TERMINUS_X(name, help) \
    d.push_back({"tls_server", "failed_" #name, help, StatKind::kCounter, "server", where});
        TERMINUS_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
    }
    // TLS to upstreams (proxy_ssl): per core, then per upstream server
    // (group proxy_ssl_peer, label server="GROUP/ADDRESS:PORT", summed over the server blocks
    // that re-encrypt to it).
#define TERMINUS_X(name, help) d.push_back({"upstream_tls", #name, help, StatKind::kCounter});
    TERMINUS_UPSTREAM_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
#define TERMINUS_X(name, help) d.push_back({"upstream_tls", "failed_" #name, help, StatKind::kCounter});
    TERMINUS_UPSTREAM_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
    for (const auto& [where, keys] : upstream_tls_peers(cfg)) {
        (void)keys;
        d.push_back({"proxy_ssl_peer", "handshakes_full", "full handshakes with this upstream server",
                     StatKind::kCounter, "server", where});
        d.push_back({"proxy_ssl_peer", "handshakes_resumed",
                     "handshakes with this upstream server that resumed a session", StatKind::kCounter, "server",
                     where});
    }
    // Names as Prometheus likes them: "kEstablished" -> "established".
    for (auto& s : d) {
        if (s.name.rfind("conns_k", 0) == 0) {
            std::string n = "conns_";
            for (size_t i = 7; i < s.name.size(); ++i) {
                const char c = s.name[i];
                if (c >= 'A' && c <= 'Z') {
                    if (i > 7) n += '_';
                    n += static_cast<char>(c - 'A' + 'a');
                } else {
                    n += c;
                }
            }
            s.name = n;
        }
    }
    return d;
}

void publish(const Lcore& lc, mgmt::StatsWriter& w) {
    // Sized for many TLS server blocks; the writer takes what its
    // directory names.
    uint64_t v[4096];
    size_t n = 0;
#define TERMINUS_X(name, help) v[n++] = lc.counters.name;
    TERMINUS_NET_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    if (lc.tcp) {
        const tcp::TcpCounters& t = lc.tcp->counters();
#define TERMINUS_X(name, help) v[n++] = t.name;
        TERMINUS_TCP_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        for (unsigned s = 0; s < tcp::kNumTcpStates; ++s) v[n++] = t.state[s];
    } else {
#define TERMINUS_X(name, help) v[n++] = 0;
        TERMINUS_TCP_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        for (unsigned s = 0; s < tcp::kNumTcpStates; ++s) v[n++] = 0;
    }
    if (lc.proxy) {
        const proxy::ProxyCounters& p = lc.proxy->counters();
#define TERMINUS_X(name, help) v[n++] = p.name;
        TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        v[n++] = p.sessions_active;
    } else {
#define TERMINUS_X(name, help) v[n++] = 0;
        TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
        v[n++] = 0;
    }
    // The counts outlive generations: they are the proxy's, not a context's.
    const tls::TlsCounters none{};
    const tls::TlsCounters& t = lc.proxy ? lc.proxy->tls_counters() : none;
#define TERMINUS_X(name, help) v[n++] = t.name;
    TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) v[n++] = t.failed[f];
    // The pool is shared: core 0 reports it, the others 0, so sums hold.
    v[n++] = lc.index == 0 ? rte_mempool_in_use_count(lc.pool) : 0;
    v[n++] = lc.proxy && lc.proxy->current() ? lc.proxy->current()->generation : 0;
    v[n++] = lc.proxy ? lc.proxy->retired() : 0;
    if (lc.upstreams) {
        for (const auto& g : lc.upstreams->groups()) {
            const config::Upstream& u = *g.upstream;
            for (size_t i = 0; i < u.servers.size() && n + kPerUpstreamServer <= std::size(v); ++i) {
                if (lc.index != 0) {
                    for (size_t k = 0; k < kPerUpstreamServer; ++k) v[n++] = 0;
                    continue;
                }
                const proxy::SharedPeer& s = g.peers[i];
                v[n++] = 1 + static_cast<uint64_t>(proxy::peer_state(u, i, s, lc.now_us));
                v[n++] = s.conns.load(std::memory_order_relaxed);
                v[n++] = s.fails.load(std::memory_order_relaxed);
                v[n++] = s.checks.load(std::memory_order_relaxed);
                v[n++] = s.checks_failed.load(std::memory_order_relaxed);
                v[n++] = 1 + static_cast<uint64_t>(s.last_check.load(std::memory_order_relaxed));
            }
        }
    }
    if (const tls::CoreTls* core = lc.proxy ? lc.proxy->tls() : nullptr) {
        const size_t servers = core->config().servers.size();
        for (size_t i = 0; i < servers && n + static_cast<size_t>(tls::Failure::kCount) <= std::size(v); ++i) {
            const tls::ServerTls* st = core->server(i);
            if (!st) continue;
            for (size_t f = 0; f < static_cast<size_t>(tls::Failure::kCount); ++f) v[n++] = st->failed[f];
        }
    }
    const tls::UpstreamTls* up = lc.proxy ? lc.proxy->upstream_tls() : nullptr;
    const tls::UpstreamTlsCounters no_up{};
    const tls::UpstreamTlsCounters& ut = lc.proxy ? lc.proxy->upstream_tls_counters() : no_up;
#define TERMINUS_X(name, help) \
    if (n < std::size(v)) v[n++] = ut.name;
    TERMINUS_UPSTREAM_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    for (size_t f = 0; f < static_cast<size_t>(tls::UpstreamFailure::kCount) && n < std::size(v); ++f) {
        v[n++] = ut.failed[f];
    }
    if (lc.proxy) {
        for (const auto& [where, keys] : upstream_tls_peers_once(lc.proxy->config())) {
            uint64_t full = 0, resumed = 0;
            for (const auto& k : keys) {
                if (const tls::UpstreamPeer* p = up ? up->peer(k) : nullptr) {
                    full += p->handshakes_full;
                    resumed += p->handshakes_resumed;
                }
            }
            if (n + 2 > std::size(v)) break;
            v[n++] = full;
            v[n++] = resumed;
        }
    }
    w.publish(lc.index, v, n);
}

}  // namespace terminus::dataplane
