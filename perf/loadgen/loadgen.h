// terminus-loadgen's application on one core: clients that open TCP (or
// TLS) connections to the server under test at a rate or as fast as a
// concurrency allows, and the backend that server proxies to — both on
// the dataplane's userspace TCP, so that no kernel is on the path.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/lcore.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tcp_transport.h"
#include "dataplane/worker.h"
#include "perf/loadgen/histogram.h"
#include "tls/tls.h"

namespace terminus::loadgen {

enum class Resume : uint8_t { kNone, kTicket, kSessionId };

struct Options {
    // Client side.
    uint32_t target_ip = 0;  // 0: no clients (backend only)
    uint16_t target_port = 443;
    bool tls = false;
    int tls_version = 0;          // 0: 1.2 or 1.3, as negotiated; else TLS1_2_VERSION / TLS1_3_VERSION
    std::string sigalgs;          // "ecdsa", "rsa" or "" (any)
    std::string groups;           // OpenSSL groups list, "" for its default
    std::string ciphers;          // TLS 1.2 cipher list
    std::string ciphersuites;     // TLS 1.3 suites
    std::string sni;
    Resume resume = Resume::kNone;
    uint64_t request = 0;         // bytes each client sends
    uint64_t response = 0;        // bytes each client waits for
    double hold_s = 0;            // seconds a connection stays open after its response (< 0: to the end)
    unsigned concurrency = 1;     // connections open at once, all cores
    double rate = 0;              // new connections per second, all cores (0: as fast as possible)
    uint64_t connections = 0;     // total to open (0: until the duration ends)
    uint64_t warmup = 0;          // each core's first N connections one at a time (sessions saved first)
    double connect_timeout_s = 5;
    // Backend side.
    uint16_t backend_port = 0;    // 0: none
    unsigned backend_max = 65536;
    // A TLS backend (a re-encrypting proxy's upstream, or the far end of a
    // passthrough): TLS 1.2 and 1.3, a session cache and session tickets,
    // each certificate with its key (ECDSA and RSA side by side, picked by
    // the client's signature algorithms, as the servers under test do).
    bool backend_tls = false;
    std::vector<std::string> backend_certs, backend_keys;
    // The ticket keys every core's backend context shares (name, HMAC
    // and AES keys, as SSL_CTX_set_tlsext_ticket_keys takes them), so that
    // a ticket resumes on whichever core its connection lands.
    uint8_t backend_ticket_keys[80] = {};
};

// Each core's figures: written by the core only (relaxed stores), read by
// the progress thread.
struct alignas(64) CoreStats {
#define TERMINUS_LOADGEN_COUNTERS(X)                                        \
    X(started, "connections started")                                       \
    X(connected, "connections established")                                 \
    X(handshakes, "TLS handshakes completed")                               \
    X(resumed, "TLS handshakes that resumed a session")                     \
    X(completed, "connections that got their whole response")               \
    X(failed_connect, "connections refused or timed out")                   \
    X(failed_tls, "TLS handshakes that failed")                             \
    X(failed_reset, "connections reset or closed before their response")    \
    X(no_port, "connections not started: no free local port or slot")      \
    X(bytes_sent, "application bytes sent by clients")                      \
    X(bytes_received, "application bytes received by clients")              \
    X(backend_accepts, "connections accepted by the backend")               \
    X(backend_bytes_in, "bytes the backend received")                      \
    X(backend_bytes_out, "bytes the backend sent")                         \
    X(backend_tls_full, "TLS handshakes the backend completed in full")    \
    X(backend_tls_resumed, "TLS handshakes the backend resumed a session for") \
    X(backend_tls_refused, "full backend handshakes whose client offered a session (PSK, ticket or id)") \
    X(backend_tls_failed, "TLS handshakes the backend did not complete")    \
    X(backend_tls_unclean, "backend TLS connections that ended without the peer's close_notify")
#define TERMINUS_X(name, help) std::atomic<uint64_t> name{0};
    TERMINUS_LOADGEN_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    std::atomic<uint64_t> active{0};
};

inline void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

class Core;

// One client connection.
struct Client final : tcp::Handler {
    Core* core = nullptr;
    tcp::Connection* conn = nullptr;
    tcp::TcpTransport transport;
    std::optional<tls::ClientEndpoint> tls;
    bool offered = false;  // a session was offered
    bool done = false;     // got its whole response
    uint64_t t_start = 0, t_connected = 0, t_ready = 0, t_request = 0;
    bool first_byte = false;
    uint64_t sent = 0, received = 0;
    uint32_t next_free = 0;

    void on_established(tcp::Connection& c) override;
    void on_readable(tcp::Connection& c) override;
    void on_writable(tcp::Connection& c) override;
    void on_closed(tcp::Connection& c, tcp::CloseReason why) override;
};

// One backend connection: reads the request, sends the response (over
// TLS with --backend-tls: the handshake first).
struct BackendConn final : tcp::Handler {
    Core* core = nullptr;
    tcp::TcpTransport transport;
    std::optional<tls::ClientEndpoint> tls;  // the server side (ClientEndpoint::Accept)
    uint64_t received = 0, sent = 0;
    bool responding = false;
    bool tls_counted = false;  // its handshake's outcome is counted
    bool tls_offered = false;  // its ClientHello offered a session to resume
    uint32_t next_free = 0;

    void on_established(tcp::Connection& c) override;
    void on_readable(tcp::Connection& c) override;
    void on_writable(tcp::Connection& c) override;
    void on_closed(tcp::Connection& c, tcp::CloseReason why) override;
};

struct Latencies {
    Histogram connect, handshake, first_byte, total;
    void merge(const Latencies& o) {
        connect.merge(o.connect);
        handshake.merge(o.handshake);
        first_byte.merge(o.first_byte);
        total.merge(o.total);
    }
};

class Core final : public dataplane::Application, public tcp::Listener {
  public:
    Core(const Options& o, dataplane::Lcore& lc, tcp::Stack& stack, uint32_t local_ip, CoreStats& stats);
    ~Core() override;

    // Builds the client SSL_CTX and the backend's; false with WHY.
    bool init_tls(std::string& why);
    // The application poller: starts connections as the rate and the
    // concurrency allow.
    bool poll();
    // Clients start no more connections (the run is ending).
    void stop_starting() { starting_.store(false, std::memory_order_relaxed); }

    void set_now(uint64_t now_us) override { now_us_ = now_us; }
    void stop_accepting() override { stop_starting(); }
    uint64_t sessions_active() const override { return active_; }
    void abort_all() override;
    tcp::Handler* accept(tcp::Connection& c) override;

    const Latencies& latencies() const { return lat_; }

  private:
    friend struct Client;
    friend struct BackendConn;
    bool start_one();
    void client_step(Client& cl);
    void client_send(Client& cl);
    void client_read(Client& cl);
    void client_finish(Client& cl);
    void free_client(Client& cl);
    bool init_backend_tls(std::string& why);
    void backend_step(BackendConn& b, tcp::Connection& c);
    void backend_read(BackendConn& b, tcp::Connection& c);
    void backend_send(BackendConn& b, tcp::Connection& c);
    uint16_t pick_port();

    const Options& o_;
    dataplane::Lcore& lc_;
    tcp::Stack& stack_;
    uint32_t local_ip_;
    CoreStats& stats_;
    uint64_t now_us_ = 0;
    std::atomic<bool> starting_{true};  // the control thread ends the run
    uint64_t active_ = 0;         // clients open on this core
    uint64_t ended_ = 0;          // clients that ended on this core (for Options::warmup)
    unsigned max_clients_ = 0;    // this core's share of the concurrency
    uint64_t quota_ = 0;          // this core's share of Options::connections (0: none)
    double per_us_ = 0;           // this core's share of the rate, per µs
    double tokens_ = 0;
    uint64_t last_refill_us_ = 0;
    uint16_t next_port_ = 1024;
    std::unique_ptr<Client[]> clients_;
    uint32_t free_client_ = 0;
    std::unique_ptr<BackendConn[]> backends_;
    uint32_t free_backend_ = 0;
    SSL_CTX* ctx_ = nullptr;
    SSL_SESSION* session_ = nullptr;  // the session clients offer (Resume)
    SSL_CTX* backend_ctx_ = nullptr;  // --backend-tls
    std::unique_ptr<uint8_t[]> scratch_;  // bytes out: requests and responses
    std::unique_ptr<uint8_t[]> sink_;     // bytes in: what is read is dropped here
    Latencies lat_;
};

}  // namespace terminus::loadgen
