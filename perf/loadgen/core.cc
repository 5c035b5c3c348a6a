// The clients and the backend of one load-generator core.
#include <openssl/err.h>

#include <algorithm>
#include <cstring>

#include "dataplane/flow.h"
#include "perf/loadgen/loadgen.h"

namespace terminus::loadgen {

namespace {
constexpr uint32_t kNone = UINT32_MAX;
constexpr uint32_t kScratch = 16384;

// The backend's ClientHello callback: notes whether the client offered a
// session (a TLS 1.3 PSK, a TLS 1.2 ticket or session id), so that a full
// handshake tells a proxy that offered nothing from one whose offer we
// refused. A TLS 1.3 hello's legacy session id is not an offer.
int note_offer(SSL* ssl, int*, void*) {
    auto* b = static_cast<BackendConn*>(SSL_get_app_data(ssl));
    if (!b) return SSL_CLIENT_HELLO_SUCCESS;
    const unsigned char* ext = nullptr;
    size_t len = 0;
    const unsigned char* sid = nullptr;
    const bool tls13 = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &len) == 1;
    b->tls_offered = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) == 1 ||
                     (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &ext, &len) == 1 && len > 0) ||
                     (!tls13 && SSL_client_hello_get0_session_id(ssl, &sid) > 0);
    return SSL_CLIENT_HELLO_SUCCESS;
}
}  // namespace

Core::Core(const Options& o, dataplane::Lcore& lc, tcp::Stack& stack, uint32_t local_ip, CoreStats& stats)
    : o_(o),
      lc_(lc),
      stack_(stack),
      local_ip_(local_ip),
      stats_(stats),
      scratch_(new uint8_t[kScratch]),
      sink_(new uint8_t[kScratch]) {
    const unsigned n = lc.n_cores;
    const unsigned i = lc.index;
    max_clients_ = o.concurrency / n + (i < o.concurrency % n ? 1 : 0);
    if (o.connections) quota_ = o.connections / n + (i < o.connections % n ? 1 : 0);
    per_us_ = o.rate / n / 1e6;
    // Request bytes: a recognisable pattern.
    for (uint32_t k = 0; k < kScratch; ++k) scratch_[k] = static_cast<uint8_t>('a' + k % 26);
    clients_.reset(new Client[std::max(1u, max_clients_)]);
    for (unsigned k = 0; k < max_clients_; ++k) {
        clients_[k].core = this;
        clients_[k].next_free = k + 1 < max_clients_ ? k + 1 : kNone;
    }
    free_client_ = max_clients_ ? 0 : kNone;
    if (o.backend_port) {
        backends_.reset(new BackendConn[o.backend_max]);
        for (unsigned k = 0; k < o.backend_max; ++k) {
            backends_[k].core = this;
            backends_[k].next_free = k + 1 < o.backend_max ? k + 1 : kNone;
        }
        free_backend_ = 0;
        stack_.listen(0, o.backend_port, this, 4096);
    }
    next_port_ = static_cast<uint16_t>(1024 + i);
}

Core::~Core() {
    for (unsigned k = 0; k < max_clients_; ++k) clients_[k].tls.reset();
    if (backends_) {
        for (unsigned k = 0; k < o_.backend_max; ++k) backends_[k].tls.reset();
    }
    if (session_) SSL_SESSION_free(session_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (backend_ctx_) SSL_CTX_free(backend_ctx_);
}

bool Core::init_tls(std::string& why) {
    if (o_.backend_tls && !init_backend_tls(why)) return false;
    if (!o_.tls) return true;
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) {
        why = "cannot create an SSL_CTX";
        return false;
    }
    // A load generator does not check the server's chain (h2load does not
    // either); OpenSSL still checks every handshake signature.
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    if (o_.resume == Resume::kSessionId) SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
    // Sessions are kept by hand (session_), not in OpenSSL's client cache.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_min_proto_version(ctx_, o_.tls_version ? o_.tls_version : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, o_.tls_version ? o_.tls_version : TLS1_3_VERSION);
    if (!o_.sigalgs.empty()) {
        const char* list = o_.sigalgs == "ecdsa" ? "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512"
                           : o_.sigalgs == "rsa"  ? "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:RSA+SHA256:RSA+SHA384"
                                                  : o_.sigalgs.c_str();
        if (SSL_CTX_set1_sigalgs_list(ctx_, list) != 1) {
            why = "bad --sigalgs " + o_.sigalgs;
            return false;
        }
    }
    if (!o_.groups.empty() && SSL_CTX_set1_groups_list(ctx_, o_.groups.c_str()) != 1) {
        why = "bad --groups " + o_.groups;
        return false;
    }
    if (!o_.ciphers.empty() && SSL_CTX_set_cipher_list(ctx_, o_.ciphers.c_str()) != 1) {
        why = "bad --ciphers " + o_.ciphers;
        return false;
    }
    if (!o_.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx_, o_.ciphersuites.c_str()) != 1) {
        why = "bad --ciphersuites " + o_.ciphersuites;
        return false;
    }
    ERR_clear_error();
    return true;
}

// The backend's server context: what a stock OpenSSL server does (nginx's
// upstreams, s_server), with resumption on both ways — stateless tickets
// (TLS 1.3 and 1.2) and the session cache (TLS 1.2 session ids, this
// core's only) — so that a proxy's upstream session reuse can be seen.
bool Core::init_backend_tls(std::string& why) {
    backend_ctx_ = SSL_CTX_new(TLS_server_method());
    if (!backend_ctx_) {
        why = "cannot create the backend's SSL_CTX";
        return false;
    }
    SSL_CTX_set_mode(backend_ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                       SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(backend_ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION |
                                          SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(backend_ctx_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(backend_ctx_, TLS1_3_VERSION);
    for (size_t k = 0; k < o_.backend_certs.size(); ++k) {
        const std::string& crt = o_.backend_certs[k];
        const std::string& key = o_.backend_keys[k];
        if (SSL_CTX_use_certificate_chain_file(backend_ctx_, crt.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(backend_ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(backend_ctx_) != 1) {
            why = "cannot load --backend-cert " + crt + " with --backend-key " + key;
            return false;
        }
    }
    SSL_CTX_set_client_hello_cb(backend_ctx_, note_offer, nullptr);
    static constexpr unsigned char kSidContext[] = "terminus-loadgen";
    SSL_CTX_set_session_id_context(backend_ctx_, kSidContext, sizeof kSidContext - 1);
    SSL_CTX_set_session_cache_mode(backend_ctx_, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(backend_ctx_, 65536);
    // Tickets are on by default; their keys are the run's, on every core.
    if (SSL_CTX_set_tlsext_ticket_keys(backend_ctx_, const_cast<uint8_t*>(o_.backend_ticket_keys),
                                       sizeof o_.backend_ticket_keys) != 1) {
        why = "cannot set the backend's ticket keys";
        return false;
    }
    ERR_clear_error();
    return true;
}

uint16_t Core::pick_port() {
    return dataplane::pick_local_port(next_port_, 1024, 65535, local_ip_, o_.target_ip, o_.target_port, lc_.index,
                                      lc_.n_cores);
}

bool Core::start_one() {
    if (free_client_ == kNone) return false;
    const uint16_t port = pick_port();
    Client& cl = clients_[free_client_];
    const tcp::FourTuple t{local_ip_, o_.target_ip, port, o_.target_port};
    tcp::Connection* c =
        port ? stack_.connect(t, &cl, now_us_, static_cast<uint64_t>(o_.connect_timeout_s * 1e6)) : nullptr;
    if (!c) {
        bump(stats_.no_port);
        return false;
    }
    free_client_ = cl.next_free;
    cl.conn = c;
    cl.transport = tcp::TcpTransport{};
    cl.transport.stack = &stack_;
    cl.transport.conn = c;
    cl.transport.now = &now_us_;
    cl.tls.reset();
    cl.offered = false;
    cl.done = false;
    cl.first_byte = false;
    cl.sent = cl.received = 0;
    cl.t_start = now_us_;
    cl.t_connected = cl.t_ready = cl.t_request = 0;
    ++active_;
    stats_.active.store(active_, std::memory_order_relaxed);
    bump(stats_.started);
    if (quota_) --quota_;
    return true;
}

bool Core::poll() {
    if (!starting_.load(std::memory_order_relaxed) || o_.target_ip == 0) return false;
    if (o_.connections && quota_ == 0) return false;
    unsigned budget = dataplane::kBurst;  // connections started per turn, at most
    if (per_us_ > 0) {
        if (last_refill_us_ == 0) last_refill_us_ = now_us_;
        tokens_ = std::min(tokens_ + static_cast<double>(now_us_ - last_refill_us_) * per_us_,
                           static_cast<double>(dataplane::kBurst));
        last_refill_us_ = now_us_;
        budget = std::min<unsigned>(budget, static_cast<unsigned>(tokens_));
    }
    unsigned started = 0;
    // Warming up: one connection at a time, so that the sessions the run
    // resumes (ours, and a proxy's with its upstream) exist before the
    // concurrency asks for them all at once.
    const uint64_t cap = ended_ < o_.warmup ? 1 : max_clients_;
    while (started < budget && active_ < cap && (!o_.connections || quota_ > 0)) {
        if (!start_one()) break;
        ++started;
    }
    if (per_us_ > 0) tokens_ -= started;
    return started > 0;
}

void Core::abort_all() {
    stop_starting();
    for (unsigned k = 0; k < max_clients_; ++k) {
        if (clients_[k].conn) stack_.abort(*clients_[k].conn);
    }
}

// --- clients ---------------------------------------------------------------

void Client::on_established(tcp::Connection&) {
    Core& co = *core;
    t_connected = co.now_us_;
    bump(co.stats_.connected);
    co.lat_.connect.record(t_connected - t_start);
    if (co.o_.tls) {
        SSL_SESSION* offer = co.o_.resume != Resume::kNone ? co.session_ : nullptr;
        offered = offer != nullptr;
        tls.emplace(co.ctx_, transport, co.o_.sni.empty() ? nullptr : co.o_.sni.c_str(), offer);
    } else {
        t_ready = t_connected;
    }
    co.client_step(*this);
}

void Client::on_readable(tcp::Connection&) { core->client_step(*this); }

void Client::on_writable(tcp::Connection&) { core->client_step(*this); }

void Client::on_closed(tcp::Connection&, tcp::CloseReason why) {
    Core& co = *core;
    transport.conn = nullptr;
    conn = nullptr;
    if (!done) {
        if (!t_connected) {
            bump(co.stats_.failed_connect);
        } else if (co.o_.tls && !(tls && tls->established())) {
            bump(co.stats_.failed_tls);
        } else if (why != tcp::CloseReason::kAborted || co.starting_.load(std::memory_order_relaxed)) {
            bump(co.stats_.failed_reset);
        }
    }
    co.free_client(*this);
}

void Core::free_client(Client& cl) {
    cl.tls.reset();
    cl.next_free = free_client_;
    free_client_ = static_cast<uint32_t>(&cl - clients_.get());
    ++ended_;
    --active_;
    stats_.active.store(active_, std::memory_order_relaxed);
}

void Core::client_step(Client& cl) {
    if (!cl.conn) return;
    if (cl.tls && !cl.tls->established()) {
        switch (cl.tls->handshake()) {
            case tls::ClientEndpoint::Status::kAgain:
                return;
            case tls::ClientEndpoint::Status::kFailed:
                bump(stats_.failed_tls);
                cl.done = true;  // counted
                stack_.abort(*cl.conn);
                return;
            case tls::ClientEndpoint::Status::kDone:
                cl.t_ready = now_us_;
                bump(stats_.handshakes);
                if (cl.tls->resumed()) bump(stats_.resumed);
                lat_.handshake.record(cl.t_ready - cl.t_connected);
                break;
        }
    }
    if (cl.done) return;
    client_send(cl);
    if (cl.conn) client_read(cl);
}

void Core::client_send(Client& cl) {
    while (cl.sent < o_.request) {
        const uint64_t left = o_.request - cl.sent;
        int n;
        if (cl.tls) {
            const uint32_t pending = cl.tls->pending_write();
            const uint32_t room = cl.tls->write_room();
            if (room == 0 && pending == 0) return;
            uint32_t len = static_cast<uint32_t>(std::min<uint64_t>({left, kScratch, std::max(room, pending)}));
            len = std::max(len, pending);
            n = cl.tls->write(scratch_.get(), len);
            if (n < 0) {
                stack_.abort(*cl.conn);
                return;
            }
        } else {
            n = static_cast<int>(stack_.write(*cl.conn, scratch_.get(),
                                              static_cast<uint32_t>(std::min<uint64_t>(left, kScratch)), now_us_));
        }
        if (n <= 0) return;
        cl.sent += static_cast<uint64_t>(n);
        bump(stats_.bytes_sent, static_cast<uint64_t>(n));
    }
    if (cl.t_request == 0) cl.t_request = now_us_;
}

void Core::client_read(Client& cl) {
    tcp::Connection& c = *cl.conn;
    uint64_t got = 0;
    bool closed = false;
    for (;;) {
        int n;
        if (cl.tls) {
            n = cl.tls->read(sink_.get(), kScratch);
            if (n < 0) {
                closed = true;
                break;
            }
        } else {
            n = static_cast<int>(stack_.skip(c, UINT32_MAX, now_us_));
        }
        if (n == 0) break;
        got += static_cast<uint64_t>(n);
    }
    if (got) {
        if (!cl.first_byte && cl.t_request) {
            cl.first_byte = true;
            lat_.first_byte.record(now_us_ - cl.t_request);
        }
        cl.received += got;
        bump(stats_.bytes_received, got);
    }
    if (!cl.done && cl.sent >= o_.request && cl.received >= o_.response) {
        cl.done = true;
        bump(stats_.completed);
        lat_.total.record(now_us_ - cl.t_start);
        if (cl.tls && o_.resume != Resume::kNone) {
            // TLS 1.3 tickets come after the handshake: by now they are read.
            if (SSL_SESSION* s = cl.tls->get1_session()) {
                if (session_) SSL_SESSION_free(session_);
                session_ = s;
            }
        }
        if (o_.hold_s < 0) return;  // held to the end of the run
        if (o_.hold_s > 0) {
            stack_.set_deadline(c, static_cast<uint64_t>(o_.hold_s * 1e6));
            return;
        }
        client_finish(cl);
        return;
    }
    if (closed || (!cl.tls && c.peer_closed())) {
        // The server finished before the response was whole.
        if (!cl.done) bump(stats_.failed_reset);
        cl.done = true;
        client_finish(cl);
    }
}

void Core::client_finish(Client& cl) {
    if (!cl.conn) return;
    if (cl.tls) cl.tls->shutdown();
    stack_.skip(*cl.conn, UINT32_MAX, now_us_);
    stack_.close(*cl.conn, now_us_);  // on_closed frees the client
}

// --- backend ---------------------------------------------------------------

tcp::Handler* Core::accept(tcp::Connection& c) {
    if (free_backend_ == kNone) return nullptr;
    BackendConn& b = backends_[free_backend_];
    free_backend_ = b.next_free;
    b.transport = tcp::TcpTransport{};
    b.transport.stack = &stack_;
    b.transport.conn = &c;
    b.transport.now = &now_us_;
    b.tls.reset();
    b.tls_counted = false;
    b.tls_offered = false;
    b.received = b.sent = 0;
    b.responding = false;
    bump(stats_.backend_accepts);
    return &b;
}

void BackendConn::on_established(tcp::Connection& c) {
    Core& co = *core;
    if (co.backend_ctx_) {
        tls.emplace(co.backend_ctx_, transport, tls::ClientEndpoint::Accept{});
        if (tls->ssl()) SSL_set_app_data(tls->ssl(), this);
    }
    co.backend_step(*this, c);
}

void BackendConn::on_readable(tcp::Connection& c) { core->backend_step(*this, c); }

void BackendConn::on_writable(tcp::Connection& c) { core->backend_step(*this, c); }

void BackendConn::on_closed(tcp::Connection&, tcp::CloseReason) {
    Core& co = *core;
    if (tls && !tls_counted) bump(co.stats_.backend_tls_failed);  // closed mid-handshake
    // A proxy that resumes its upstream sessions must end them cleanly:
    // OpenSSL (ours there, and the proxy's) drops a session whose
    // connection was cut.
    if (tls && tls->established() && !(SSL_get_shutdown(tls->ssl()) & SSL_RECEIVED_SHUTDOWN)) {
        bump(co.stats_.backend_tls_unclean);
    }
    transport.conn = nullptr;
    tls.reset();
    next_free = co.free_backend_;
    co.free_backend_ = static_cast<uint32_t>(this - co.backends_.get());
}

void Core::backend_step(BackendConn& b, tcp::Connection& c) {
    if (b.tls && !b.tls->established()) {
        switch (b.tls->handshake()) {
            case tls::ClientEndpoint::Status::kAgain:
                return;
            case tls::ClientEndpoint::Status::kFailed:
                b.tls_counted = true;
                bump(stats_.backend_tls_failed);
                stack_.abort(c);  // on_closed frees it
                return;
            case tls::ClientEndpoint::Status::kDone:
                b.tls_counted = true;
                bump(b.tls->resumed() ? stats_.backend_tls_resumed : stats_.backend_tls_full);
                if (!b.tls->resumed() && b.tls_offered) bump(stats_.backend_tls_refused);
                break;
        }
    }
    backend_read(b, c);
}

void Core::backend_read(BackendConn& b, tcp::Connection& c) {
    bool closed = false;
    uint64_t got = 0;
    for (;;) {
        int n;
        if (b.tls) {
            n = b.tls->read(sink_.get(), kScratch);
            if (n < 0) {
                // kPeerClosed: its close_notify (or FIN); otherwise an
                // alert or a bad record: nothing more is sent either way.
                closed = true;
                if (n == tls::RecordLayer::kPeerClosed) b.tls->shutdown();
                break;
            }
        } else {
            n = static_cast<int>(stack_.skip(c, UINT32_MAX, now_us_));
            closed = c.peer_closed();
        }
        if (n == 0) break;
        got += static_cast<uint64_t>(n);
    }
    b.received += got;
    bump(stats_.backend_bytes_in, got);
    if (!b.responding && b.received >= o_.request) b.responding = true;
    // A plain peer may half-close and wait for the response; a TLS one
    // that closed gets nothing after our close_notify.
    if (b.responding && !(closed && b.tls)) backend_send(b, c);
    if (closed) stack_.close(c, now_us_);
}

void Core::backend_send(BackendConn& b, tcp::Connection& c) {
    while (b.sent < o_.response) {
        const uint64_t left = o_.response - b.sent;
        int n;
        if (b.tls) {
            const uint32_t pending = b.tls->pending_write();
            const uint32_t room = b.tls->write_room();
            if (room == 0 && pending == 0) return;
            uint32_t len = static_cast<uint32_t>(std::min<uint64_t>({left, kScratch, std::max(room, pending)}));
            len = std::max(len, pending);
            n = b.tls->write(scratch_.get(), len);
            if (n < 0) {
                stack_.abort(c);
                return;
            }
        } else {
            n = static_cast<int>(
                stack_.write(c, scratch_.get(), static_cast<uint32_t>(std::min<uint64_t>(left, kScratch)), now_us_));
        }
        if (n <= 0) return;
        b.sent += static_cast<uint64_t>(n);
        bump(stats_.backend_bytes_out, static_cast<uint64_t>(n));
    }
}

}  // namespace terminus::loadgen
