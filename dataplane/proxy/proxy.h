// The stream proxy of one core: accepts connections on every listening
// address, terminates TLS where the listen says "ssl" (the server block
// chosen by SNI), picks an upstream server, connects from this core, and
// relays both directions with backpressure (data stays in the TCP queues,
// so a slow side closes the other side's window). Private to dataplane/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.h"
#include "dataplane/proxy/balancer.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tcp_transport.h"
#include "dataplane/worker.h"
#include "tls/tls.h"

namespace terminus::dataplane::proxy {

#define TERMINUS_PROXY_COUNTERS(X)                                              \
    X(accepts, "client connections accepted")                                   \
    X(sessions_refused, "client connections refused: no free session")          \
    X(upstream_connects, "connections opened to upstream servers")              \
    X(upstream_failures, "upstream connections refused or timed out")           \
    X(next_upstream, "retries on the next upstream server")                     \
    X(no_live_upstream, "sessions closed because no upstream server answered")  \
    X(no_local_port, "upstream connects without a free local port")             \
    X(bytes_to_upstream, "bytes relayed from clients to upstreams")             \
    X(bytes_to_client, "bytes relayed from upstreams to clients")               \
    X(resets_propagated, "resets passed from one side to the other")

struct ProxyCounters {
#define TERMINUS_X(name, help) uint64_t name = 0;
    TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    uint64_t sessions_active = 0;  // gauge
};

class Proxy;

// A server{} that proxies: its settings and its upstream choice.
class ServerListener {
  public:
    ServerListener(Proxy& p, const config::Server& s, Balancer b) : proxy(p), server(s), balancer(std::move(b)) {}

    Proxy& proxy;
    const config::Server& server;
    Balancer balancer;
};

// One listening address and port, and the server blocks on it: the
// default one for plain TCP, the one SNI names for TLS.
class PortListener final : public tcp::Listener {
  public:
    PortListener(Proxy& p, tls::ListenGroup g) : proxy(p), group(std::move(g)) {}
    tcp::Handler* accept(tcp::Connection& c) override;

    Proxy& proxy;
    tls::ListenGroup group;
    std::vector<ServerListener*> by_server;  // indexed by Config::servers
};

struct Session final : tcp::Handler {
    Proxy* proxy = nullptr;
    PortListener* port = nullptr;
    ServerListener* listener = nullptr;  // for TLS: once SNI chose it
    std::optional<tls::Endpoint> tls;
    tcp::TcpTransport transport;
    bool parked = false;
    tcp::Connection* client = nullptr;
    tcp::Connection* upstream = nullptr;
    int peer = -1;
    uint64_t tried = 0;
    uint32_t tries = 0;
    uint64_t first_try_us = 0;
    bool upstream_up = false;
    bool closing = false;  // proxy_half_close off: one side finished
    // Dynamic TLS record sizing (Proxy::record_size): the one-segment
    // records sent since the connection started or idled, and when the
    // last record went.
    uint32_t small_records = 0;
    uint64_t last_record_us = 0;
    bool deferred = false;  // in Proxy::deferred_
    bool in_use = false;
    uint32_t next_free = 0;

    // Back to a free session's state (Endpoint cannot be assigned).
    void reset();

    void on_established(tcp::Connection& c) override;
    void on_readable(tcp::Connection& c) override;
    void on_writable(tcp::Connection& c) override;
    void on_closed(tcp::Connection& c, tcp::CloseReason why) override;
};

class Proxy final : public Application {
  public:
    // TLS: this core's contexts, or null when no server terminates TLS.
    Proxy(const config::Config& cfg, const SharedUpstreams& shared, tcp::Stack& stack, unsigned core,
          unsigned n_cores, uint32_t local_ip, unsigned max_sessions, tls::CoreTls* tls = nullptr);

    // Registers a listener for every server{} this dataplane serves.
    void start();
    void set_now(uint64_t now_us) override { now_us_ = now_us; }
    // Graceful shutdown: accept nothing more...
    void stop_accepting() override;
    uint64_t sessions_active() const override { return counters_.sessions_active; }
    // ...and, when the drain time is over, reset what is left.
    void abort_all() override;
    // Resumes handshakes an asynchronous crypto operation parked; returns
    // whether any moved.
    bool poll();

    const ProxyCounters& counters() const { return counters_; }
    const tls::CoreTls* tls() const { return tls_; }

  private:
    friend struct Session;
    friend class PortListener;

    Session* alloc_session();
    void free_session(Session& s);
    void connect_upstream(Session& s);
    void relay(Session& s, tcp::Connection& from, tcp::Connection& to);
    void tls_step(Session& s);
    void relay_decrypt(Session& s, tcp::Connection& to);
    void relay_encrypt(Session& s, tcp::Connection& from);
    uint32_t record_size(Session& s, const tcp::Connection& client);
    const void* gather(const tcp::ByteQueue& q, uint32_t len);
    void finished(Session& s, tcp::Connection& from, tcp::Connection& to);
    void log_tls_failure(const Session& s);
    void finish_if_done(Session& s);
    uint16_t pick_local_port(uint32_t remote_ip, uint16_t remote_port);

    const config::Config& cfg_;
    const SharedUpstreams& shared_;
    tcp::Stack& stack_;
    unsigned core_;
    unsigned n_cores_;
    uint32_t local_ip_;
    uint64_t now_us_ = 0;
    tls::CoreTls* tls_ = nullptr;
    std::vector<std::unique_ptr<ServerListener>> listeners_;
    std::vector<std::unique_ptr<PortListener>> ports_;
    std::vector<uint32_t> parked_;    // sessions whose handshake waits on async crypto
    // Sessions whose upstream bytes make less than a full record: they are
    // encrypted by poll(), after the rx burst (which may bring more) and
    // before tx, so that a burst of segments becomes one record, not one
    // record per segment, and no latency is added.
    std::vector<uint32_t> deferred_;
    bool flushing_ = false;           // poll() is writing the deferred records
    uint64_t log_window_us_ = 0;    // failure logs: at most kLogBurst per second
    unsigned logged_ = 0;
    uint64_t log_suppressed_ = 0;
    std::unique_ptr<Session[]> sessions_;
    unsigned n_sessions_;
    uint32_t free_head_;
    uint16_t next_port_ = 32768;
    bool stopping_ = false;
    ProxyCounters counters_;
    // The most a TLS record carries (RFC 8446 5.1), and where the bytes
    // of one record spread over several received segments are gathered.
    static constexpr uint32_t kMaxRecord = 16384;
    std::unique_ptr<uint8_t[]> record_buf_{new uint8_t[kMaxRecord]};
};

}  // namespace terminus::dataplane::proxy
