// Complete TLS handshakes between an in-memory OpenSSL client and the
// Terminus server path (tls::CoreTls contexts, tls::Endpoint over a memory
// Transport) on one core, no NIC. The server's CPU time per handshake is
// counted around the server's calls only (SSL_new, every handshake step,
// SSL_free) and reported next to the bound the same primitives give on
// this machine, measured in the same run:
//   ECDSA: one P-256 signature + two X25519 operations (key generation
//   and the shared secret); RSA: one RSA-2048 signature + two X25519;
//   TLS 1.3 resumption: two X25519 (psk_dhe_ke).
// Resumed handshakes resume from the session of one first full handshake
// (TLS 1.2 by ticket and by session cache, TLS 1.3 by ticket), and every
// benchmark checks Terminus's own counters and, for full TLS 1.3
// handshakes, the tickets the client got: a handshake that was not what
// its benchmark claims fails the benchmark.
// BM_OpenSslHandshake times the same handshakes against a server written
// with OpenSSL alone, the library's own cost under Terminus's;
// BM_TlsVsOpenSsl alternates the two, for their ratio on a noisy machine.
// BM_TlsTickets alternates full TLS 1.3 handshakes with two tickets and
// with one ("ssl_conf_command NumTickets 1").
// BM_TlsScaling runs ECDSA handshakes (client and server) on 1 and 2
// threads, each with its own library contexts, to show that the cores do
// not contend inside OpenSSL.
#include <benchmark/benchmark.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"
#include "tests/support/memory_pipe.h"
#include "tls/tls.h"

namespace {

using namespace terminus;
using Clock = std::chrono::steady_clock;

std::string certs() {
    const char* d = std::getenv("TERMINUS_TEST_CERTS");
    return d ? d : TERMINUS_TEST_CERTS_DIR;
}

// The server's side of a connection (never closed, never full).
using Pipe = testing::MemoryPipe;

// What each benchmark claims, and what Terminus's counters must then
// show for every iteration.
enum Kind { kEcdsa13, kRsa13, kTicket13, kTicket12, kCache12, kEcdsa13OneTicket };

const char* label(Kind k) {
    switch (k) {
        case kEcdsa13: return "TLS1.3 ECDSA-P256 X25519";
        case kRsa13: return "TLS1.3 RSA-2048 X25519";
        case kTicket13: return "TLS1.3 resumed (ticket)";
        case kTicket12: return "TLS1.2 resumed (ticket)";
        case kCache12: return "TLS1.2 resumed (session cache)";
        case kEcdsa13OneTicket: return "TLS1.3 ECDSA-P256 X25519, one ticket";
    }
    return "?";
}

bool resumes(Kind k) { return k == kTicket13 || k == kTicket12 || k == kCache12; }

// The TLS 1.3 tickets a full handshake of KIND must bring the client.
uint64_t tickets_per_handshake(Kind k) {
    if (k == kEcdsa13 || k == kRsa13) return 2;  // OpenSSL's default
    return k == kEcdsa13OneTicket ? 1 : 0;
}

// The server's session settings for KIND, in nginx's words: tickets
// (the default, two per full TLS 1.3 handshake), one ticket, or a shared
// cache with tickets off.
std::string session_settings(Kind k) {
    if (k == kEcdsa13OneTicket) return "ssl_conf_command NumTickets 1;";
    return k == kCache12 ? "ssl_session_cache shared:SSL:1m; ssl_session_tickets off;" : "";
}

uint64_t elapsed_ns(Clock::time_point t0) { return static_cast<uint64_t>((Clock::now() - t0).count()); }

// The client side of one thread: its own library context and SSL_CTX,
// and the session its resumed handshakes offer (from its first one).
struct Client {
    OSSL_LIB_CTX* lib = nullptr;
    SSL_CTX* ctx = nullptr;
    SSL_SESSION* session = nullptr;
    bool resume;  // keep the first handshake's session and offer it
    bool count_tickets = false;  // read and count each handshake's tickets
    uint64_t tickets = 0;

    explicit Client(Kind kind) : resume(resumes(kind)) {
        lib = OSSL_LIB_CTX_new();
        OSSL_PROVIDER_load(lib, "default");
        ctx = SSL_CTX_new_ex(lib, nullptr, TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256");  // P-256: the ECDSA certificate's curve (TLS 1.2)
        if (kind == kTicket12 || kind == kCache12) SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
        // Each NewSessionTicket is a new client session (RFC 8446 4.6.1).
        // Not for the resumed kinds: with a client cache OpenSSL makes a
        // TLS 1.3 session single-use (RFC 8446 C.4), and those resume one
        // session again and again.
        if (tickets_per_handshake(kind) > 0) {
            SSL_CTX_set_app_data(ctx, this);
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(ctx, [](SSL* ssl, SSL_SESSION*) {
                ++static_cast<Client*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)))->tickets;
                return 0;
            });
        }
    }
    ~Client() {
        SSL_SESSION_free(session);
        SSL_CTX_free(ctx);
        OSSL_LIB_CTX_free(lib);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
};

// One client connection over memory BIOs, offering the client's session.
struct ClientConn {
    SSL* ssl;
    BIO* rbio;  // what the server sent, for the client to read
    BIO* wbio;  // what the client wrote
    explicit ClientConn(Client& c) : ssl(SSL_new(c.ctx)), rbio(BIO_new(BIO_s_mem())), wbio(BIO_new(BIO_s_mem())) {
        SSL_set_bio(ssl, rbio, wbio);
        SSL_set_tlsext_host_name(ssl, "example.com");
        if (c.session) SSL_set_session(ssl, c.session);
        SSL_set_connect_state(ssl);
    }
    ~ClientConn() {
        // Freed without a close_notify either way, the client would mark
        // its session not resumable (ssl_clear_bad_session), and every
        // "resumed" handshake after the first would be a full one. A
        // connection closed cleanly keeps it, as here.
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(ssl);
        ERR_clear_error();
    }
    ClientConn(const ClientConn&) = delete;
    ClientConn& operator=(const ClientConn&) = delete;

    // After the handshake: TLS 1.3 tickets follow it, read them when
    // they are counted or wanted; the first handshake's session becomes
    // the one to resume.
    void finish(Client& c) {
        const bool keep = c.resume && !c.session;
        if (!keep && !c.count_tickets) return;
        char b[1];
        SSL_read(ssl, b, 1);
        ERR_clear_error();
        if (keep) c.session = SSL_get1_session(ssl);
    }
};

// Runs one handshake of C against a server whose STEP takes the client's
// bytes (IN, consumed) and appends its reply to OUT: 1 done, 0 waiting,
// -1 failed. Returns whether both sides finished.
template <class Step>
bool exchange(ClientConn& c, Step&& step) {
    std::string in, out;
    char buf[16384];
    for (int round = 0; round < 10; ++round) {
        const int rc = SSL_do_handshake(c.ssl);
        int n;
        while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) in.append(buf, static_cast<size_t>(n));
        const int st = step(in, out);
        if (!out.empty()) {
            BIO_write(c.rbio, out.data(), static_cast<int>(out.size()));
            out.clear();
        }
        if (st < 0) return false;
        if (rc == 1 && st == 1) return true;
    }
    return false;
}

// The Terminus server path of one thread: its own CoreTls, built from a
// configuration for KIND.
struct TerminusServer {
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<tls::SharedTls> shared;
    std::unique_ptr<tls::CoreTls> core;
    std::vector<tls::ListenGroup> groups;

    explicit TerminusServer(Kind kind) {
        const std::string c = certs();
        const std::string pair = kind == kRsa13 ? "ssl_certificate " + c + "/rsa.crt; ssl_certificate_key " + c + "/rsa.key;"
                                                : "ssl_certificate " + c + "/ecdsa.crt; ssl_certificate_key " + c + "/ecdsa.key;";
        const std::string text = "stream { upstream b { server 198.18.0.1:1; }\n"
                                 "server { listen 443 ssl; ssl_ecdh_curve X25519:P-256; " + pair +
                                 session_settings(kind) + " proxy_pass b; } }\n";
        auto r = config::load_string(text, "/tmp/tls-bench.conf");
        if (!r.ok()) std::abort();
        cfg = r.config;
        auto sh = tls::SharedTls::create(*cfg);
        if (!sh) std::abort();
        shared = std::move(sh.value());
        auto ct = tls::CoreTls::create(*cfg, *shared);
        if (!ct) std::abort();
        core = std::move(ct.value());
        groups = tls::listen_groups(*cfg);
    }

    // One complete handshake; adds the server's time to *SERVER_NS.
    bool handshake(Client& client, uint64_t* server_ns) {
        ClientConn c(client);
        Pipe p;
        auto t0 = Clock::now();
        auto* ep = new tls::Endpoint(*core, groups[0], p);
        uint64_t ns = elapsed_ns(t0);
        const bool done = exchange(c, [&](std::string& in, std::string& out) {
            p.in.append(in);
            in.clear();
            const auto t1 = Clock::now();
            const auto st = ep->handshake();
            ns += elapsed_ns(t1);
            out.append(p.out);
            p.out.clear();
            return st == tls::Endpoint::Status::kDone ? 1 : st == tls::Endpoint::Status::kAgain ? 0 : -1;
        });
        if (done) c.finish(client);
        t0 = Clock::now();
        delete ep;
        ns += elapsed_ns(t0);
        *server_ns += ns;
        ERR_clear_error();
        return done;
    }
};

// The same handshakes against OpenSSL alone: a server SSL_CTX in its own
// library context with what Terminus sets that changes the handshake's
// work (certificate, groups, ciphers, modes, options, session settings),
// memory BIOs, and no Terminus code at all. Its time is the library's own
// cost, the floor under Terminus's.
struct PlainServer {
    OSSL_LIB_CTX* lib = nullptr;
    SSL_CTX* ctx = nullptr;

    explicit PlainServer(Kind kind) {
        lib = OSSL_LIB_CTX_new();
        OSSL_PROVIDER_load(lib, "default");
        ctx = SSL_CTX_new_ex(lib, nullptr, TLS_server_method());
        const std::string c = certs();
        const std::string name = kind == kRsa13 ? "/rsa" : "/ecdsa";
        if (SSL_CTX_use_certificate_chain_file(ctx, (c + name + ".crt").c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, (c + name + ".key").c_str(), SSL_FILETYPE_PEM) != 1) {
            std::abort();
        }
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
        SSL_CTX_set_cipher_list(ctx, "HIGH:!aNULL:!MD5");
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
        uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_SINGLE_ECDH_USE |
                           SSL_OP_SINGLE_DH_USE | SSL_OP_IGNORE_UNEXPECTED_EOF;
        const unsigned char sid_ctx[] = "plain";
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
        if (kind == kCache12) {
            options |= SSL_OP_NO_TICKET;
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        } else {
            // Tickets with OpenSSL's own keys; nothing stored (nginx's
            // "ssl_session_cache none").
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        }
        SSL_CTX_set_options(ctx, options);
        SSL_CTX_set_timeout(ctx, 300);
        if (kind == kEcdsa13OneTicket) SSL_CTX_set_num_tickets(ctx, 1);
    }
    ~PlainServer() {
        SSL_CTX_free(ctx);
        OSSL_LIB_CTX_free(lib);
    }
    PlainServer(const PlainServer&) = delete;
    PlainServer& operator=(const PlainServer&) = delete;

    // One complete handshake; adds the server's time to *SERVER_NS and
    // says whether the server resumed a session.
    bool handshake(Client& client, uint64_t* server_ns, bool* resumed) {
        ClientConn c(client);
        auto t0 = Clock::now();
        SSL* s = SSL_new(ctx);
        BIO* rbio = BIO_new(BIO_s_mem());
        BIO* wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(s, rbio, wbio);
        SSL_set_accept_state(s);
        uint64_t ns = elapsed_ns(t0);
        bool server_done = false;
        char buf[16384];
        const bool done = exchange(c, [&](std::string& in, std::string& out) {
            if (server_done) return 1;
            BIO_write(rbio, in.data(), static_cast<int>(in.size()));
            in.clear();
            const auto t1 = Clock::now();
            const int rc = SSL_do_handshake(s);
            const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(s, rc);
            ns += elapsed_ns(t1);
            int n;
            while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
            server_done = rc == 1;
            return rc == 1 ? 1 : err == SSL_ERROR_WANT_READ ? 0 : -1;
        });
        if (done) c.finish(client);
        *resumed = SSL_session_reused(s) == 1;
        t0 = Clock::now();
        // A clean close, as Terminus's Endpoint does before SSL_free, so
        // that the cache keeps the session.
        SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(s);
        ns += elapsed_ns(t0);
        *server_ns += ns;
        ERR_clear_error();
        return done;
    }
};

// The time of one operation of each bounding primitive, measured once.
struct Bound {
    double p256_sign_us = 0, rsa2048_sign_us = 0, x25519_us = 0;
};

double time_us(int n, const std::function<void()>& f) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) f();
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

EVP_PKEY* keygen(const char* alg, const char* param = nullptr) {
    EVP_PKEY_CTX* kc = EVP_PKEY_CTX_new_from_name(nullptr, alg, nullptr);
    EVP_PKEY_keygen_init(kc);
    if (param && std::strcmp(alg, "EC") == 0) EVP_PKEY_CTX_set_group_name(kc, param);
    if (param && std::strcmp(alg, "RSA") == 0) EVP_PKEY_CTX_set_rsa_keygen_bits(kc, 2048);
    EVP_PKEY* k = nullptr;
    EVP_PKEY_keygen(kc, &k);
    EVP_PKEY_CTX_free(kc);
    return k;
}

const Bound& bound() {
    static Bound b = [] {
        Bound r;
        unsigned char digest[32] = {1};
        unsigned char sig[512];
        EVP_PKEY* ec = keygen("EC", "P-256");
        EVP_PKEY* rsa = keygen("RSA", "2048");
        auto sign = [&](EVP_PKEY* k, bool pss) {
            EVP_PKEY_CTX* sc = EVP_PKEY_CTX_new(k, nullptr);
            EVP_PKEY_sign_init(sc);
            if (pss) EVP_PKEY_CTX_set_rsa_padding(sc, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_signature_md(sc, EVP_sha256());
            size_t len = sizeof sig;
            EVP_PKEY_sign(sc, sig, &len, digest, sizeof digest);
            EVP_PKEY_CTX_free(sc);
        };
        r.p256_sign_us = time_us(2000, [&] { sign(ec, false); });
        r.rsa2048_sign_us = time_us(300, [&] { sign(rsa, true); });
        EVP_PKEY* peer = keygen("X25519");
        // Half of (a key generation + a shared secret): one X25519 each.
        r.x25519_us = time_us(2000, [&] {
                          EVP_PKEY* k = keygen("X25519");
                          EVP_PKEY_CTX* dc = EVP_PKEY_CTX_new(k, nullptr);
                          EVP_PKEY_derive_init(dc);
                          EVP_PKEY_derive_set_peer(dc, peer);
                          unsigned char secret[32];
                          size_t len = sizeof secret;
                          EVP_PKEY_derive(dc, secret, &len);
                          EVP_PKEY_CTX_free(dc);
                          EVP_PKEY_free(k);
                      }) / 2;
        EVP_PKEY_free(ec);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(peer);
        return r;
    }();
    return b;
}

// The bound of KIND's public-key work on the server, or 0 (none: a TLS
// 1.2 resumption does no public-key operation).
double bound_us(Kind kind) {
    const Bound& b = bound();
    switch (kind) {
        case kEcdsa13:
        case kEcdsa13OneTicket: return b.p256_sign_us + 2 * b.x25519_us;
        case kRsa13: return b.rsa2048_sign_us + 2 * b.x25519_us;
        case kTicket13: return 2 * b.x25519_us;  // psk_dhe_ke: a fresh X25519 exchange, no signature
        default: return 0;
    }
}

void report(benchmark::State& state, Kind kind, uint64_t server_ns, uint64_t failed) {
    const double us = static_cast<double>(server_ns) / 1000.0 / static_cast<double>(state.iterations());
    state.counters["server_us"] = us;
    state.counters["failed"] = static_cast<double>(failed);
    if (const double bound = bound_us(kind); bound > 0) {
        state.counters["bound_us"] = bound;
        state.counters["ratio"] = us / bound;
    }
    state.SetLabel(label(kind));
}

// Whether N handshakes of KIND were what KIND claims, as Terminus
// counted them (BEFORE and AFTER: its counters around them); if not, the
// benchmark fails saying what they were.
bool counted_as(benchmark::State& state, Kind kind, const tls::TlsCounters& before, const tls::TlsCounters& after,
                uint64_t n, uint64_t failed) {
    const uint64_t full = after.handshakes_full - before.handshakes_full;
    const uint64_t cache = after.handshakes_resumed_cache - before.handshakes_resumed_cache;
    const uint64_t ticket = after.handshakes_resumed_ticket - before.handshakes_resumed_ticket;
    const uint64_t want_full = resumes(kind) ? 0 : n;
    const uint64_t want_cache = kind == kCache12 ? n : 0;
    const uint64_t want_ticket = kind == kTicket13 || kind == kTicket12 ? n : 0;
    if (!failed && full == want_full && cache == want_cache && ticket == want_ticket) return true;
    const std::string why = "Terminus: of " + std::to_string(n) + " handshakes, " + std::to_string(full) +
                            " full, " + std::to_string(cache) + " from the cache, " + std::to_string(ticket) +
                            " from tickets, " + std::to_string(failed) + " failed";
    state.SkipWithError(why.c_str());
    return false;
}

// The same for the plain OpenSSL server, from SSL_session_reused: with
// tickets off and a cache, or tickets and no cache, a resumption can only
// have used the mechanism KIND names.
bool resumed_as(benchmark::State& state, Kind kind, uint64_t resumed, uint64_t n, uint64_t failed) {
    if (!failed && resumed == (resumes(kind) ? n : 0)) return true;
    const std::string why = "OpenSSL: of " + std::to_string(n) + " handshakes, " + std::to_string(resumed) +
                            " resumed, " + std::to_string(failed) + " failed";
    state.SkipWithError(why.c_str());
    return false;
}

// Whether the client got the TLS 1.3 tickets KIND claims for N full
// handshakes (TICKETS: counted over them); resumptions claim none.
bool ticketed_as(benchmark::State& state, Kind kind, uint64_t tickets, uint64_t n, const char* server) {
    if (tickets_per_handshake(kind) == 0 || tickets == n * tickets_per_handshake(kind)) return true;
    const std::string why = std::string(server) + ": " + std::to_string(tickets) + " tickets for " +
                            std::to_string(n) + " handshakes";
    state.SkipWithError(why.c_str());
    return false;
}

// Terminus's server path; each handshake must be what KIND says, as
// Terminus itself counted it.
void BM_TlsHandshake(benchmark::State& state) {
    const Kind kind = static_cast<Kind>(state.range(0));
    bound();
    TerminusServer server(kind);
    Client client(kind);
    uint64_t server_ns = 0, failed = 0;
    if (resumes(kind) && !server.handshake(client, &server_ns)) {
        state.SkipWithError("the first handshake, for a session to resume, failed");
        return;
    }
    server_ns = 0;
    client.count_tickets = tickets_per_handshake(kind) > 0;
    const uint64_t tickets = client.tickets;
    const tls::TlsCounters before = server.core->counters;
    for (auto _ : state) failed += !server.handshake(client, &server_ns);
    const uint64_t n = static_cast<uint64_t>(state.iterations());
    if (!counted_as(state, kind, before, server.core->counters, n, failed)) return;
    if (!ticketed_as(state, kind, client.tickets - tickets, n, "Terminus")) return;
    report(state, kind, server_ns, failed);
}
BENCHMARK(BM_TlsHandshake)
    ->Arg(kEcdsa13)->Arg(kRsa13)->Arg(kTicket13)->Arg(kTicket12)->Arg(kCache12)->Arg(kEcdsa13OneTicket)
    ->Unit(benchmark::kMicrosecond);

// The same handshakes against OpenSSL alone (PlainServer): what the
// library costs without Terminus.
void BM_OpenSslHandshake(benchmark::State& state) {
    const Kind kind = static_cast<Kind>(state.range(0));
    bound();
    PlainServer server(kind);
    Client client(kind);
    uint64_t server_ns = 0, failed = 0, resumed = 0;
    bool r = false;
    if (resumes(kind) && !server.handshake(client, &server_ns, &r)) {
        state.SkipWithError("the first handshake, for a session to resume, failed");
        return;
    }
    server_ns = 0;
    client.count_tickets = tickets_per_handshake(kind) > 0;
    const uint64_t tickets = client.tickets;
    for (auto _ : state) {
        failed += !server.handshake(client, &server_ns, &r);
        resumed += r;
    }
    const uint64_t n = static_cast<uint64_t>(state.iterations());
    if (!resumed_as(state, kind, resumed, n, failed)) return;
    if (!ticketed_as(state, kind, client.tickets - tickets, n, "OpenSSL")) return;
    report(state, kind, server_ns, failed);
}
BENCHMARK(BM_OpenSslHandshake)
    ->Arg(kEcdsa13)->Arg(kRsa13)->Arg(kTicket13)->Arg(kTicket12)->Arg(kCache12)->Arg(kEcdsa13OneTicket)
    ->Unit(benchmark::kMicrosecond);

// Terminus and plain OpenSSL side by side: each iteration one handshake
// of each, so that the machine's drift (steal on a shared VM) weighs on
// both alike and their ratio holds when the absolute figures do not.
void BM_TlsVsOpenSsl(benchmark::State& state) {
    const Kind kind = static_cast<Kind>(state.range(0));
    TerminusServer terminus(kind);
    PlainServer plain(kind);
    Client tc(kind), pc(kind);
    uint64_t t_ns = 0, p_ns = 0, failed = 0, p_failed = 0, resumed = 0;
    bool r = false;
    if (resumes(kind) && (!terminus.handshake(tc, &t_ns) || !plain.handshake(pc, &p_ns, &r))) {
        state.SkipWithError("the first handshake, for a session to resume, failed");
        return;
    }
    t_ns = p_ns = 0;
    tc.count_tickets = pc.count_tickets = tickets_per_handshake(kind) > 0;
    const uint64_t t_tickets = tc.tickets, p_tickets = pc.tickets;
    const tls::TlsCounters before = terminus.core->counters;
    for (auto _ : state) {
        failed += !terminus.handshake(tc, &t_ns);
        p_failed += !plain.handshake(pc, &p_ns, &r);
        resumed += r;
    }
    const uint64_t n = static_cast<uint64_t>(state.iterations());
    if (!counted_as(state, kind, before, terminus.core->counters, n, failed)) return;
    if (!resumed_as(state, kind, resumed, n, p_failed)) return;
    if (!ticketed_as(state, kind, tc.tickets - t_tickets, n, "Terminus") ||
        !ticketed_as(state, kind, pc.tickets - p_tickets, n, "OpenSSL")) {
        return;
    }
    const double t_us = static_cast<double>(t_ns) / 1000.0 / static_cast<double>(n);
    const double p_us = static_cast<double>(p_ns) / 1000.0 / static_cast<double>(n);
    state.counters["terminus_us"] = t_us;
    state.counters["openssl_us"] = p_us;
    state.counters["ratio"] = t_us / p_us;
    state.SetLabel(label(kind));
}
BENCHMARK(BM_TlsVsOpenSsl)
    ->Arg(kEcdsa13)->Arg(kRsa13)->Arg(kTicket13)->Arg(kTicket12)->Arg(kCache12)->Arg(kEcdsa13OneTicket)
    ->Unit(benchmark::kMicrosecond);

// What the second TLS 1.3 ticket of a full handshake costs the server:
// Terminus with OpenSSL's default two and with "ssl_conf_command
// NumTickets 1", alternately, as BM_TlsVsOpenSsl does.
void BM_TlsTickets(benchmark::State& state) {
    TerminusServer two(kEcdsa13), one(kEcdsa13OneTicket);
    Client c2(kEcdsa13), c1(kEcdsa13OneTicket);
    c2.count_tickets = c1.count_tickets = true;
    uint64_t two_ns = 0, one_ns = 0, failed = 0;
    const tls::TlsCounters before2 = two.core->counters, before1 = one.core->counters;
    for (auto _ : state) {
        failed += !two.handshake(c2, &two_ns);
        failed += !one.handshake(c1, &one_ns);
    }
    const uint64_t n = static_cast<uint64_t>(state.iterations());
    if (!counted_as(state, kEcdsa13, before2, two.core->counters, n, failed) ||
        !counted_as(state, kEcdsa13OneTicket, before1, one.core->counters, n, failed) ||
        !ticketed_as(state, kEcdsa13, c2.tickets, n, "two tickets") ||
        !ticketed_as(state, kEcdsa13OneTicket, c1.tickets, n, "one ticket")) {
        return;
    }
    const double two_us = static_cast<double>(two_ns) / 1000.0 / static_cast<double>(n);
    const double one_us = static_cast<double>(one_ns) / 1000.0 / static_cast<double>(n);
    state.counters["two_tickets_us"] = two_us;
    state.counters["one_ticket_us"] = one_us;
    state.counters["saved_us"] = two_us - one_us;
    state.SetLabel("TLS1.3 ECDSA-P256 X25519, full");
}
BENCHMARK(BM_TlsTickets)->Unit(benchmark::kMicrosecond);

// Client and server handshakes per second on 1 and 2 threads.
void BM_TlsScaling(benchmark::State& state) {
    TerminusServer server(kEcdsa13);
    Client client(kEcdsa13);
    uint64_t server_ns = 0;
    for (auto _ : state) server.handshake(client, &server_ns);
    state.counters["handshakes_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TlsScaling)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
