#include "dataplane/proxy/proxy.h"

#include "dataplane/flow.h"

namespace terminus::dataplane::proxy {

namespace {
constexpr uint32_t kNoSession = UINT32_MAX;
}

Proxy::Proxy(const config::Config& cfg, const SharedUpstreams& shared, tcp::Stack& stack, unsigned core,
             unsigned n_cores, uint32_t local_ip, unsigned max_sessions)
    : cfg_(cfg),
      shared_(shared),
      stack_(stack),
      core_(core),
      n_cores_(n_cores),
      local_ip_(local_ip),
      sessions_(new Session[max_sessions]),
      n_sessions_(max_sessions),
      free_head_(max_sessions ? 0 : kNoSession) {
    for (unsigned i = 0; i < max_sessions; ++i) {
        sessions_[i].next_free = i + 1 < max_sessions ? i + 1 : kNoSession;
    }
}

void Proxy::start() {
    for (const auto& srv : cfg_.servers) {
        std::unique_ptr<ServerListener> l;
        if (srv.proxy_pass.kind == config::ProxyPass::Kind::kUpstream) {
            const std::string& name = srv.proxy_pass.upstream;
            l = std::make_unique<ServerListener>(*this, srv, Balancer(*cfg_.find_upstream(name), shared_.find(name)));
        } else if (srv.proxy_pass.kind == config::ProxyPass::Kind::kAddress) {
            l = std::make_unique<ServerListener>(*this, srv,
                                                 Balancer(srv.proxy_pass.address.value_or(0), srv.proxy_pass.port));
        } else {
            continue;
        }
        for (const auto& ls : srv.listen) stack_.listen(ls.address, ls.port, l.get(), static_cast<unsigned>(ls.backlog));
        listeners_.push_back(std::move(l));
    }
}

Session* Proxy::alloc_session() {
    if (free_head_ == kNoSession) return nullptr;
    Session& s = sessions_[free_head_];
    free_head_ = s.next_free;
    const uint32_t next = s.next_free;
    s = Session{};
    s.next_free = next;
    s.in_use = true;
    s.proxy = this;
    ++counters_.sessions_active;
    return &s;
}

void Proxy::free_session(Session& s) {
    if (s.peer >= 0) s.listener->balancer.release(s.peer);
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
        if (s.client) stack_.abort(*s.client);
        if (s.in_use && s.upstream) stack_.abort(*s.upstream);
    }
}

tcp::Handler* ServerListener::accept(tcp::Connection& c) {
    if (proxy.stopping_) return nullptr;  // a handshake that was under way
    Session* s = proxy.alloc_session();
    if (!s) {
        ++proxy.counters_.sessions_refused;
        return nullptr;
    }
    ++proxy.counters_.accepts;
    s->listener = this;
    s->client = &c;
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
    return s;
}

uint16_t Proxy::pick_local_port(uint32_t remote_ip, uint16_t remote_port) {
    // An ephemeral port whose flow hash brings the replies back to this
    // core (Seastar's tcp::connect does the same).
    for (unsigned tries = 0; tries < 65536; ++tries) {
        uint16_t p = next_port_++;
        if (next_port_ < 32768 || next_port_ > 60999) next_port_ = 32768;
        if (p < 32768 || p > 60999) continue;
        tcp::FourTuple t{local_ip_, remote_ip, p, remote_port};
        if (flow_owner(t, n_cores_) == core_) return p;
    }
    return 0;
}

namespace {
FlowKey flow_key(const Session& s) {
    if (!s.client) return FlowKey{};
    const tcp::FourTuple& t = s.client->tuple;
    return FlowKey{t.remote_ip, t.remote_port, t.local_ip, t.local_port};
}
}  // namespace

void Proxy::connect_upstream(Session& s) {
    const config::ServerSettings& st = s.listener->server.settings;
    Balancer& b = s.listener->balancer;
    for (;;) {
        const bool limit_tries = st.proxy_next_upstream_tries && s.tries >= st.proxy_next_upstream_tries;
        const bool limit_time = st.proxy_next_upstream_timeout.count() &&
                                now_us_ - s.first_try_us >= static_cast<uint64_t>(st.proxy_next_upstream_timeout.count()) * 1000;
        int peer = (s.tries > 0 && (!st.proxy_next_upstream || limit_tries || limit_time))
                       ? -1
                       : b.pick(now_us_, flow_key(s), s.tried);
        if (peer < 0) {
            ++counters_.no_live_upstream;
            if (s.client) stack_.abort(*s.client);  // closes the client at once
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
            ++counters_.upstream_connects;
            s.upstream = c;
            return;
        }
        ++counters_.no_local_port;
        b.release(peer);
        s.peer = -1;
    }
}

void Proxy::relay(Session& s, tcp::Connection& from, tcp::Connection& to) {
    if (s.closing && to.fin_queued) {
        // proxy_half_close off and this side is closed to its peer already:
        // what still arrives has nowhere to go (nginx closes the socket).
        stack_.skip(from, UINT32_MAX, now_us_);
        return;
    }
    const uint32_t n = stack_.forward(from, to, UINT32_MAX, now_us_);
    if (&from == s.client) {
        counters_.bytes_to_upstream += n;
    } else {
        counters_.bytes_to_client += n;
    }
    // The sender finished and everything it sent is passed on: pass its FIN.
    if (from.fin_received && from.rcvq.bytes == 0 && !to.fin_queued) {
        stack_.shutdown(to, now_us_);
        // proxy_half_close off (nginx's default): the session ends when
        // either side finishes, so the other direction closes too.
        if (!s.listener->server.settings.proxy_half_close && !from.fin_queued) {
            s.closing = true;
            stack_.shutdown(from, now_us_);
        }
    }
}

void Proxy::finish_if_done(Session& s) {
    // A close may run inside another close's callback: free once.
    if (s.in_use && !s.client && !s.upstream) free_session(s);
}

void Session::on_established(tcp::Connection& c) {
    Proxy& p = *proxy;
    if (&c == client) {
        p.connect_upstream(*this);
        return;
    }
    upstream_up = true;
    listener->balancer.on_success(peer);
    const auto idle = listener->server.settings.proxy_timeout.count();
    if (idle > 0) p.stack_.set_idle_timeout(c, static_cast<uint64_t>(idle) * 1000);
    if (client) {
        p.relay(*this, *client, c);
        if (upstream) p.relay(*this, c, *client);
    }
}

void Session::on_readable(tcp::Connection& c) {
    Proxy& p = *proxy;
    if (&c == client) {
        if (upstream && upstream_up) p.relay(*this, c, *upstream);
    } else if (client) {
        p.relay(*this, c, *client);
    } else {
        // The client is gone: what the upstream still sends goes nowhere,
        // and must not hold its connection open.
        p.stack_.skip(c, UINT32_MAX, p.now_us_);
    }
}

void Session::on_writable(tcp::Connection& c) {
    Proxy& p = *proxy;
    if (&c == client) {
        if (upstream) p.relay(*this, *upstream, c);
    } else if (client && upstream_up) {
        p.relay(*this, *client, c);
    }
}

void Session::on_closed(tcp::Connection& c, tcp::CloseReason why) {
    Proxy& p = *proxy;
    if (&c == upstream) {
        upstream = nullptr;
        if (!upstream_up) {
            // The connect failed: count it, and try the next server.
            ++p.counters_.upstream_failures;
            listener->balancer.on_failure(peer, p.now_us_);
            listener->balancer.release(peer);
            peer = -1;
            if (client) p.connect_upstream(*this);
        } else if (client) {
            if (why == tcp::CloseReason::kIdle) {
                // proxy_timeout: nginx closes both sockets, each with a FIN.
                p.stack_.close(*client, p.now_us_);
            } else if (why == tcp::CloseReason::kReset || why == tcp::CloseReason::kTimeout ||
                why == tcp::CloseReason::kAborted) {
                ++p.counters_.resets_propagated;
                p.stack_.abort(*client);
            } else {
                p.relay(*this, c, *client);
                p.stack_.shutdown(*client, p.now_us_);
            }
        }
    } else if (&c == client) {
        client = nullptr;
        if (upstream) {
            if (why == tcp::CloseReason::kIdle) {
                p.stack_.close(*upstream, p.now_us_);
            } else if (why == tcp::CloseReason::kReset || why == tcp::CloseReason::kTimeout ||
                why == tcp::CloseReason::kAborted) {
                if (why != tcp::CloseReason::kAborted) ++p.counters_.resets_propagated;
                p.stack_.abort(*upstream);
            } else if (upstream_up) {
                p.stack_.shutdown(*upstream, p.now_us_);
            } else {
                p.stack_.abort(*upstream);
            }
        }
    }
    p.finish_if_done(*this);
}

}  // namespace terminus::dataplane::proxy
