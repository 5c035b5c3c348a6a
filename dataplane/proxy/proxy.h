// The stream proxy of one core: accepts connections on every listening
// address, terminates TLS where the listen says "ssl" (the server block
// chosen by SNI), picks an upstream server, connects from this core, and
// relays both directions with backpressure (data stays in the TCP queues,
// so a slow side closes the other side's window). Private to dataplane/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include "config/config.h"
#include "dataplane/access_log.h"
#include "dataplane/proxy/balancer.h"
#include "dataplane/proxy/client_hello.h"
#include "dataplane/proxy/limit_conn.h"
#include "dataplane/proxy/variables.h"
#include "dataplane/proxy/transport.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/worker.h"
#include "mgmt/error_log.h"
#include "tls/tls.h"
#include "tls/upstream.h"

namespace terminus::dataplane::proxy {

#define TERMINUS_PROXY_COUNTERS(X)                                              \
    X(accepts, "client connections accepted")                                   \
    X(access_denied, "client connections closed by a deny rule (allow/deny)")    \
    X(limit_conn_rejected, "client connections closed by limit_conn (their key had N already)") \
    X(limit_conn_dry_run, "connections limit_conn would have closed (limit_conn_dry_run on)") \
    X(limit_conn_zone_full, "client connections closed: their limit_conn_zone bucket was full") \
    X(returns, "sessions answered by return instead of an upstream")            \
    X(sessions_refused, "client connections refused: no free session")          \
    X(upstream_connects, "connections opened to upstream servers")              \
    X(upstream_failures, "upstream connections refused or timed out")           \
    X(next_upstream, "retries on the next upstream server")                     \
    X(no_live_upstream, "sessions closed because no upstream server answered")  \
    X(no_local_port, "upstream connects without a free local port")             \
    X(bytes_to_upstream, "bytes relayed from clients to upstreams")             \
    X(bytes_to_client, "bytes relayed from upstreams to clients")               \
    X(resets_propagated, "resets passed from one side to the other")            \
    X(no_route, "sessions closed: proxy_pass named no upstream or address")      \
    X(preread_done, "ClientHellos read by ssl_preread")                        \
    X(preread_not_tls, "ssl_preread sessions that did not start with TLS")     \
    X(preread_invalid, "ssl_preread sessions with a malformed ClientHello")    \
    X(preread_buffer_full, "sessions closed: preread_buffer_size without a whole ClientHello") \
    X(preread_timeouts, "sessions closed: preread_timeout without a whole ClientHello") \
    X(preread_closed, "clients that closed before their ClientHello was whole") \
    X(passthrough, "TLS sessions passed through undecrypted")                   \
    X(proxy_headers, "PROXY protocol headers read from clients")                \
    X(proxy_header_invalid, "clients closed: a malformed PROXY protocol header") \
    X(proxy_header_untrusted, "clients closed: a PROXY header from outside set_real_ip_from") \
    X(proxy_header_timeouts, "clients closed: no PROXY header within proxy_protocol_timeout") \
    X(proxy_headers_sent, "PROXY protocol headers sent to upstreams")             \
    X(access_log_dropped, "access log records dropped: the ring to terminus-mgmtd was full")

struct ProxyCounters {
#define TERMINUS_X(name, help) uint64_t name = 0;
    TERMINUS_PROXY_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    uint64_t sessions_active = 0;  // gauge
};

class Proxy;
class HealthChecker;
struct Routes;

// A server{} that proxies: its settings and how it picks an upstream:
// one group or address (FIXED), or the value of "proxy_pass $variable"
// (TARGET), looked up among the upstream groups or read as ADDRESS:PORT.
class ServerListener {
  public:
    ServerListener(Proxy& p, const config::Server& s) : proxy(p), server(s) {}

    Proxy& proxy;
    const config::Server& server;
    Balancer* fixed = nullptr;
    std::unique_ptr<Balancer> own;  // proxy_pass ADDRESS:PORT
    std::optional<Expression> target;
    // "return VALUE": the value sent to the client instead of proxying.
    std::optional<Expression> ret;
    // limit_conn NAME N: the zone, its key (Routes::limit_keys) and N.
    struct Limit {
        LimitZone* zone;
        const Expression* key;
        uint32_t number;
    };
    std::vector<Limit> limits;
    // Passes TLS through undecrypted: "ssl_preread on" (on an ssl listen:
    // the names this server holds are not terminated).
    bool passthrough = false;
};

// One listening address and port, and the server blocks on it: the
// default one for plain TCP, the one SNI names for TLS.
class PortListener final : public tcp::Listener {
  public:
    PortListener(Proxy& p, Routes& r, tls::ListenGroup g) : proxy(p), routes(r), group(std::move(g)) {}
    tcp::Handler* accept(tcp::Connection& c) override;

    Proxy& proxy;
    Routes& routes;
    unsigned backlog = 511;
    tls::ListenGroup group;
    std::vector<ServerListener*> by_server;  // indexed by Config::servers
    bool proxy_protocol = false;  // "listen ... proxy_protocol"
    bool preread = false;         // a server here has "ssl_preread on"
};

// What one configuration generation is on one core: CFG's server blocks,
// balancers, maps and listening ports, over the generation's upstream
// state and this core's TLS contexts. Built by terminusd's control thread
// off the hot path (Proxy::make_routes), installed by its core
// (Proxy::install), kept by every session that started on it, and handed
// back (Proxy::take_released) once it is retired and the last of those
// sessions ended. The generation owns it.
struct Routes {
    uint32_t generation = 0;
    std::shared_ptr<const config::Config> cfg;
    const SharedUpstreams* shared = nullptr;
    tls::CoreTls* tls = nullptr;
    tls::UpstreamTls* upstream_tls = nullptr;
    HealthChecker* health = nullptr;  // core 0 only
    std::vector<std::unique_ptr<ServerListener>> listeners;
    std::unique_ptr<Maps> maps;
    // One balancer per upstream{} (parallel to Config::upstreams), and
    // one per ADDRESS:PORT a "proxy_pass $variable" named, made on first
    // use (at most kMaxAddressBalancers).
    std::vector<std::unique_ptr<Balancer>> upstream_balancers;
    std::vector<std::unique_ptr<Balancer>> address_balancers;
    std::vector<std::unique_ptr<PortListener>> ports;
    // Each limit_conn_zone's key (parallel to Config::limit_conn_zones).
    std::vector<std::optional<Expression>> limit_keys;
    uint32_t preread_cap = 0;
    // The access log's signature of CFG (mgmt::access_log_signature), and
    // each server block's error_log (null: the main one).
    uint64_t log_signature = 0;
    std::vector<const errlog::Target*> error_logs;
    // Its core's only: sessions that started on it and are open, and
    // whether a newer generation replaced it.
    uint32_t sessions = 0;
    bool retired = false;
};

// One side of a session: its connection and the transport over it.
struct Side {
    tcp::Connection* conn = nullptr;
    Transport* t = nullptr;  // into storage; null until the side has one
    std::variant<std::monostate, PlainTransport, TlsServerTransport, TlsClientTransport> storage;

    template <class T, class... Args>
    T& make(Args&&... args) {
        T& x = storage.template emplace<T>(std::forward<Args>(args)...);
        t = &x;
        return x;
    }
    void clear() {
        t = nullptr;
        storage.template emplace<std::monostate>();
        conn = nullptr;
    }
    bool ready() const { return t && t->established(); }
};

// A proxied connection: the client's side, the upstream's side, and what
// stage the session is in. The relay passes plaintext from one side's
// transport to the other's whatever they are.
struct Session final : tcp::Handler {
    enum class Stage : uint8_t {
        kProxyHeader,        // listen ... proxy_protocol: the client's PROXY header
        kPreread,            // ssl_preread: waiting for the whole ClientHello
        kClientHandshake,    // TLS from the client: the handshake (and SNI)
        kConnecting,         // the upstream's TCP handshake
        kUpstreamHandshake,  // proxy_ssl: TLS to the upstream
        kRelay,              // bytes flow both ways
    };
    Proxy* proxy = nullptr;
    Routes* routes = nullptr;            // the generation it started on
    PortListener* port = nullptr;
    ServerListener* listener = nullptr;  // for TLS: once SNI chose it
    Balancer* balancer = nullptr;        // the upstream group picked from
    Side client, upstream;
    // What ssl_preread read ($ssl_preread_*), and the PROXY header's
    // addresses ($proxy_protocol_addr; and the client's address, when
    // set_real_ip_from trusts the sender).
    ClientHelloInfo hello;
    bool has_hello = false;
    bool has_proxy_header = false;
    uint32_t pp_src_ip = 0, pp_dst_ip = 0;
    uint16_t pp_src_port = 0, pp_dst_port = 0;
    char pp_src_text[16] = {}, pp_dst_text[16] = {};
    Stage stage = Stage::kClientHandshake;
    bool parked = false;  // a handshake waits on async crypto (Proxy::parked_)
    int peer = -1;
    uint64_t tried = 0;
    uint32_t tries = 0;
    uint64_t first_try_us = 0;
    bool upstream_up = false;  // the upstream's TCP connection is established
    bool closing = false;      // proxy_half_close off: one side finished
    bool deferred = false;     // in Proxy::deferred_
    bool in_use = false;
    uint32_t next_free = 0;
    // The limit_conn counts this session holds (given back at its end).
    static constexpr unsigned kMaxLimits = 8;
    std::atomic<uint64_t>* limit_slots[kMaxLimits] = {};
    uint8_t n_limits = 0;
    // For terminusctl sessions and the access log.
    uint64_t started_us = 0;
    uint64_t bytes_to_upstream = 0, bytes_to_client = 0;
    SessionLog log;

    // Back to a free session's state (transports cannot be assigned).
    void reset();
    // The values variables take for this session.
    SessionVars vars() const;
    Side& other(const Side& s) { return &s == &client ? upstream : client; }
    Side* side_of(const tcp::Connection& c) {
        return &c == client.conn ? &client : &c == upstream.conn ? &upstream : nullptr;
    }
    TlsServerTransport* client_tls() { return std::get_if<TlsServerTransport>(&client.storage); }

    void on_established(tcp::Connection& c) override;
    void on_readable(tcp::Connection& c) override;
    void on_writable(tcp::Connection& c) override;
    void on_closed(tcp::Connection& c, tcp::CloseReason why) override;
};

// One core's sessions as terminusctl sessions shows them: counts by stage
// and the largest by bytes (Proxy::snapshot, on the core).
struct SessionsSnapshot {
    static constexpr size_t kStages = 6;  // Session::Stage
    static constexpr size_t kMaxTop = 32;
    uint32_t active = 0;
    uint32_t by_stage[kStages] = {};
    uint64_t tcp_states[tcp::kNumTcpStates] = {};  // the core's TCP connections by state
    struct Top {
        uint32_t client_ip = 0, upstream_ip = 0;
        uint16_t client_port = 0, local_port = 0, upstream_port = 0;
        uint64_t bytes_to_upstream = 0, bytes_to_client = 0;
        uint64_t age_us = 0;
        uint32_t generation = 0;
        uint8_t stage = 0;
        bool tls = false;
    } top[kMaxTop];
    size_t n_top = 0;
};
const char* stage_name(size_t stage);

class Proxy final : public Application {
  public:
    Proxy(tcp::Stack& stack, unsigned core, unsigned n_cores, uint32_t local_ip, unsigned max_sessions);

    // Builds this core's routes of generation GENERATION from CFG, over
    // SHARED and this core's TLS: TLS null when no server terminates TLS,
    // UPSTREAM_TLS null when none has proxy_ssl on. Reads only what does
    // not change: callable from another thread while the core runs.
    // ZONES: the limit_conn zones, parallel to CFG's limit_conn_zones.
    std::unique_ptr<Routes> make_routes(uint32_t generation, std::shared_ptr<const config::Config> cfg,
                                        const SharedUpstreams& shared, tls::CoreTls* tls,
                                        tls::UpstreamTls* upstream_tls,
                                        const std::vector<LimitZone*>& zones = {}) const;
    // On the core: new connections go to R from now on. Its ports are
    // listened on (replacing the previous generation's listener on the
    // same address and port; ports it lacks stop listening), the
    // previous routes are retired. Sessions keep the routes they began on.
    void install(Routes* r);
    // A retired generation's routes whose last session ended since the
    // last call (its core's only), or null: the caller tells their owner.
    Routes* take_released();
    // Fills OUT from this core's sessions (a scan of the sessions array:
    // for the operator, not the hot path).
    void snapshot(SessionsSnapshot& out) const;
    const Routes* current() const { return current_; }
    size_t retired() const { return retired_.size(); }
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
    // The current generation's TLS (null: none); the counts of every
    // generation, which outlive them.
    const tls::CoreTls* tls() const { return current_ ? current_->tls : nullptr; }
    const tls::UpstreamTls* upstream_tls() const { return current_ ? current_->upstream_tls : nullptr; }
    tls::TlsCounters& tls_counters() { return tls_counters_; }
    const tls::TlsCounters& tls_counters() const { return tls_counters_; }
    tls::UpstreamTlsCounters& upstream_tls_counters() { return upstream_tls_counters_; }
    const tls::UpstreamTlsCounters& upstream_tls_counters() const { return upstream_tls_counters_; }
    const config::Config& config() const { return *current_->cfg; }
    // Where this core's access log records go (null: nowhere, as before
    // the segment is made).
    void set_access_log(AccessLogRing* ring) { access_log_ = ring; }

  private:
    friend struct Session;
    friend class PortListener;

    uint32_t index(const Session& s) const { return static_cast<uint32_t>(&s - sessions_.get()); }
    Session* alloc_session();
    void free_session(Session& s);
    // The client side's first stage once any PROXY header is read.
    // allow/deny on the client's address; false: denied, and closed.
    bool check_access(Session& s);
    // limit_conn (nginx's preaccess phase, before allow/deny); false:
    // refused, and closed.
    bool check_limit(Session& s);
    // The content phase of a server with "return": the value, then close.
    void serve_return(Session& s);
    void begin_client(Session& s);
    void read_proxy_header(Session& s);
    void preread(Session& s);
    // Picks S's upstream group from its server's proxy_pass; false (the
    // client closed) when its value names none.
    bool route(Session& s);
    void connect_upstream(Session& s);
    // proxy_protocol on: the PROXY header, first on the upstream.
    void send_proxy_header(Session& s);
    // proxy_ssl: TLS to the upstream once its TCP is up.
    void start_upstream_tls(Session& s);
    void log_upstream_tls_failure(Session& s);
    // Passes what FROM's transport holds to TO's, as much as TO takes.
    void relay(Session& s, Side& from, Side& to);
    // Both directions (a side became ready or writable).
    void relay_both(Session& s);
    // Runs the handshake of SIDE as far as it goes, and what follows it.
    void handshake(Session& s, Side& side);
    void client_handshake_done(Session& s);
    void upstream_ready(Session& s);
    void park(Session& s);
    // FROM finished: TO finishes too, and FROM with proxy_half_close off.
    void finished(Session& s, Side& from, Side& to);
    // A side's transport ended badly: an alert is queued (ALERTED: close
    // after it, with a FIN) or not (reset); the other side follows.
    void side_failed(Session& s, Side& side, bool alerted);
    // Whether one more failure at LEVEL may be logged this second
    // (kLogBurst).
    bool may_log(config::LogLevel level);
    // Where messages about server block SERVER of S's generation go.
    const errlog::Target& error_log(const Session& s, size_t server) const;
    // The record of S, which ends now, when its server block logs.
    void log_session(Session& s);
    // A connection refused for want of a session (503), on PL.
    void log_refused(const tcp::Connection& c, PortListener& pl);
    void log_tls_failure(Session& s);
    void finish_if_done(Session& s);
    uint16_t pick_local_port(uint32_t remote_ip, uint16_t remote_port);

    tcp::Stack& stack_;
    unsigned core_;
    unsigned n_cores_;
    uint32_t local_ip_;
    uint64_t now_us_ = 0;
    // The generation new connections get, and the older ones sessions
    // still hold (retired; handed back once empty).
    Routes* current_ = nullptr;
    std::vector<Routes*> retired_;
    static constexpr size_t kMaxAddressBalancers = 256;
    // Where the first bytes of a client are copied to be looked at (as
    // large as any installed generation needs).
    std::unique_ptr<uint8_t[]> preread_buf_;
    uint32_t preread_cap_ = 0;
    tls::TlsCounters tls_counters_;
    tls::UpstreamTlsCounters upstream_tls_counters_;
    // Sessions whose handshake waits on async crypto that does not call
    // back (retried each turn), and the cookies of those whose operation
    // called back.
    std::vector<uint32_t> parked_;
    tls::AsyncReady async_ready_;
    // Sessions whose upstream bytes make less than a full record: they are
    // encrypted by poll(), after the rx burst (which may bring more) and
    // before tx, so that a burst of segments becomes one record, not one
    // record per segment, and no latency is added.
    std::vector<uint32_t> deferred_;
    bool flushing_ = false;           // poll() is writing the deferred records
    uint64_t log_window_us_ = 0;    // failure logs: at most kLogBurst per second
    unsigned logged_ = 0;
    uint64_t log_suppressed_ = 0;
    config::LogLevel log_suppressed_level_ = config::LogLevel::kDebug;  // the highest not logged
    AccessLogRing* access_log_ = nullptr;
    std::unique_ptr<Session[]> sessions_;
    unsigned n_sessions_;
    uint32_t free_head_;
    uint16_t next_port_ = 32768;
    bool stopping_ = false;
    ProxyCounters counters_;
};

}  // namespace terminus::dataplane::proxy
