// TLS towards the upstream ("proxy_ssl on"): one client SSL_CTX per
// server{} and core, built in that core's OSSL_LIB_CTX; one connection
// (UpstreamConnection) over a Transport, which names the upstream for
// verification and SNI, offers the latest session the upstream gave any
// core, and sorts failures by reason; and the exchange that makes a
// session saved on one core resumable on all of them.
//
// Unlike nginx, Terminus verifies upstream certificates by default
// (proxy_ssl_verify on), against proxy_ssl_trusted_certificate or, when
// none is given, the system's store.
//
// How the proxy uses it:
//   start:   SharedUpstreamTls::create(cfg, n_cores) once, then on every
//            core UpstreamTls::create(cfg, shared, core, libctx) with that
//            core's CoreTls::libctx(), or null when the core has no
//            CoreTls (no listen is ssl): the UpstreamTls then owns a
//            library context of its own. A borrowed one must outlive it,
//            and every UpstreamConnection must end before its UpstreamTls.
//   connect: UpstreamConnection(tls, key, transport, name, alpn) once the
//            TCP connection is up; handshake() on readable and writable
//            until kDone or kFailed; on the handshake timeout,
//            fail(UpstreamFailure::k_timeout).
//   data:    read()/write() as ClientEndpoint's.
//   close:   shutdown() for a clean end (close_notify), then destroy. A
//            connection destroyed without a clean end (no shutdown(), no
//            close_notify or EOF read from the upstream) or that failed
//            takes the sessions it used and gave out of reuse, on every
//            core.
//   poll:    UpstreamTls::poll() from the core's poller list: it shares
//            the sessions this core saved and applies what others sent.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "config/result.h"
#include "tls/tls.h"

namespace terminus::tls {

struct ExchangeSlot;

// Why handshakes with upstreams fail, each counted per core and per
// server{}. The certificate reasons come from SSL_get_verify_result.
#define TERMINUS_UPSTREAM_TLS_FAILURES(X)                                                          \
    X(unknown_ca, "upstream certificates not issued by a trusted CA")                               \
    X(self_signed, "upstream certificates that are self-signed and not trusted")                    \
    X(name_mismatch, "upstream certificates not valid for proxy_ssl_name")                          \
    X(expired, "upstream certificates past their notAfter")                                         \
    X(not_yet_valid, "upstream certificates before their notBefore")                                \
    X(revoked, "upstream certificates revoked by proxy_ssl_crl")                                    \
    X(no_crl, "upstream certificates whose issuer has no valid CRL in proxy_ssl_crl")               \
    X(chain_too_long, "upstream certificate chains longer than proxy_ssl_verify_depth")             \
    X(bad_certificate, "upstream certificates that failed verification otherwise (signature, use)") \
    X(no_certificate, "upstreams that presented no certificate to verify")                          \
    X(client_cert_required, "upstreams that asked for a client certificate: no proxy_ssl_certificate") \
    X(client_cert_refused, "upstreams that refused the proxy_ssl_certificate presented")            \
    X(no_shared_protocol, "upstream handshakes with no protocol version in common")                 \
    X(no_shared_cipher, "upstream handshakes with no cipher, group or signature in common")         \
    X(no_shared_alpn, "upstreams that accept none of the ALPN protocols offered")                   \
    X(peer_alert, "upstream handshakes ended by another alert from the upstream")                   \
    X(peer_closed, "upstreams that closed the connection during the handshake")                     \
    X(timeout, "upstream handshakes not done within proxy_connect_timeout")                         \
    X(malformed, "upstream handshakes with garbage or protocol violations")                         \
    X(internal, "upstream handshakes that failed on our side")

#define TERMINUS_UPSTREAM_TLS_COUNTERS(X)                                                     \
    X(handshakes_full, "full handshakes with upstreams completed")                            \
    X(handshakes_resumed, "handshakes with upstreams that resumed a session")                 \
    X(sessions_offered, "upstream handshakes that offered a saved session")                   \
    X(sessions_refused, "offered sessions the upstream did not resume")                       \
    X(sessions_saved, "sessions upstreams gave this core, kept for the next connect")         \
    X(sessions_dropped, "upstream sessions dropped: failed, ended uncleanly, expired")        \
    X(sessions_sent, "upstream sessions and drops sent to the other cores")                   \
    X(sessions_received, "upstream sessions and drops applied for another core")              \
    X(sessions_not_sent, "upstream sessions not shared: no slot, ring full or too big")       \
    X(async_parked, "upstream handshake steps parked by an asynchronous crypto operation")    \
    X(bytes_decrypted, "plaintext bytes received from upstreams")                             \
    X(bytes_encrypted, "plaintext bytes sent to upstreams")                                   \
    X(bad_records, "upstream connections ended by a bad record or alert after the handshake")

enum class UpstreamFailure : uint8_t {
#define TERMINUS_X(name, help) k_##name,
    TERMINUS_UPSTREAM_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
    kCount
};
// The counter's name ("unknown_ca").
const char* to_string(UpstreamFailure f);
// A short phrase for the log line ("certificate not issued by a trusted CA").
const char* describe(UpstreamFailure f);

struct UpstreamTlsCounters {
#define TERMINUS_X(name, help) uint64_t name = 0;
    TERMINUS_UPSTREAM_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    uint64_t failed[static_cast<size_t>(UpstreamFailure::kCount)] = {};
};

// What a failed handshake left to say why, gathered while it ran.
struct HandshakeTrace {
    int alert_received = -1;      // the upstream's fatal alert (SSL_AD_*), -1: none
    int alert_sent = -1;          // our fatal alert, -1: none
    unsigned long error = 0;      // OpenSSL's first error when ours went out
    bool cert_requested = false;  // the upstream sent a CertificateRequest
    bool had_cert = false;        // we had a proxy_ssl_certificate to send
};

// One reason for a failed upstream handshake: VERIFY_RESULT is
// SSL_get_verify_result (looked at only when VERIFY: proxy_ssl_verify on),
// EOF whether the transport saw the upstream finish.
UpstreamFailure classify(const HandshakeTrace& trace, long verify_result, bool verify, bool eof);

// Which upstream a session belongs to: the server{} that proxies to it and
// the peer's address and port.
struct UpstreamKey {
    uint32_t server = 0;   // index in Config::servers
    uint32_t address = 0;  // IPv4, host order
    uint16_t port = 0;
    bool operator==(const UpstreamKey& o) const {
        return server == o.server && address == o.address && port == o.port;
    }
};

struct UpstreamKeyHash {
    size_t operator()(const UpstreamKey& k) const {
        return (static_cast<size_t>(k.address) << 16 | k.port) * 0x9e3779b97f4a7c15ULL ^ k.server;
    }
};

// One upstream peer on one core: its counts (readers sum the cores) and
// the latest resumable session any core got from it.
struct UpstreamPeer {
    UpstreamKey key;
    uint64_t handshakes_full = 0;
    uint64_t handshakes_resumed = 0;
    SSL_SESSION* session = nullptr;  // one reference, ours
    std::string name;                // what the session's certificate was verified for
    bool dirty = false;              // saved here, not yet shared
};

// What the cores share: the rings of the session exchange (none with one
// core or without proxy_ssl_session_reuse).
class SharedUpstreamTls {
  public:
    // CARRY: the exchange to use and the generation to stamp (null: one
    // made here).
    static Result<std::unique_ptr<SharedUpstreamTls>> create(const config::Config& cfg, unsigned n_cores = 1,
                                                             const TlsCarry* carry = nullptr);
    ~SharedUpstreamTls();
    SessionExchange* exchange() const { return exchange_.get(); }
    uint32_t generation() const { return generation_; }

  private:
    SharedUpstreamTls() = default;
    std::shared_ptr<SessionExchange> exchange_;
    uint32_t generation_ = 0;
};

// One server{} with "proxy_ssl on" on one core.
struct UpstreamServerTls {
    size_t server = 0;  // index in Config::servers
    SSL_CTX* ctx = nullptr;
    bool verify = false;       // proxy_ssl_verify
    bool server_name = false;  // proxy_ssl_server_name
    bool reuse = false;        // proxy_ssl_session_reuse
    bool has_cert = false;     // proxy_ssl_certificate
    uint64_t failed[static_cast<size_t>(UpstreamFailure::kCount)] = {};
};

// One core's upstream TLS.
class UpstreamTls {
  public:
    // Builds one client SSL_CTX per server{} of CFG with proxy_ssl on, in
    // LIBCTX (this core's CoreTls::libctx(); null: a library context of
    // its own), loading every file. CORE: this core's index, for the
    // exchange.
    // COUNTERS: where this core's counts go (null: counters_own_).
    static Result<std::unique_ptr<UpstreamTls>> create(const config::Config& cfg, const SharedUpstreamTls& shared,
                                                       unsigned core = 0, OSSL_LIB_CTX* libctx = nullptr,
                                                       UpstreamTlsCounters* counters = nullptr);
    ~UpstreamTls();
    UpstreamTls(const UpstreamTls&) = delete;
    UpstreamTls& operator=(const UpstreamTls&) = delete;

    // The upstream TLS of server SERVER (index in Config::servers), or
    // null when it has no proxy_ssl.
    UpstreamServerTls* server(size_t server);
    OSSL_LIB_CTX* libctx() const { return libctx_; }
    unsigned core() const { return core_; }

    // The session to offer KEY when its certificate must match NAME, or
    // null. Borrowed: valid until this core's next poll() or connection
    // event; SSL_set_session takes its own reference. A session that
    // expired or that OpenSSL marked unresumable is dropped here.
    SSL_SESSION* session_for(const UpstreamKey& key, std::string_view name);

    // Shares the sessions saved since the last call, then applies what
    // the other cores sent (a burst). Returns whether it did either.
    bool poll();

    // The peers this core has connected to or heard of, with their counts.
    const std::deque<UpstreamPeer>& peers() const { return peers_; }
    const UpstreamPeer* peer(const UpstreamKey& key) const;

  private:
    UpstreamTlsCounters counters_own_;

  public:
    UpstreamTlsCounters& counters;

    // For UpstreamConnection and OpenSSL's callbacks.
    UpstreamPeer& peer_for(const UpstreamKey& key);
    SSL_SESSION* session_for(UpstreamPeer& p, std::string_view name);
    void save(UpstreamPeer& p, std::string_view name, SSL_SESSION* sess);
    void drop(UpstreamPeer& p, const uint8_t* id, unsigned id_len, bool share);

  private:
    UpstreamTls(const config::Config& cfg, const SharedUpstreamTls& shared, UpstreamTlsCounters* c)
        : counters(c ? *c : counters_own_), cfg_(cfg), shared_(shared) {}
    Result<bool> build_server(size_t index);
    void send(const UpstreamPeer& p, const uint8_t* drop_id, unsigned drop_len);
    void apply(const ExchangeSlot& s);

    const config::Config& cfg_;
    const SharedUpstreamTls& shared_;
    unsigned core_ = 0;
    OSSL_LIB_CTX* libctx_ = nullptr;
    OSSL_LIB_CTX* own_libctx_ = nullptr;  // when none was given
    OSSL_PROVIDER* own_provider_ = nullptr;
    std::vector<std::unique_ptr<UpstreamServerTls>> servers_;  // parallel to cfg.servers
    std::deque<UpstreamPeer> peers_;                           // stable addresses
    std::unordered_map<UpstreamKey, size_t, UpstreamKeyHash> index_;
    std::vector<UpstreamPeer*> dirty_;  // to share at the next poll()
};

// One TLS connection to an upstream, client side, over a Transport.
class UpstreamConnection {
  public:
    using Status = ClientEndpoint::Status;

    // KEY.server must have proxy_ssl on (else the handshake fails,
    // internal). NAME: proxy_ssl_name's value, or the host of proxy_pass
    // (a ":port" is cut off, as nginx does): the name the certificate
    // must match under proxy_ssl_verify (empty: the chain alone is
    // verified) and, under proxy_ssl_server_name, the SNI (never an IP
    // literal, RFC 6066 3). ALPN: one protocol to offer instead of
    // proxy_ssl_alpn, such as the one the client negotiated (empty:
    // proxy_ssl_alpn, if any).
    UpstreamConnection(UpstreamTls& core, const UpstreamKey& key, Transport& t, std::string_view name,
                       std::string_view alpn = {});
    ~UpstreamConnection();
    UpstreamConnection(const UpstreamConnection&) = delete;
    UpstreamConnection& operator=(const UpstreamConnection&) = delete;

    // As far as the received bytes allow; counts the outcome once.
    Status handshake();
    bool established() const { return endpoint_->established() && !failed_; }
    bool resumed() const { return endpoint_->resumed(); }
    // A handshake step waits for an asynchronous crypto operation.
    bool parked() const { return parked_; }
    // The handshake failed or was cut short (k_timeout from the caller):
    // counts F, once.
    void fail(UpstreamFailure f);
    bool failed() const { return failed_; }
    UpstreamFailure failure() const { return failure_; }
    // For the log line: X509_verify_cert_error_string of a certificate
    // that did not verify, else null.
    const char* verify_error() const;
    // The name the certificate was checked against (after ":port" is cut).
    std::string_view name() const { return {name_, name_len_}; }

    // After the handshake: ClientEndpoint's (RecordLayer) semantics. A
    // TLS 1.3 upstream refuses a client certificate only after our side
    // finished: read() then fails with its alert, failed() turns true
    // and failure() says why (the handshake is counted then, not at kDone).
    int read(void* dst, uint32_t len);
    int write(const void* src, uint32_t len);
    uint32_t write_room() const { return endpoint_->write_room(); }
    uint32_t pending_write() const { return endpoint_->pending_write(); }
    // Sends close_notify: the end is clean, the session stays reusable.
    void shutdown();

    SSL* ssl() const { return endpoint_->ssl(); }
    const HandshakeTrace& trace() const { return trace_; }

    // From OpenSSL's callbacks.
    void on_info(int where, int ret);
    int on_new_session(SSL_SESSION* sess);

  private:
    void count_done();
    void remember(SSL_SESSION* sess, uint8_t* id, uint8_t& len);

    UpstreamTls& core_;
    UpstreamServerTls* st_ = nullptr;
    UpstreamPeer& peer_;
    Transport& transport_;
    std::optional<ClientEndpoint> endpoint_;
    HandshakeTrace trace_;
    UpstreamFailure failure_ = UpstreamFailure::kCount;
    char name_[256];
    size_t name_len_ = 0;
    uint8_t offered_id_[SSL_MAX_SSL_SESSION_ID_LENGTH];
    uint8_t offered_len_ = 0;  // 0: no session offered
    uint8_t saved_id_[SSL_MAX_SSL_SESSION_ID_LENGTH];
    uint8_t saved_len_ = 0;  // 0: none saved from this connection
    bool counted_ = false;
    bool count_pending_ = false;  // TLS 1.3 and a CertificateRequest: count when the upstream answers
    bool failed_ = false;
    bool broken_ = false;  // a bad record, an alert or a failed write after the handshake
    bool parked_ = false;
    bool clean_ = false;  // shutdown(), or the upstream's close_notify or EOF
};

}  // namespace terminus::tls
