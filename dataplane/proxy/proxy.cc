#include "dataplane/proxy/proxy.h"

#include <cstdio>
#include <cstring>

#include "dataplane/flow.h"

namespace terminus::dataplane::proxy {

namespace {
constexpr uint32_t kNoSession = UINT32_MAX;
// Handshake failures are logged at most this many times a second per
// core; the rest are counted (and the count of those not logged said).
constexpr unsigned kLogBurst = 10;
}

void Session::reset() {
    tls.reset();
    port = nullptr;
    listener = nullptr;
    transport = tcp::TcpTransport{};
    parked = false;
    client = upstream = nullptr;
    peer = -1;
    tried = 0;
    tries = 0;
    first_try_us = 0;
    upstream_up = false;
    closing = false;
    small_records = 0;
    last_record_us = 0;
    deferred = false;
}

Proxy::Proxy(const config::Config& cfg, const SharedUpstreams& shared, tcp::Stack& stack, unsigned core,
             unsigned n_cores, uint32_t local_ip, unsigned max_sessions, tls::CoreTls* tls)
    : cfg_(cfg),
      shared_(shared),
      stack_(stack),
      core_(core),
      n_cores_(n_cores),
      local_ip_(local_ip),
      sessions_(new Session[max_sessions]),
      n_sessions_(max_sessions),
      free_head_(max_sessions ? 0 : kNoSession) {
    tls_ = tls;
    parked_.reserve(max_sessions);
    deferred_.reserve(max_sessions);
    for (unsigned i = 0; i < max_sessions; ++i) {
        sessions_[i].next_free = i + 1 < max_sessions ? i + 1 : kNoSession;
    }
}

void Proxy::start() {
    std::vector<ServerListener*> by_server(cfg_.servers.size(), nullptr);
    for (size_t i = 0; i < cfg_.servers.size(); ++i) {
        const config::Server& srv = cfg_.servers[i];
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
        by_server[i] = l.get();
        listeners_.push_back(std::move(l));
    }
    // One TCP listener per address and port; the server blocks on it share
    // it (SNI tells them apart under TLS).
    for (auto& g : tls::listen_groups(cfg_)) {
        unsigned backlog = 511;
        for (const auto& ls : cfg_.servers[g.default_server].listen) {
            if (ls.address == g.address && ls.port == g.port) backlog = static_cast<unsigned>(ls.backlog);
        }
        auto pl = std::make_unique<PortListener>(*this, std::move(g));
        pl->by_server = by_server;
        stack_.listen(pl->group.address, pl->group.port, pl.get(), backlog);
        ports_.push_back(std::move(pl));
    }
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
    if (s.peer >= 0) s.listener->balancer.release(s.peer);
    s.tls.reset();  // frees the SSL and what OpenSSL held for it
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

tcp::Handler* PortListener::accept(tcp::Connection& c) {
    if (proxy.stopping_) return nullptr;  // a handshake that was under way
    ServerListener* first = by_server[group.default_server];
    if (!first) return nullptr;  // a server{} with nothing to proxy to
    Session* s = proxy.alloc_session();
    if (!s) {
        ++proxy.counters_.sessions_refused;
        return nullptr;
    }
    ++proxy.counters_.accepts;
    s->port = this;
    s->listener = first;
    s->client = &c;
    const config::Server& server = first->server;
    if (group.ssl && proxy.tls_) {
        s->transport.stack = &proxy.stack_;
        s->transport.conn = &c;
        s->transport.now = &proxy.now_us_;
        s->tls.emplace(*proxy.tls_, group, s->transport);
        // nginx's ssl_handshake_timeout bounds the whole handshake, however
        // slowly the client trickles it in.
        const auto hs = server.settings.ssl_handshake_timeout.count();
        if (hs > 0) proxy.stack_.set_deadline(c, static_cast<uint64_t>(hs) * 1000);
    }
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
    // Linux's default ephemeral range.
    return dataplane::pick_local_port(next_port_, 32768, 60999, local_ip_, remote_ip, remote_port, core_, n_cores_);
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

void Proxy::tls_step(Session& s) {
    tls::Endpoint& ep = *s.tls;
    switch (ep.handshake()) {
        case tls::Endpoint::Status::kAgain:
            if (ep.parked() && !s.parked) {
                s.parked = true;
                parked_.push_back(static_cast<uint32_t>(&s - sessions_.get()));
            }
            return;
        case tls::Endpoint::Status::kDone: {
            stack_.set_deadline(*s.client, 0);
            ServerListener* chosen = s.port->by_server[ep.server()];
            if (!chosen) {
                ep.fail(tls::Failure::k_internal);
                break;
            }
            s.listener = chosen;
            const auto idle = chosen->server.settings.proxy_timeout.count();
            stack_.set_idle_timeout(*s.client, idle > 0 ? static_cast<uint64_t>(idle) * 1000 : 0);
            connect_upstream(s);
            return;
        }
        case tls::Endpoint::Status::kFailed:
            break;
    }
    // The alert (if any) is queued: drop what the client still sent and
    // close with a FIN behind it.
    log_tls_failure(s);
    stack_.skip(*s.client, UINT32_MAX, now_us_);
    stack_.close(*s.client, now_us_);
}

void Proxy::log_tls_failure(const Session& s) {
    if (now_us_ - log_window_us_ >= 1'000'000) {
        if (log_suppressed_) {
            std::fprintf(stderr, "terminusd: core %u: %lu more TLS handshake failures not logged\n", core_,
                         static_cast<unsigned long>(log_suppressed_));
        }
        log_window_us_ = now_us_;
        logged_ = 0;
        log_suppressed_ = 0;
    }
    if (logged_ >= kLogBurst) {
        ++log_suppressed_;
        return;
    }
    ++logged_;
    const tcp::FourTuple& t = s.client->tuple;
    const config::Location& where = cfg_.servers[s.tls->server()].loc;
    // Clients cause most failures: info, as nginx logs them.
    std::fprintf(stderr,
                 "terminusd: [info] TLS handshake failed (%s) from %u.%u.%u.%u:%u, SNI \"%s\", server at "
                 "%s:%d\n",
                 tls::to_string(s.tls->failure()), t.remote_ip >> 24, (t.remote_ip >> 16) & 255,
                 (t.remote_ip >> 8) & 255, t.remote_ip & 255, t.remote_port, s.tls->sni().c_str(),
                 where.file.c_str(), where.line);
}

bool Proxy::poll() {
    // Session-cache entries from the other cores, then parked handshakes.
    // Progress is what the busy-cycle count measures: a handshake retried
    // and still parked is not progress, one that moved on (or a session
    // that went away) is.
    bool progress = tls_ && tls_->poll();
    // Short records held back during the rx burst leave now, with what
    // the rest of the burst added to them.
    if (!deferred_.empty()) {
        flushing_ = true;
        for (uint32_t i : deferred_) {
            Session& s = sessions_[i];
            s.deferred = false;
            if (s.in_use && s.tls && s.client && s.upstream && s.upstream_up) relay_encrypt(s, *s.upstream);
        }
        deferred_.clear();
        flushing_ = false;
        progress = true;
    }
    if (parked_.empty()) return progress;
    size_t keep = 0;
    const size_t n = parked_.size();
    for (size_t i = 0; i < n; ++i) {
        Session& s = sessions_[parked_[i]];
        if (!s.in_use || !s.tls || !s.client) {
            progress = true;
            continue;
        }
        s.parked = false;
        tls_step(s);
        if (s.in_use && s.parked) {
            parked_[keep++] = parked_[i];
        } else {
            progress = true;
        }
    }
    parked_.resize(keep);
    return progress;
}

void Proxy::relay_decrypt(Session& s, tcp::Connection& to) {
    // Client records become plaintext straight in mbufs that join the
    // upstream's send queue.
    uint64_t moved = 0;
    for (;;) {
        const uint32_t space = stack_.send_space(to);
        if (space == 0) break;
        rte_mbuf* m = rte_pktmbuf_alloc(stack_.pool());
        if (!m) break;  // the pool is empty: backpressure
        const uint32_t room = std::min<uint32_t>(space, rte_pktmbuf_tailroom(m));
        const int n = s.tls->read(rte_pktmbuf_mtod(m, void*), room);
        if (n > 0) {
            m->data_len = static_cast<uint16_t>(n);
            m->pkt_len = static_cast<uint32_t>(n);
            if (!stack_.append(to, m, now_us_)) {
                rte_pktmbuf_free(m);
                break;
            }
            moved += static_cast<uint64_t>(n);
            continue;
        }
        rte_pktmbuf_free(m);
        if (n == 0) break;
        counters_.bytes_to_upstream += moved;
        if (n == -1) {
            // close_notify, or the client's FIN: the client finished.
            finished(s, *s.client, to);
            return;
        }
        // A record that does not authenticate: nothing of it reaches the
        // upstream; both sides are reset.
        stack_.abort(*s.client);
        return;
    }
    counters_.bytes_to_upstream += moved;
}

namespace {
// Dynamic record sizing, as Google's and Cloudflare's servers do it: while
// TCP's congestion window is still small (the first records of a
// connection, and again after an idle second) each record fits one TCP
// segment, so that the client can decrypt what every segment brings
// instead of waiting for the dozen segments of a 16 KB record; then
// records are full, with the least overhead per byte and one AEAD call
// per 16 KB.
constexpr uint32_t kSmallRecords = 16;
constexpr uint64_t kRecordIdleUs = 1'000'000;
// What a record adds to its plaintext, at most, for every suite we offer
// but CBC with SHA-384: header 5, explicit IV up to 16, MAC up to 20 and
// CBC padding up to 16, or an AEAD's nonce 8 and tag 16 (TLS 1.3: tag and
// content type, 17).
constexpr uint32_t kRecordOverhead = 64;
// TCP timestamps take this much of every segment (RFC 7323 3).
constexpr uint32_t kTimestampOption = 12;

// Whether LEN more bytes queued on C now would wait for an ACK: TCP's
// windows (the peer's and the congestion window) do not let them leave
// yet, and bytes in flight or queued will bring that ACK (on_writable).
bool would_wait(tcp::Connection& c, uint32_t len) {
    const uint32_t in_flight = c.snd_nxt - c.snd_una;
    const uint32_t unsent = c.sndq.bytes > in_flight ? c.sndq.bytes - in_flight : 0;
    const uint32_t wnd = std::min(c.snd_wnd, c.congestion().cwnd());
    const uint32_t can_send = wnd > in_flight ? wnd - in_flight : 0;
    return c.sndq.bytes > 0 && unsent + len > can_send;
}
}  // namespace

uint32_t Proxy::record_size(Session& s, const tcp::Connection& client) {
    if (now_us_ - s.last_record_us >= kRecordIdleUs) s.small_records = 0;
    if (s.small_records >= kSmallRecords) return kMaxRecord;
    const uint32_t segment = client.snd_mss - (client.ts_ok ? kTimestampOption : 0);
    return segment > 2 * kRecordOverhead ? segment - kRecordOverhead : kRecordOverhead;
}

const void* Proxy::gather(const tcp::ByteQueue& q, uint32_t len) {
    // Zero copy when the first segment holds them all.
    const rte_mbuf* m = q.head;
    if (m->data_len >= len) return rte_pktmbuf_mtod(m, const void*);
    auto* out = record_buf_.get();
    for (uint32_t n = 0; m && n < len; m = m->next) {
        const uint32_t take = std::min<uint32_t>(m->data_len, len - n);
        std::memcpy(out + n, rte_pktmbuf_mtod(m, const void*), take);
        n += take;
    }
    return out;
}

void Proxy::relay_encrypt(Session& s, tcp::Connection& from) {
    // What waits in the upstream's receive queue leaves in records as
    // large as record_size() allows (one SSL_write, one record: the
    // contexts use SSL_MODE_ENABLE_PARTIAL_WRITE), not one per segment.
    tcp::Connection& to = *s.client;
    uint64_t moved = 0;
    while (from.rcvq.bytes > 0 && from.rcvq.head) {
        // A write OpenSSL holds goes again with at least its bytes, the
        // same ones (they stay queued until OpenSSL took them), even
        // before there is room for more.
        const uint32_t pending = s.tls->pending_write();
        uint32_t len = pending;
        if (pending == 0) {
            const uint32_t target = record_size(s, to);
            const uint32_t want = std::min(from.rcvq.bytes, target);
            // A short record that could not leave now anyway waits for
            // the upstream's next segments to fill it, as Linux's
            // tcp_autocorking holds small writes while the flow's packets
            // still wait; one that would leave at once goes (no latency
            // added). An upstream that finished sends nothing more.
            if (want < target && !from.fin_received && would_wait(to, want)) break;
            // Inside the rx burst, a short record waits for the burst's
            // end (poll()): the next frames of the burst may fill it.
            if (want < target && !from.fin_received && !flushing_) {
                if (!s.deferred) {
                    s.deferred = true;
                    deferred_.push_back(static_cast<uint32_t>(&s - sessions_.get()));
                }
                break;
            }
            const uint32_t room = s.tls->write_room();
            if (room == 0) break;
            // While what is in flight will be acknowledged (on_writable
            // then brings us back), wait for a whole record's room: a
            // record cut to the room left is as small as what one ACK
            // freed.
            if (room < want && to.sndq.bytes > 0) break;
            len = std::min(want, room);
        }
        const int n = s.tls->write(gather(from.rcvq, len), len);
        if (n > 0) {
            stack_.skip(from, static_cast<uint32_t>(n), now_us_);
            moved += static_cast<uint64_t>(n);
            ++tls_->counters.records_encrypted;
            if (s.small_records < kSmallRecords) ++s.small_records;
            s.last_record_us = now_us_;
            continue;
        }
        if (n == 0) break;  // on_writable brings us back
        counters_.bytes_to_client += moved;
        stack_.abort(*s.client);
        return;
    }
    counters_.bytes_to_client += moved;
    if (from.fin_received && from.rcvq.bytes == 0) finished(s, from, *s.client);
}

void Proxy::finished(Session& s, tcp::Connection& from, tcp::Connection& to) {
    if (to.fin_queued) return;
    // TLS to the client ends with our close_notify before the FIN.
    if (s.tls && &to == s.client) s.tls->shutdown();
    stack_.shutdown(to, now_us_);
    // proxy_half_close off (nginx's default): the session ends when
    // either side finishes, so the other direction closes too.
    if (!s.listener->server.settings.proxy_half_close && !from.fin_queued) {
        s.closing = true;
        if (s.tls && &from == s.client) s.tls->shutdown();
        stack_.shutdown(from, now_us_);
    }
}

void Proxy::relay(Session& s, tcp::Connection& from, tcp::Connection& to) {
    if (s.closing && to.fin_queued) {
        // proxy_half_close off and this side is closed to its peer already:
        // what still arrives has nowhere to go (nginx closes the socket).
        stack_.skip(from, UINT32_MAX, now_us_);
        return;
    }
    if (s.tls) {
        if (&from == s.client) {
            relay_decrypt(s, to);
        } else {
            relay_encrypt(s, from);
        }
        return;
    }
    const uint32_t n = stack_.forward(from, to, UINT32_MAX, now_us_);
    if (&from == s.client) {
        counters_.bytes_to_upstream += n;
    } else {
        counters_.bytes_to_client += n;
    }
    // The sender finished and everything it sent is passed on: pass its FIN.
    if (from.fin_received && from.rcvq.bytes == 0) finished(s, from, to);
}

void Proxy::finish_if_done(Session& s) {
    // A close may run inside another close's callback: free once.
    if (s.in_use && !s.client && !s.upstream) free_session(s);
}

void Session::on_established(tcp::Connection& c) {
    Proxy& p = *proxy;
    if (&c == client) {
        if (tls) {
            p.tls_step(*this);  // the upstream waits for the handshake (and SNI)
            return;
        }
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
        if (tls && !tls->established()) {
            if (!parked) p.tls_step(*this);
            return;
        }
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
                if (tls && !client->fin_queued) tls->shutdown();
                p.stack_.shutdown(*client, p.now_us_);
            }
        }
    } else if (&c == client) {
        if (tls && !tls->established()) {
            // The handshake never finished: say why.
            tls->fail(why == tcp::CloseReason::kDeadline ? tls::Failure::k_timeout : tls::Failure::k_peer_closed);
            if (why == tcp::CloseReason::kDeadline) p.log_tls_failure(*this);
        }
        transport.conn = nullptr;  // the endpoint must not touch C from here
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
