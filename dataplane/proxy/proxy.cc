#include "dataplane/proxy/proxy.h"

#include <openssl/x509.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "dataplane/flow.h"
#include "dataplane/proxy/access.h"
#include "dataplane/proxy/health.h"
#include "dataplane/proxy/proxy_protocol.h"

namespace terminus::dataplane::proxy {

namespace {
constexpr uint32_t kNoSession = UINT32_MAX;
// Handshake failures are logged at most this many times a second per
// core; the rest are counted (and the count of those not logged said).
constexpr unsigned kLogBurst = 10;
}

const char* stage_name(size_t stage) {
    static constexpr const char* kNames[] = {"proxy_header", "preread", "client_handshake",
                                             "connecting",   "upstream_handshake", "relay"};
    return stage < std::size(kNames) ? kNames[stage] : "?";
}

void Session::reset() {
    client.clear();
    upstream.clear();
    routes = nullptr;
    port = nullptr;
    listener = nullptr;
    balancer = nullptr;
    hello.clear();
    has_hello = false;
    has_proxy_header = false;
    pp_src_ip = pp_dst_ip = 0;
    pp_src_port = pp_dst_port = 0;
    pp_src_text[0] = pp_dst_text[0] = '\0';
    stage = Stage::kClientHandshake;
    parked = false;
    peer = -1;
    tried = 0;
    tries = 0;
    first_try_us = 0;
    upstream_up = false;
    closing = false;
    deferred = false;
    started_us = 0;
    bytes_to_upstream = bytes_to_client = 0;
    log = SessionLog{};
    n_limits = 0;
}

Proxy::Proxy(tcp::Stack& stack, unsigned core, unsigned n_cores, uint32_t local_ip, unsigned max_sessions)
    : stack_(stack),
      core_(core),
      n_cores_(n_cores),
      local_ip_(local_ip),
      sessions_(new Session[max_sessions]),
      n_sessions_(max_sessions),
      free_head_(max_sessions ? 0 : kNoSession) {
    parked_.reserve(max_sessions);
    retired_.reserve(16);  // a reload on the core allocates nothing more, usually
    async_ready_.cookies.reserve(max_sessions);
    deferred_.reserve(max_sessions);
    for (unsigned i = 0; i < max_sessions; ++i) {
        sessions_[i].next_free = i + 1 < max_sessions ? i + 1 : kNoSession;
    }
}

std::unique_ptr<Routes> Proxy::make_routes(uint32_t generation, std::shared_ptr<const config::Config> config,
                                           const SharedUpstreams& shared, tls::CoreTls* tls,
                                           tls::UpstreamTls* upstream_tls,
                                           const std::vector<LimitZone*>& zones) const {
    auto r = std::make_unique<Routes>();
    r->generation = generation;
    r->cfg = std::move(config);
    r->shared = &shared;
    r->tls = tls;
    r->upstream_tls = upstream_tls;
    const config::Config& cfg = *r->cfg;
    Proxy& self = const_cast<Proxy&>(*this);  // listeners keep the proxy they call back
    // Configuration was checked: what fails here is out of memory.
    if (auto m = Maps::build(cfg)) {
        r->maps = std::move(*m);
    } else {
        errlog::write(config::LogLevel::kError, "core %u: maps: %s", core_, m.error().c_str());
    }
    for (const auto& u : cfg.upstreams) {
        r->upstream_balancers.push_back(std::make_unique<Balancer>(u, shared.find(u.name)));
    }
    for (const auto& z : cfg.limit_conn_zones) {
        auto& k = r->limit_keys.emplace_back();
        if (auto e = Expression::compile(z.key, r->maps.get())) {
            k.emplace(std::move(*e));
        } else {
            errlog::write(config::LogLevel::kError, "core %u: limit_conn_zone %s: %s", core_, z.key.c_str(),
                          e.error().c_str());
        }
    }
    r->log_signature = mgmt::access_log_signature(cfg);
    // stream{}/server{} error_log: that server's sessions' messages go there.
    r->error_logs.assign(cfg.servers.size(), nullptr);
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        const auto& el = cfg.servers[i].settings.error_log;
        if (!el) continue;
        std::string why;
        r->error_logs[i] = errlog::target(*el, &why);
        if (!r->error_logs[i]) errlog::write(config::LogLevel::kError, "core %u: %s", core_, why.c_str());
    }
    std::vector<ServerListener*> by_server(cfg.servers.size(), nullptr);
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        const config::Server& srv = cfg.servers[i];
        auto l = std::make_unique<ServerListener>(self, srv);
        switch (srv.proxy_pass.kind) {
            case config::ProxyPass::Kind::kUpstream:
                for (size_t u = 0; u < cfg.upstreams.size(); ++u) {
                    if (cfg.upstreams[u].name == srv.proxy_pass.upstream) l->fixed = r->upstream_balancers[u].get();
                }
                break;
            case config::ProxyPass::Kind::kAddress:
                l->own = std::make_unique<Balancer>(srv.proxy_pass.address.value_or(0), srv.proxy_pass.port);
                l->fixed = l->own.get();
                break;
            case config::ProxyPass::Kind::kVariable:
                if (auto e = Expression::compile(srv.proxy_pass.value, r->maps.get())) {
                    l->target.emplace(std::move(*e));
                } else {
                    errlog::write(config::LogLevel::kError, "core %u: proxy_pass %s: %s", core_,
                                  srv.proxy_pass.value.c_str(), e.error().c_str());
                    continue;
                }
                break;
            case config::ProxyPass::Kind::kNone:
                if (!srv.return_value) continue;
                if (auto e = Expression::compile(*srv.return_value, r->maps.get())) {
                    l->ret.emplace(std::move(*e));
                } else {
                    errlog::write(config::LogLevel::kError, "core %u: return %s: %s", core_,
                                  srv.return_value->c_str(), e.error().c_str());
                    continue;
                }
                break;
        }
        for (const auto& lc : srv.settings.limit_conn) {
            for (size_t z = 0; z < cfg.limit_conn_zones.size() && z < zones.size(); ++z) {
                if (cfg.limit_conn_zones[z].name == lc.zone && r->limit_keys[z]) {
                    l->limits.push_back({zones[z], &*r->limit_keys[z], lc.number});
                }
            }
        }
        l->passthrough = srv.settings.ssl_preread;
        r->preread_cap = std::max<uint32_t>(r->preread_cap, static_cast<uint32_t>(std::min<uint64_t>(
                                                                srv.settings.preread_buffer_size, 1u << 20)));
        by_server[i] = l.get();
        r->listeners.push_back(std::move(l));
    }
    r->preread_cap = std::max<uint32_t>(r->preread_cap, pp::kMaxHeaderLen);
    // One TCP listener per address and port; the server blocks on it share
    // it (SNI tells them apart under TLS).
    for (auto& g : tls::listen_groups(cfg)) {
        unsigned backlog = 511;
        bool proxy_protocol = false;
        for (const auto& ls : cfg.servers[g.default_server].listen) {
            if (ls.address == g.address && ls.port == g.port) {
                backlog = static_cast<unsigned>(ls.backlog);
                proxy_protocol = ls.proxy_protocol;
            }
        }
        auto pl = std::make_unique<PortListener>(self, *r, std::move(g));
        pl->by_server = by_server;
        pl->proxy_protocol = proxy_protocol;
        pl->backlog = backlog;
        for (size_t i : pl->group.servers) pl->preread |= cfg.servers[i].settings.ssl_preread;
        r->ports.push_back(std::move(pl));
    }
    return r;
}

void Proxy::install(Routes* r) {
    if (r->preread_cap > preread_cap_) {
        preread_buf_.reset(new uint8_t[r->preread_cap]);
        preread_cap_ = r->preread_cap;
    }
    // The new ports take over their address and port (a handshake under
    // way is accepted by the new generation); the old ports that are gone
    // stop listening.
    for (auto& pl : r->ports) stack_.relisten(pl->group.address, pl->group.port, pl.get(), pl->backlog);
    if (Routes* old = current_) {
        for (auto& pl : old->ports) {
            bool kept = false;
            for (auto& np : r->ports) kept |= np->group.address == pl->group.address && np->group.port == pl->group.port;
            if (!kept) stack_.unlisten(pl->group.address, pl->group.port);
        }
        old->retired = true;
        if (old->health) old->health->stop();
        retired_.push_back(old);
    }
    current_ = r;
}

void Proxy::snapshot(SessionsSnapshot& out) const {
    out = SessionsSnapshot{};
    for (unsigned st = 0; st < tcp::kNumTcpStates; ++st) out.tcp_states[st] = stack_.counters().state[st];
    for (unsigned i = 0; i < n_sessions_; ++i) {
        const Session& s = sessions_[i];
        if (!s.in_use) continue;
        ++out.active;
        ++out.by_stage[static_cast<size_t>(s.stage)];
        const uint64_t bytes = s.bytes_to_upstream + s.bytes_to_client;
        // The largest kMaxTop, kept in descending order.
        size_t at = out.n_top;
        while (at > 0 && out.top[at - 1].bytes_to_upstream + out.top[at - 1].bytes_to_client < bytes) --at;
        if (at >= SessionsSnapshot::kMaxTop) continue;
        const size_t last = std::min<size_t>(out.n_top, SessionsSnapshot::kMaxTop - 1);
        for (size_t j = last; j > at; --j) out.top[j] = out.top[j - 1];
        if (out.n_top < SessionsSnapshot::kMaxTop) ++out.n_top;
        SessionsSnapshot::Top& t = out.top[at];
        t = SessionsSnapshot::Top{};
        if (s.client.conn) {
            t.client_ip = s.client.conn->tuple.remote_ip;
            t.client_port = s.client.conn->tuple.remote_port;
            t.local_port = s.client.conn->tuple.local_port;
        }
        if (s.upstream.conn) {
            t.upstream_ip = s.upstream.conn->tuple.remote_ip;
            t.upstream_port = s.upstream.conn->tuple.remote_port;
        }
        t.bytes_to_upstream = s.bytes_to_upstream;
        t.bytes_to_client = s.bytes_to_client;
        t.age_us = now_us_ - s.started_us;
        t.generation = s.routes ? s.routes->generation : 0;
        t.stage = static_cast<uint8_t>(s.stage);
        t.tls = std::holds_alternative<TlsServerTransport>(s.client.storage);
    }
}

Routes* Proxy::take_released() {
    for (size_t i = 0; i < retired_.size(); ++i) {
        Routes* r = retired_[i];
        if (r->sessions) continue;
        retired_.erase(retired_.begin() + static_cast<std::ptrdiff_t>(i));
        return r;
    }
    return nullptr;
}

Session* Proxy::alloc_session() {
    if (free_head_ == kNoSession) return nullptr;
    Session& s = sessions_[free_head_];
    free_head_ = s.next_free;
    const uint32_t next = s.next_free;
    s.reset();
    s.next_free = next;
    s.in_use = true;
    s.proxy = this;
    ++counters_.sessions_active;
    return &s;
}

void Proxy::free_session(Session& s) {
    // Only servers with an access_log make a record (nothing else is
    // done for the others).
    if (access_log_ && s.listener && !s.listener->server.settings.access_log.empty()) log_session(s);
    if (s.peer >= 0) s.balancer->release(s.peer);
    for (unsigned i = 0; i < s.n_limits; ++i) LimitZone::release(s.limit_slots[i]);
    s.n_limits = 0;
    if (s.routes) --s.routes->sessions;
    // Frees the SSLs and what OpenSSL held for them, and any decrypted
    // bytes not passed on.
    s.client.clear();
    s.upstream.clear();
    s.in_use = false;
    s.next_free = free_head_;
    free_head_ = static_cast<uint32_t>(&s - sessions_.get());
    --counters_.sessions_active;
}

void Proxy::stop_accepting() {
    stopping_ = true;
    stack_.close_listeners();
}

void Proxy::abort_all() {
    for (unsigned i = 0; i < n_sessions_; ++i) {
        Session& s = sessions_[i];
        if (!s.in_use) continue;
        if (s.client.conn) stack_.abort(*s.client.conn);
        if (s.in_use && s.upstream.conn) stack_.abort(*s.upstream.conn);
    }
}

tcp::Handler* PortListener::accept(tcp::Connection& c) {
    if (proxy.stopping_) return nullptr;  // a handshake that was under way
    ServerListener* first = by_server[group.default_server];
    if (!first) return nullptr;  // a server{} with nothing to proxy to
    Session* s = proxy.alloc_session();
    if (!s) {
        ++proxy.counters_.sessions_refused;
        if (proxy.access_log_ && !first->server.settings.access_log.empty()) proxy.log_refused(c, *this);
        return nullptr;
    }
    ++proxy.counters_.accepts;
    s->started_us = proxy.now_us_;
    s->log.client_ip = c.tuple.remote_ip;
    s->log.client_port = c.tuple.remote_port;
    s->log.local_ip = c.tuple.local_ip;
    s->log.local_port = c.tuple.local_port;
    // $connection: unique on the appliance (each core numbers its own).
    s->log.connection = proxy.counters_.accepts * proxy.n_cores_ + proxy.core_;
    s->routes = &routes;
    ++routes.sessions;
    s->port = this;
    s->listener = first;
    s->client.conn = &c;
    const config::Server& server = first->server;
    const auto idle = server.settings.proxy_timeout.count();
    if (idle > 0) proxy.stack_.set_idle_timeout(c, static_cast<uint64_t>(idle) * 1000);
    // so_keepalive of the listen this connection came in on; zeros are the
    // system defaults, as Linux has them (2 h, 75 s, 9 probes).
    for (const auto& l : server.listen) {
        if (l.port != c.tuple.local_port || (l.address && l.address != c.tuple.local_ip)) continue;
        if (l.so_keepalive.set && l.so_keepalive.on) {
            const uint64_t idle_s = l.so_keepalive.idle_s ? l.so_keepalive.idle_s : 7200;
            const uint64_t intvl_s = l.so_keepalive.interval_s ? l.so_keepalive.interval_s : 75;
            const uint32_t cnt = l.so_keepalive.count ? l.so_keepalive.count : 9;
            proxy.stack_.set_keepalive(c, idle_s * 1'000'000, intvl_s * 1'000'000,
                                       static_cast<uint8_t>(cnt));
        }
        break;
    }
    if (proxy_protocol) {
        s->stage = Session::Stage::kProxyHeader;
        const auto t = server.settings.proxy_protocol_timeout.count();
        if (t > 0) proxy.stack_.set_deadline(c, static_cast<uint64_t>(t) * 1000);
    } else {
        proxy.begin_client(*s);
    }
    return s;
}

bool Proxy::check_limit(Session& s) {
    const ServerListener& l = *s.listener;
    if (l.limits.empty()) return true;
    const config::ServerSettings& st = l.server.settings;
    const SessionVars vars = s.vars();
    for (const auto& lim : l.limits) {
        char key[256];
        const size_t n = std::min(lim.key->evaluate(vars, key, sizeof key), sizeof key);
        if (n == 0) continue;  // nginx: an empty key is not accounted
        std::atomic<uint64_t>* slot = nullptr;
        const LimitZone::Result r = lim.zone->acquire(std::string_view(key, n), lim.number, slot);
        if (r == LimitZone::Result::kCounted) {
            if (s.n_limits < Session::kMaxLimits) {
                s.limit_slots[s.n_limits++] = slot;
            } else {
                LimitZone::release(slot);  // refused at start: more than kMaxLimits
            }
            continue;
        }
        const config::LogLevel level = st.limit_conn_log_level;
        const errlog::Target& el = error_log(s, static_cast<size_t>(&l.server - s.routes->cfg->servers.data()));
        if (st.limit_conn_dry_run) {
            ++counters_.limit_conn_dry_run;
            if (el.enabled(level) && may_log(level)) {
                const tcp::FourTuple& t = s.client.conn->tuple;
                errlog::write(el, level, "limiting connections, dry run, by zone \"%s\", client %u.%u.%u.%u:%u",
                              lim.zone->name().c_str(), t.remote_ip >> 24, (t.remote_ip >> 16) & 255,
                              (t.remote_ip >> 8) & 255, t.remote_ip & 255, t.remote_port);
            }
            continue;
        }
        ++(r == LimitZone::Result::kFull ? counters_.limit_conn_zone_full : counters_.limit_conn_rejected);
        if (el.enabled(level) && may_log(level)) {
            const tcp::FourTuple& t = s.client.conn->tuple;
            errlog::write(el, level,
                          r == LimitZone::Result::kFull
                              ? "limit_conn zone \"%s\" has no room for a new key; %u.%u.%u.%u:%u closed"
                              : "limiting connections by zone \"%s\", client %u.%u.%u.%u:%u",
                          lim.zone->name().c_str(), t.remote_ip >> 24, (t.remote_ip >> 16) & 255,
                          (t.remote_ip >> 8) & 255, t.remote_ip & 255, t.remote_port);
        }
        s.log.fail(mgmt::SessionStatus::kServiceUnavailable);
        // nginx finalizes the session with 503: closed, nothing sent.
        tcp::Connection& c = *s.client.conn;
        stack_.skip(c, UINT32_MAX, now_us_);
        stack_.close(c, now_us_);
        return false;
    }
    return true;
}

bool Proxy::check_access(Session& s) {
    const auto& rules = s.listener->server.settings.access_rules;
    if (rules.empty()) return true;
    tcp::Connection& c = *s.client.conn;
    // A trusted PROXY header's source is the client (set_real_ip_from).
    const bool real = s.has_proxy_header && !s.listener->server.settings.set_real_ip_from.empty();
    if (access_allowed(rules, real ? s.pp_src_ip : c.tuple.remote_ip)) return true;
    // nginx finalizes the session: the connection is closed, nothing sent.
    ++counters_.access_denied;
    s.log.fail(mgmt::SessionStatus::kForbidden);
    stack_.skip(c, UINT32_MAX, now_us_);
    stack_.close(c, now_us_);
    return false;
}

void Proxy::begin_client(Session& s) {
    tcp::Connection& c = *s.client.conn;
    const config::Server& server = s.listener->server;
    if (s.port->preread) {
        // nginx arms preread_timeout once, when the preread starts.
        s.stage = Session::Stage::kPreread;
        const auto t = server.settings.preread_timeout.count();
        stack_.set_deadline(c, t > 0 ? static_cast<uint64_t>(t) * 1000 : 0);
        return;
    }
    if (s.port->group.ssl && s.routes->tls) {
        s.client.make<TlsServerTransport>(stack_, c, &now_us_, *s.routes->tls, s.port->group)
            .endpoint.notify_async(&async_ready_, index(s));
        s.stage = Session::Stage::kClientHandshake;
        // nginx's ssl_handshake_timeout bounds the whole handshake, however
        // slowly the client trickles it in.
        const auto hs = server.settings.ssl_handshake_timeout.count();
        stack_.set_deadline(c, hs > 0 ? static_cast<uint64_t>(hs) * 1000 : 0);
        return;
    }
    stack_.set_deadline(c, 0);
    s.client.make<PlainTransport>(stack_, c).now = &now_us_;
    s.stage = Session::Stage::kConnecting;
}

namespace {
bool in_prefixes(const std::vector<config::Ipv4Prefix>& list, uint32_t ip) {
    for (const auto& p : list) {
        if (p.contains(ip)) return true;
    }
    return false;
}

void format_ipv4(char (&out)[16], uint32_t ip) {
    std::snprintf(out, sizeof out, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}
}  // namespace

void Proxy::read_proxy_header(Session& s) {
    tcp::Connection& c = *s.client.conn;
    const config::ServerSettings& st = s.listener->server.settings;
    const uint32_t n = stack_.peek(c, 0, preread_buf_.get(), std::min<uint32_t>(c.rcvq.bytes, pp::kMaxHeaderLen));
    pp::Header h;
    const pp::Status status = pp::parse(preread_buf_.get(), n, h, pp::kMaxHeaderLen);
    if (status == pp::Status::kNeedMore) {
        if (!c.fin_received) return;
        ++counters_.proxy_header_invalid;
        s.log.fail(mgmt::SessionStatus::kBadRequest);
        stack_.skip(c, UINT32_MAX, now_us_);
        stack_.close(c, now_us_);
        return;
    }
    if (status == pp::Status::kInvalid) {
        ++counters_.proxy_header_invalid;
        s.log.fail(mgmt::SessionStatus::kBadRequest);
        stack_.abort(c);  // as nginx, which closes without a word
        return;
    }
    // With set_real_ip_from, only the senders it lists may speak for a
    // client: a header from another is refused, not silently believed or
    // silently ignored.
    if (!st.set_real_ip_from.empty() && !in_prefixes(st.set_real_ip_from, c.tuple.remote_ip)) {
        ++counters_.proxy_header_untrusted;
        s.log.fail(mgmt::SessionStatus::kBadRequest);
        stack_.abort(c);
        return;
    }
    ++counters_.proxy_headers;
    if (h.command == pp::Command::kProxy && h.family == pp::Family::kInet) {
        s.has_proxy_header = true;
        s.pp_src_ip = h.src.ip4;
        s.pp_src_port = h.src.port;
        s.pp_dst_ip = h.dst.ip4;
        s.pp_dst_port = h.dst.port;
        format_ipv4(s.pp_src_text, h.src.ip4);
        format_ipv4(s.pp_dst_text, h.dst.ip4);
    }
    stack_.skip(c, h.length, now_us_);
    if (!check_limit(s) || !check_access(s)) return;
    begin_client(s);
    // What followed the header in the same segments goes on now.
    if (!s.in_use || !s.client.conn) return;
    if (s.stage == Session::Stage::kConnecting) {
        connect_upstream(s);
    } else if (s.client.conn->rcvq.bytes > 0) {
        s.on_readable(*s.client.conn);
    }
}

void Proxy::preread(Session& s) {
    tcp::Connection& c = *s.client.conn;
    const config::ServerSettings& st = s.listener->server.settings;
    const uint32_t limit = std::min<uint32_t>(static_cast<uint32_t>(st.preread_buffer_size), preread_cap_);
    const uint32_t n = stack_.peek(c, 0, preread_buf_.get(), std::min(c.rcvq.bytes, limit));
    const PrereadStatus status = parse_client_hello(preread_buf_.get(), n, s.hello);
    switch (status) {
        case PrereadStatus::kNeedMore:
            if (n >= limit) {
                // nginx: "preread buffer full", and the session ends.
                ++counters_.preread_buffer_full;
                s.log.fail(mgmt::SessionStatus::kBadRequest);
                stack_.abort(c);
            } else if (c.fin_received) {
                // The client finished first: a FIN back, nothing to reset.
                ++counters_.preread_closed;
                stack_.skip(c, UINT32_MAX, now_us_);
                stack_.close(c, now_us_);
            }
            return;
        case PrereadStatus::kDone:
            ++counters_.preread_done;
            s.has_hello = true;
            break;
        case PrereadStatus::kNotTls:
            ++counters_.preread_not_tls;
            break;
        case PrereadStatus::kInvalid:
            ++counters_.preread_invalid;
            break;
    }
    // The server by SNI, as TLS would pick it; then terminate it here, or
    // pass the bytes through as they came (nothing was consumed).
    char sni[ClientHelloInfo::kMaxServerName + 1];
    const std::string_view name = s.hello.server_name();
    std::memcpy(sni, name.data(), name.size());
    sni[name.size()] = '\0';
    const size_t idx = tls::select_server(*s.routes->cfg, s.port->group, sni);
    ServerListener* chosen = s.port->by_server[idx];
    if (!chosen) {
        ++counters_.no_route;
        s.log.fail(mgmt::SessionStatus::kInternalError);
        stack_.abort(c);
        return;
    }
    s.listener = chosen;
    if (s.port->group.ssl && s.routes->tls && !chosen->passthrough) {
        s.client.make<TlsServerTransport>(stack_, c, &now_us_, *s.routes->tls, s.port->group)
            .endpoint.notify_async(&async_ready_, index(s));
        s.stage = Session::Stage::kClientHandshake;
        const auto hs = chosen->server.settings.ssl_handshake_timeout.count();
        stack_.set_deadline(c, hs > 0 ? static_cast<uint64_t>(hs) * 1000 : 0);
        handshake(s, s.client);
        return;
    }
    stack_.set_deadline(c, 0);
    if (status == PrereadStatus::kDone) ++counters_.passthrough;
    const auto idle = chosen->server.settings.proxy_timeout.count();
    stack_.set_idle_timeout(c, idle > 0 ? static_cast<uint64_t>(idle) * 1000 : 0);
    s.client.make<PlainTransport>(stack_, c).now = &now_us_;
    s.stage = Session::Stage::kConnecting;
    connect_upstream(s);
}

SessionVars Session::vars() const {
    SessionVars v;
    if (client.conn) {
        v.remote_addr = client.conn->tuple.remote_ip;
        v.remote_port = client.conn->tuple.remote_port;
        v.server_addr = client.conn->tuple.local_ip;
        v.server_port = client.conn->tuple.local_port;
    }
    if (has_hello) v.preread = &hello;
    if (has_proxy_header) {
        v.has_proxy_protocol = true;
        v.proxy_protocol_addr = pp_src_text;
        v.proxy_protocol_port = pp_src_port;
        v.proxy_protocol_server_addr = pp_dst_text;
        v.proxy_protocol_server_port = pp_dst_port;
        // set_real_ip_from trusted the sender: the client is who the
        // header says (nginx's realip module).
        if (!listener->server.settings.set_real_ip_from.empty()) {
            v.remote_addr = pp_src_ip;
            v.remote_port = pp_src_port;
        }
    }
    if (const auto* t = std::get_if<TlsServerTransport>(&client.storage)) v.ssl_server_name = t->endpoint.sni();
    return v;
}

bool Proxy::route(Session& s) {
    ServerListener& l = *s.listener;
    if (l.fixed) {
        s.balancer = l.fixed;
        return true;
    }
    if (!l.target) return false;
    char buf[256];
    const size_t n = l.target->evaluate(s.vars(), buf, sizeof buf - 1);
    const std::string_view v(buf, std::min(n, sizeof buf - 1));
    // An upstream group of that name, as nginx looks first...
    Routes& r = *s.routes;
    for (size_t u = 0; u < r.cfg->upstreams.size(); ++u) {
        if (r.cfg->upstreams[u].name == v) {
            s.balancer = r.upstream_balancers[u].get();
            return true;
        }
    }
    // ...then ADDRESS:PORT (names would need a resolver, which the
    // dataplane does not have).
    const size_t colon = v.rfind(':');
    if (colon == std::string_view::npos) return false;
    auto ip = config::parse_ipv4(v.substr(0, colon));
    unsigned port = 0;
    const std::string_view ps = v.substr(colon + 1);
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (!ip || ec != std::errc() || p != ps.data() + ps.size() || port == 0 || port > 65535) return false;
    for (auto& b : r.address_balancers) {
        if (b->peer(0).addr == *ip && b->peer(0).port == port) {
            s.balancer = b.get();
            return true;
        }
    }
    if (r.address_balancers.size() >= kMaxAddressBalancers) return false;
    r.address_balancers.push_back(std::make_unique<Balancer>(*ip, static_cast<uint16_t>(port)));
    s.balancer = r.address_balancers.back().get();
    return true;
}

uint16_t Proxy::pick_local_port(uint32_t remote_ip, uint16_t remote_port) {
    // Linux's default ephemeral range.
    return dataplane::pick_local_port(next_port_, 32768, 60999, local_ip_, remote_ip, remote_port, core_, n_cores_);
}

namespace {
FlowKey flow_key(const Session& s) {
    if (!s.client.conn) return FlowKey{};
    const tcp::FourTuple& t = s.client.conn->tuple;
    return FlowKey{t.remote_ip, t.remote_port, t.local_ip, t.local_port};
}
}  // namespace

void Proxy::serve_return(Session& s) {
    // nginx's return module: the value (with its variables), then the
    // session ends; over TLS, the value and a close_notify.
    char buf[8192];
    const size_t n = s.listener->ret->evaluate(s.vars(), buf, sizeof buf);
    tcp::Connection& c = *s.client.conn;
    ++counters_.returns;
    s.bytes_to_client += n;  // $bytes_sent
    if (TlsServerTransport* t = s.client_tls()) {
        t->endpoint.write(buf, static_cast<uint32_t>(n));
        t->endpoint.shutdown();
    } else {
        stack_.write(c, buf, static_cast<uint32_t>(n), now_us_);
    }
    // What the client sent is not read (nginx does not either); the FIN
    // follows the value.
    stack_.skip(c, UINT32_MAX, now_us_);
    stack_.close(c, now_us_);
}

void Proxy::connect_upstream(Session& s) {
    if (s.listener->ret) {
        serve_return(s);
        return;
    }
    const config::ServerSettings& st = s.listener->server.settings;
    if (!s.balancer && !route(s)) {
        ++counters_.no_route;
        s.log.fail(mgmt::SessionStatus::kBadGateway);
        if (s.client.conn) stack_.abort(*s.client.conn);
        return;
    }
    Balancer& b = *s.balancer;
    for (;;) {
        const bool limit_tries = st.proxy_next_upstream_tries && s.tries >= st.proxy_next_upstream_tries;
        const bool limit_time = st.proxy_next_upstream_timeout.count() &&
                                now_us_ - s.first_try_us >= static_cast<uint64_t>(st.proxy_next_upstream_timeout.count()) * 1000;
        int peer = (s.tries > 0 && (!st.proxy_next_upstream || limit_tries || limit_time))
                       ? -1
                       : b.pick(now_us_, flow_key(s), s.tried);
        if (peer < 0) {
            ++counters_.no_live_upstream;
            s.log.fail(mgmt::SessionStatus::kBadGateway);
            if (s.client.conn) stack_.abort(*s.client.conn);  // closes the client at once
            return;
        }
        if (s.tries == 0) s.first_try_us = now_us_;
        if (s.tries > 0) ++counters_.next_upstream;
        ++s.tries;
        s.tried |= uint64_t{1} << (static_cast<unsigned>(peer) & 63);
        s.peer = peer;
        const Peer& p = b.peer(peer);
        const uint16_t lport = pick_local_port(p.addr, p.port);
        const uint64_t connect_us = static_cast<uint64_t>(st.proxy_connect_timeout.count()) * 1000;
        tcp::Connection* c = lport ? stack_.connect(tcp::FourTuple{local_ip_, p.addr, lport, p.port}, &s,
                                                    now_us_, connect_us)
                                   : nullptr;
        if (c) {
            s.log.attempt(p.addr, p.port, now_us_ - s.started_us);
            ++counters_.upstream_connects;
            s.upstream.conn = c;
            s.stage = Session::Stage::kConnecting;
            return;
        }
        ++counters_.no_local_port;
        b.release(peer);
        s.peer = -1;
    }
}

void Proxy::park(Session& s) {
    if (s.parked) return;
    s.parked = true;
    parked_.push_back(index(s));
}

void Proxy::handshake(Session& s, Side& side) {
    if (!side.t || !side.conn || s.parked) return;
    const Transport::Step st = side.t->handshake();
    if (st == Transport::Step::kAgain) {
        // A parked step whose operation calls back waits for that
        // (poll() finds its cookie); one that does not is retried every
        // turn of the loop.
        bool parked = false, callback = false;
        if (const auto* t = std::get_if<TlsServerTransport>(&side.storage)) {
            parked = t->endpoint.parked();
            callback = t->endpoint.parked_with_callback();
        } else if (const auto* t = std::get_if<TlsClientTransport>(&side.storage)) {
            parked = t->endpoint.parked();
        }
        if (callback) {
            s.parked = true;
        } else if (parked) {
            park(s);
        }
        return;
    }
    if (st == Transport::Step::kDone) {
        if (&side == &s.client) {
            client_handshake_done(s);
        } else {
            upstream_ready(s);
        }
        return;
    }
    // The alert (if any) is queued: drop what the peer still sent and
    // close with a FIN behind it.
    if (&side == &s.client) {
        s.log.fail(mgmt::SessionStatus::kInternalError);  // nginx's status for a failed handshake
        log_tls_failure(s);
    } else {
        s.log.fail(mgmt::SessionStatus::kBadGateway);
        log_upstream_tls_failure(s);
    }
    side_failed(s, side, true);
}

void Proxy::client_handshake_done(Session& s) {
    TlsServerTransport& tls = *s.client_tls();
    stack_.set_deadline(*s.client.conn, 0);
    ServerListener* chosen = s.port->by_server[tls.endpoint.server()];
    if (!chosen) {
        s.log.fail(mgmt::SessionStatus::kInternalError);
        tls.endpoint.fail(tls::Failure::k_internal);
        log_tls_failure(s);
        side_failed(s, s.client, true);
        return;
    }
    s.listener = chosen;
    const auto idle = chosen->server.settings.proxy_timeout.count();
    stack_.set_idle_timeout(*s.client.conn, idle > 0 ? static_cast<uint64_t>(idle) * 1000 : 0);
    connect_upstream(s);
}

void Proxy::upstream_ready(Session& s) {
    // Bytes flow both ways from here: what the client sent meanwhile
    // first.
    if (s.stage == Session::Stage::kUpstreamHandshake && s.upstream.conn) stack_.set_deadline(*s.upstream.conn, 0);
    s.log.ready(now_us_ - s.started_us);  // $upstream_connect_time: TCP, PROXY header and TLS, as nginx
    s.stage = Session::Stage::kRelay;
    relay_both(s);
}

void Proxy::relay_both(Session& s) {
    if (s.stage != Session::Stage::kRelay) return;
    if (s.client.conn && s.upstream.conn) relay(s, s.client, s.upstream);
    if (s.in_use && s.client.conn && s.upstream.conn && s.stage == Session::Stage::kRelay) {
        relay(s, s.upstream, s.client);
    }
}

bool Proxy::may_log(config::LogLevel level) {
    // Handshake failures, the clients' and the upstreams', and limit_conn's
    // refusals are logged at most kLogBurst times a second per core (the
    // callers ask only for what their error log's level lets through);
    // the rest are counted, and how many were not logged is said when the
    // next second starts.
    if (now_us_ - log_window_us_ >= 1'000'000) {
        if (log_suppressed_) {
            errlog::write(log_suppressed_level_, "core %u: %lu more failures not logged (at most %u a second)", core_,
                          static_cast<unsigned long>(log_suppressed_), kLogBurst);
        }
        log_window_us_ = now_us_;
        logged_ = 0;
        log_suppressed_ = 0;
        log_suppressed_level_ = config::LogLevel::kDebug;
    }
    if (logged_ >= kLogBurst) {
        ++log_suppressed_;
        log_suppressed_level_ = std::max(log_suppressed_level_, level);
        return false;
    }
    ++logged_;
    return true;
}

const errlog::Target& Proxy::error_log(const Session& s, size_t server) const {
    const auto& logs = s.routes->error_logs;
    return server < logs.size() && logs[server] ? *logs[server] : errlog::main_target();
}

void Proxy::log_tls_failure(Session& s) {
    const TlsServerTransport* tls = s.client_tls();
    if (!tls || !s.client.conn) return;
    // Clients cause most failures: info, as nginx logs them.
    const errlog::Target& el = error_log(s, tls->endpoint.server());
    if (!el.enabled(config::LogLevel::kInfo) || !may_log(config::LogLevel::kInfo)) return;
    const tcp::FourTuple& t = s.client.conn->tuple;
    const config::Location& where = s.routes->cfg->servers[tls->endpoint.server()].loc;
    errlog::write(el, config::LogLevel::kInfo,
                  "TLS handshake failed (%s) from %u.%u.%u.%u:%u, SNI \"%s\", server at %s:%d",
                  tls::to_string(tls->endpoint.failure()), t.remote_ip >> 24, (t.remote_ip >> 16) & 255,
                  (t.remote_ip >> 8) & 255, t.remote_ip & 255, t.remote_port, tls->endpoint.sni().c_str(),
                  where.file.c_str(), where.line);
}

void Proxy::log_session(Session& s) {
    mgmt::AccessRecord r;
    fill_record(s, *access_log_, now_us_, r);
    if (!access_log_->push(r, now_us_)) ++counters_.access_log_dropped;
}

void Proxy::log_refused(const tcp::Connection& c, PortListener& pl) {
    // No session to fill it from: the connection and the default server.
    mgmt::AccessRecord r{};
    const Routes& routes = pl.routes;
    const size_t server = pl.group.default_server;
    r.magic = mgmt::kAccessRecordMagic;
    r.generation = routes.generation;
    r.config = routes.log_signature;
    r.start_us = r.end_us = access_log_->wall_us(now_us_);
    r.connection = (counters_.accepts + 1) * n_cores_ + core_;
    r.remote_addr = c.tuple.remote_ip;
    r.remote_port = c.tuple.remote_port;
    r.server_addr = c.tuple.local_ip;
    r.server_port = c.tuple.local_port;
    r.server = static_cast<uint16_t>(server);
    const size_t n_logs = std::min<size_t>(routes.cfg->servers[server].settings.access_log.size(),
                                           mgmt::kMaxAccessLogsPerServer);
    r.logs = static_cast<uint16_t>((1u << n_logs) - 1);
    r.status = static_cast<uint16_t>(mgmt::SessionStatus::kServiceUnavailable);
    r.core = static_cast<uint8_t>(core_);
    if (pl.preread) r.flags |= mgmt::kRecordPrereadRan;
    if (!access_log_->push(r, now_us_)) ++counters_.access_log_dropped;
}

bool Proxy::poll() {
    // Session-cache entries from the other cores, then parked handshakes.
    // Progress is what the busy-cycle count measures: a handshake retried
    // and still parked is not progress, one that moved on (or a session
    // that went away) is.
    // The exchanges carry the current generation's entries only.
    bool progress = current_ && current_->tls && current_->tls->poll();
    if (current_ && current_->upstream_tls && current_->upstream_tls->poll()) progress = true;
    // Short records held back during the rx burst leave now, with what
    // the rest of the burst added to them.
    if (!deferred_.empty()) {
        flushing_ = true;
        for (uint32_t i : deferred_) {
            Session& s = sessions_[i];
            s.deferred = false;
            if (s.in_use && s.stage == Session::Stage::kRelay) relay_both(s);
        }
        deferred_.clear();
        flushing_ = false;
        progress = true;
    }
    // Handshakes whose offloaded operation called back.
    if (!async_ready_.cookies.empty()) {
        for (size_t i = 0; i < async_ready_.cookies.size(); ++i) {
            const uint32_t idx = async_ready_.cookies[i];
            if (idx >= n_sessions_) continue;
            Session& s = sessions_[idx];
            if (!s.in_use || !s.parked) continue;  // gone, or not waiting any more
            s.parked = false;
            handshake(s, s.stage == Session::Stage::kUpstreamHandshake ? s.upstream : s.client);
        }
        async_ready_.cookies.clear();
        progress = true;
    }
    if (parked_.empty()) return progress;
    size_t keep = 0;
    const size_t n = parked_.size();
    for (size_t i = 0; i < n; ++i) {
        Session& s = sessions_[parked_[i]];
        if (!s.in_use || !s.parked) {
            progress = true;
            continue;
        }
        s.parked = false;
        Side& side = s.stage == Session::Stage::kUpstreamHandshake ? s.upstream : s.client;
        handshake(s, side);
        if (s.in_use && s.parked) {
            parked_[keep++] = parked_[i];
        } else {
            progress = true;
        }
    }
    parked_.resize(keep);
    return progress;
}

void Proxy::relay(Session& s, Side& from, Side& to) {
    if (!from.t || !to.t || !from.conn) return;
    if (s.closing && to.conn && to.conn->fin_queued) {
        // proxy_half_close off and this side is closed to its peer already:
        // what still arrives has nowhere to go (nginx closes the socket).
        stack_.skip(*from.conn, UINT32_MAX, now_us_);
        return;
    }
    const Transport::Recv got = from.t->fill(to.t->room());
    uint32_t moved = 0;
    Transport::Sent sent = Transport::Sent::kOk;
    if (from.t->pending().bytes > 0) {
        Transport::SendHints h;
        h.now_us = now_us_;
        h.flushing = flushing_;
        h.source_done = got != Transport::Recv::kOk;
        sent = to.t->send(*from.t, h, moved);
    }
    if (&from == &s.client) {
        counters_.bytes_to_upstream += moved;
        s.bytes_to_upstream += moved;
    } else {
        counters_.bytes_to_client += moved;
        s.bytes_to_client += moved;
    }
    if (to.t->kind() == Transport::Kind::kTlsServer) {
        auto& tt = *static_cast<TlsTransport*>(to.t);
        tls_counters_.records_encrypted += tt.records;
        tt.records = 0;
    }
    if (sent == Transport::Sent::kDefer && !s.deferred) {
        s.deferred = true;
        deferred_.push_back(static_cast<uint32_t>(&s - sessions_.get()));
    }
    if (sent == Transport::Sent::kFailed) {
        side_failed(s, to, false);
        return;
    }
    switch (got) {
        case Transport::Recv::kOk:
        case Transport::Recv::kEnd:
            break;
        case Transport::Recv::kAlerted:
            // Nothing of the bad record reaches the other side.
            side_failed(s, from, true);
            return;
        case Transport::Recv::kFailed:
            side_failed(s, from, false);
            return;
    }
    // The sender finished and everything it sent is passed on: pass its
    // end on.
    if (from.t->drained()) finished(s, from, to);
}

void Proxy::side_failed(Session& s, Side& side, bool alerted) {
    // A connection whose close is being reported has no handler any
    // more: it must not be closed again from inside that report.
    if (!side.conn || !side.conn->handler) return;
    Side& other = s.other(side);
    if (alerted) {
        // The alert is queued: drop what the peer still sends and close
        // with a FIN behind it; the other side ends with a FIN too.
        stack_.skip(*side.conn, UINT32_MAX, now_us_);
        if (other.conn && other.conn->handler) stack_.close(*other.conn, now_us_);
        if (side.conn && side.conn->handler) stack_.close(*side.conn, now_us_);
        return;
    }
    stack_.abort(*side.conn);
}

void Proxy::finished(Session& s, Side& from, Side& to) {
    if (!to.conn || to.conn->fin_queued) return;
    to.t->finish(now_us_);
    // proxy_half_close off (nginx's default): the session ends when
    // either side finishes, so the other direction closes too.
    if (!s.listener->server.settings.proxy_half_close && from.conn && !from.conn->fin_queued) {
        s.closing = true;
        from.t->finish(now_us_);
    }
}

void Proxy::send_proxy_header(Session& s) {
    // proxy_protocol on: the client's addresses (as the PROXY header we
    // read said them, when its sender is trusted) before any byte of the
    // stream — before our TLS to the upstream, as HAProxy sends it.
    tcp::Connection& up = *s.upstream.conn;
    pp::Endpoints e;
    const SessionVars v = s.vars();
    e.src_ip = v.remote_addr;
    e.src_port = v.remote_port;
    e.dst_ip = v.server_addr;
    e.dst_port = v.server_port;
    if (s.has_proxy_header && !s.listener->server.settings.set_real_ip_from.empty()) {
        e.dst_ip = s.pp_dst_ip;
        e.dst_port = s.pp_dst_port;
    }
    uint8_t buf[512];
    size_t n = 0;
    if (s.listener->server.settings.proxy_protocol_version == 2) {
        pp::V2Tlvs t;
        pp::TlsInfo info;
        char cn[256];
        const TlsServerTransport* tls = s.client_tls();
        std::string_view sni = v.ssl_server_name;
        if (sni.empty() && s.has_hello) sni = s.hello.server_name();
        t.authority = sni;
        if (tls && tls->established()) {
            SSL* ssl = tls->endpoint.ssl();
            const unsigned char* alpn = nullptr;
            unsigned alpn_len = 0;
            SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
            if (alpn) t.alpn = std::string_view(reinterpret_cast<const char*>(alpn), alpn_len);
            info.version = SSL_get_version(ssl);
            if (const char* c = SSL_get_cipher_name(ssl)) info.cipher = c;
            if (X509* peer = SSL_get0_peer_certificate(ssl)) {
                info.cert_conn = !SSL_session_reused(ssl);
                info.cert_sess = true;
                info.verify = static_cast<uint32_t>(SSL_get_verify_result(ssl));
                const int len = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn,
                                                          sizeof cn);
                if (len > 0) info.cn = std::string_view(cn, static_cast<size_t>(len));
            }
            t.tls = &info;
        }
        n = pp::write_v2(buf, sizeof buf, e, t);
    } else {
        n = pp::write_v1(buf, sizeof buf, e);
    }
    if (n && stack_.write(up, buf, static_cast<uint32_t>(n), now_us_) == n) ++counters_.proxy_headers_sent;
}

void Proxy::start_upstream_tls(Session& s) {
    // proxy_ssl: the name verified (and sent as SNI under
    // proxy_ssl_server_name) is proxy_ssl_name, else proxy_pass's host,
    // as in nginx: for "proxy_pass NAME;" the upstream group's name.
    const config::Server& srv = s.listener->server;
    const config::ServerSettings& st = srv.settings;
    std::string_view name = st.proxy_ssl_name;
    if (name.empty()) {
        switch (srv.proxy_pass.kind) {
            case config::ProxyPass::Kind::kUpstream: name = srv.proxy_pass.upstream; break;
            case config::ProxyPass::Kind::kAddress: name = srv.proxy_pass.host; break;
            default: name = srv.proxy_pass.value; break;
        }
    }
    // The client's ALPN protocol goes on to the upstream (else
    // proxy_ssl_alpn's).
    std::string_view alpn;
    if (const TlsServerTransport* c = s.client_tls(); c && c->established()) {
        const unsigned char* p = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(c->endpoint.ssl(), &p, &len);
        if (p) alpn = std::string_view(reinterpret_cast<const char*>(p), len);
    }
    const Peer& peer = s.balancer->peer(s.peer);
    const tls::UpstreamKey key{static_cast<uint32_t>(&srv - s.routes->cfg->servers.data()), peer.addr, peer.port};
    s.upstream.make<TlsClientTransport>(stack_, *s.upstream.conn, &now_us_, *s.routes->upstream_tls, key, name,
                                        alpn);
    s.stage = Session::Stage::kUpstreamHandshake;
    // nginx bounds the upstream's handshake by proxy_connect_timeout.
    const auto t = st.proxy_connect_timeout.count();
    if (t > 0) stack_.set_deadline(*s.upstream.conn, static_cast<uint64_t>(t) * 1000);
    handshake(s, s.upstream);
}

void Proxy::log_upstream_tls_failure(Session& s) {
    const auto* t = std::get_if<TlsClientTransport>(&s.upstream.storage);
    if (!t || !s.upstream.conn) return;
    const errlog::Target& el =
        error_log(s, static_cast<size_t>(&s.listener->server - s.routes->cfg->servers.data()));
    if (!el.enabled(config::LogLevel::kError) || !may_log(config::LogLevel::kError)) return;
    const tcp::FourTuple& u = s.upstream.conn->tuple;
    const char* why = t->endpoint.failed() ? tls::to_string(t->endpoint.failure()) : "internal";
    const char* verify = t->endpoint.verify_error();
    const std::string name(t->endpoint.name());
    // Our side's configuration or the upstream's certificate: an error,
    // as nginx logs upstream SSL handshake failures.
    errlog::write(el, config::LogLevel::kError,
                  "upstream TLS handshake with %u.%u.%u.%u:%u failed (%s%s%s), name \"%s\", server at %s:%d; the "
                  "client is closed",
                  u.remote_ip >> 24, (u.remote_ip >> 16) & 255, (u.remote_ip >> 8) & 255, u.remote_ip & 255,
                  u.remote_port, why, verify ? ": " : "", verify ? verify : "", name.c_str(),
                  s.listener->server.loc.file.c_str(), s.listener->server.loc.line);
}

void Proxy::finish_if_done(Session& s) {
    // A close may run inside another close's callback: free once.
    if (s.in_use && !s.client.conn && !s.upstream.conn) free_session(s);
}

void Session::on_established(tcp::Connection& c) {
    Proxy& p = *proxy;
    if (&c == client.conn) {
        // The access phase; with a PROXY header it comes once that is read.
        if (stage != Stage::kProxyHeader && (!p.check_limit(*this) || !p.check_access(*this))) return;
        switch (stage) {
            case Stage::kProxyHeader:
            case Stage::kPreread:
                return;  // the first bytes decide
            case Stage::kClientHandshake:
                p.handshake(*this, client);  // the upstream waits for the handshake (and SNI)
                return;
            default:
                p.connect_upstream(*this);
                return;
        }
    }
    upstream_up = true;
    balancer->on_success(peer);
    const auto idle = listener->server.settings.proxy_timeout.count();
    if (idle > 0) p.stack_.set_idle_timeout(c, static_cast<uint64_t>(idle) * 1000);
    if (listener->server.settings.proxy_protocol) p.send_proxy_header(*this);
    if (listener->server.settings.proxy_ssl && routes->upstream_tls) {
        p.start_upstream_tls(*this);
        return;
    }
    upstream.make<PlainTransport>(p.stack_, c).now = &p.now_us_;
    if (client.conn) p.upstream_ready(*this);
}

void Session::on_readable(tcp::Connection& c) {
    Proxy& p = *proxy;
    Side* side = side_of(c);
    if (!side) return;
    if (!client.conn) {
        // The client is gone: what the upstream still sends goes nowhere,
        // and must not hold its connection open.
        p.stack_.skip(c, UINT32_MAX, p.now_us_);
        return;
    }
    if (side == &client && stage == Stage::kProxyHeader) {
        p.read_proxy_header(*this);
        return;
    }
    if (side == &client && stage == Stage::kPreread) {
        p.preread(*this);
        return;
    }
    if (side->t && !side->t->established()) {
        p.handshake(*this, *side);
        return;
    }
    if (stage == Stage::kRelay) p.relay(*this, *side, other(*side));
}

void Session::on_writable(tcp::Connection& c) {
    Proxy& p = *proxy;
    Side* side = side_of(c);
    if (!side) return;
    // A handshake flight larger than the send space left goes on now.
    if (side->t && !side->t->established()) {
        p.handshake(*this, *side);
        return;
    }
    if (stage == Stage::kRelay) p.relay(*this, other(*side), *side);
}

void Session::on_closed(tcp::Connection& c, tcp::CloseReason why) {
    Proxy& p = *proxy;
    if (&c == upstream.conn) {
        if (stage == Stage::kUpstreamHandshake) {
            log.fail(mgmt::SessionStatus::kBadGateway);
            if (auto* t = std::get_if<TlsClientTransport>(&upstream.storage); t && !t->endpoint.failed()) {
                t->endpoint.fail(why == tcp::CloseReason::kDeadline ? tls::UpstreamFailure::k_timeout
                                                                   : tls::UpstreamFailure::k_peer_closed);
                if (why == tcp::CloseReason::kDeadline) p.log_upstream_tls_failure(*this);
            }
        }
        // The upstream finished normally: what it sent last is passed on
        // while C can still be read.
        const bool normal = why != tcp::CloseReason::kIdle && why != tcp::CloseReason::kReset &&
                            why != tcp::CloseReason::kTimeout && why != tcp::CloseReason::kAborted;
        if (upstream_up && normal && stage == Stage::kRelay && client.conn && client.conn->handler) {
            p.relay(*this, upstream, client);
        }
        // The transport must not touch C from here (a reconnect below
        // gives the side a new connection).
        if (upstream.t) upstream.t->detach();
        upstream.conn = nullptr;
        if (!upstream_up) {
            // The connect failed: count it, and try the next server.
            upstream.clear();
            ++p.counters_.upstream_failures;
            balancer->on_failure(peer, p.now_us_);
            balancer->release(peer);
            peer = -1;
            if (client.conn) p.connect_upstream(*this);
        } else if (client.conn && client.conn->handler) {
            if (why == tcp::CloseReason::kIdle) {
                // proxy_timeout: nginx closes both sockets, each with a FIN.
                p.stack_.close(*client.conn, p.now_us_);
            } else if (why == tcp::CloseReason::kReset || why == tcp::CloseReason::kTimeout ||
                       why == tcp::CloseReason::kAborted) {
                ++p.counters_.resets_propagated;
                p.stack_.abort(*client.conn);
            } else if (client.t) {
                client.t->finish(p.now_us_);
            }
        }
    } else if (&c == client.conn) {
        if (why == tcp::CloseReason::kDeadline && stage == Stage::kPreread) {
            ++p.counters_.preread_timeouts;
            log.fail(mgmt::SessionStatus::kBadRequest);
        }
        if (why == tcp::CloseReason::kDeadline && stage == Stage::kProxyHeader) {
            ++p.counters_.proxy_header_timeouts;
            log.fail(mgmt::SessionStatus::kBadRequest);
        }
        if (TlsServerTransport* tls = client_tls(); tls && !tls->established()) {
            // The handshake never finished: say why.
            log.fail(mgmt::SessionStatus::kInternalError);
            tls->endpoint.fail(why == tcp::CloseReason::kDeadline ? tls::Failure::k_timeout
                                                                 : tls::Failure::k_peer_closed);
            if (why == tcp::CloseReason::kDeadline) p.log_tls_failure(*this);
        }
        if (client.t) client.t->detach();  // the transport must not touch C from here
        client.conn = nullptr;
        if (upstream.conn && upstream.conn->handler) {
            if (why == tcp::CloseReason::kIdle) {
                p.stack_.close(*upstream.conn, p.now_us_);
            } else if (why == tcp::CloseReason::kReset || why == tcp::CloseReason::kTimeout ||
                       why == tcp::CloseReason::kAborted) {
                if (why != tcp::CloseReason::kAborted) ++p.counters_.resets_propagated;
                p.stack_.abort(*upstream.conn);
            } else if (upstream_up && upstream.t) {
                upstream.t->finish(p.now_us_);
            } else {
                p.stack_.abort(*upstream.conn);
            }
        }
    }
    p.finish_if_done(*this);
}

}  // namespace terminus::dataplane::proxy
