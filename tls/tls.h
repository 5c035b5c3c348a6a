// TLS termination: the per-core OpenSSL contexts built from the server{}
// blocks that "listen ... ssl", the choice of server block by SNI, and one
// TLS connection (Endpoint) over a byte stream (Transport: a dataplane TCP
// connection, or a memory pipe in tests). OpenSSL does the handshakes;
// after it, records go through a RecordLayer, which a batched, offloaded
// engine will replace.
//
// Nothing here blocks, allocates per record, or takes a lock: every lcore
// has its own CoreTls (its own OSSL_LIB_CTX and SSL_CTXs), and handshakes
// run in SSL_MODE_ASYNC so that an offloading provider can park them.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "config/result.h"

namespace terminus::tls {

// The byte stream under a TLS connection.
class Transport {
  public:
    virtual ~Transport() = default;
    // Copies up to LEN received bytes to DST; 0 when none wait.
    virtual uint32_t read(void* dst, uint32_t len) = 0;
    // The peer finished sending and every byte was read.
    virtual bool eof() const = 0;
    // Queues up to LEN bytes to send; returns how many fit.
    virtual uint32_t write(const void* src, uint32_t len) = 0;
    // Room to queue bytes now.
    virtual uint32_t write_space() const = 0;
    // Holds small writes back until flush() (the records of one flight
    // then leave in as few segments as they fill).
    virtual void cork() = 0;
    virtual void flush() = 0;
};

// Why handshakes fail, each counted (per core and per server block).
#define TERMINUS_TLS_FAILURES(X)                                                        \
    X(timeout, "handshakes not done within ssl_handshake_timeout")                       \
    X(no_shared_protocol, "handshakes with no protocol version in common")               \
    X(no_shared_cipher, "handshakes with no cipher, group or signature in common")       \
    X(unknown_sni, "handshakes refused for their server name (ssl_reject_handshake)")    \
    X(no_client_cert, "handshakes without the client certificate ssl_verify_client asks") \
    X(bad_client_cert, "handshakes with a client certificate that did not verify")        \
    X(no_shared_alpn, "handshakes with no ALPN protocol in common")                      \
    X(peer_alert, "handshakes ended by an alert from the client")                        \
    X(peer_closed, "clients that closed the connection during the handshake")           \
    X(malformed, "handshakes with garbage, oversized records or protocol violations")    \
    X(internal, "handshakes that failed on our side")

#define TERMINUS_TLS_COUNTERS(X)                                                    \
    X(handshakes_full, "full handshakes completed")                                 \
    X(handshakes_resumed_cache, "handshakes resumed from the session cache")        \
    X(handshakes_resumed_ticket, "handshakes resumed from a session ticket")        \
    X(proto_tls10, "handshakes completed with TLS 1.0")                            \
    X(proto_tls11, "handshakes completed with TLS 1.1")                            \
    X(proto_tls12, "handshakes completed with TLS 1.2")                            \
    X(proto_tls13, "handshakes completed with TLS 1.3")                            \
    X(cipher_aes128_gcm, "handshakes completed with AES-128-GCM")                  \
    X(cipher_aes256_gcm, "handshakes completed with AES-256-GCM")                  \
    X(cipher_chacha20_poly1305, "handshakes completed with ChaCha20-Poly1305")     \
    X(cipher_other, "handshakes completed with another cipher")                    \
    X(cert_ecdsa, "handshakes that presented the ECDSA certificate")               \
    X(cert_rsa, "handshakes that presented the RSA certificate")                   \
    X(client_certs, "handshakes with a verified client certificate")               \
    X(async_parked, "handshake steps parked by an asynchronous crypto operation")  \
    X(bytes_decrypted, "plaintext bytes received from TLS clients")                \
    X(bytes_encrypted, "plaintext bytes sent to TLS clients")                      \
    X(records_encrypted, "application data records sent to TLS clients")          \
    X(bad_records, "connections closed for a bad record after the handshake")      \
    X(sessions_sent, "new and removed cache sessions sent to the other cores")     \
    X(sessions_received, "cache sessions added or removed for another core")       \
    X(sessions_not_sent, "cache changes not shared: no slot, ring full or too big")

enum class Failure : uint8_t {
#define TERMINUS_X(name, help) k_##name,
    TERMINUS_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
    kCount
};
const char* to_string(Failure f);

struct TlsCounters {
#define TERMINUS_X(name, help) uint64_t name = 0;
    TERMINUS_TLS_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    uint64_t failed[static_cast<size_t>(Failure::kCount)] = {};
};

// Session ticket keys, shared by every core: the keys of a server's
// ssl_session_ticket_key files (the first encrypts, the others only
// decrypt), or random keys that the control thread rotates, keeping the
// previous one for decryption. Readers (lcores) never lock: a rotation
// writes a slot no reader uses and then publishes its index.
class TicketKeys {
  public:
    struct Key {
        uint8_t name[16];
        uint8_t hmac[32];
        uint8_t aes[32];
        uint8_t size;  // 48 (AES-128, HMAC key of 16) or 80 (AES-256, 32), nginx's formats
    };
    // Keys from nginx-format files, 48 or 80 bytes each.
    static Result<std::unique_ptr<TicketKeys>> from_files(const std::vector<std::string>& paths);
    // One random 80-byte key, rotated by rotate().
    static std::unique_ptr<TicketKeys> random();
    // A new random encrypting key; the current one only decrypts from now.
    void rotate();
    // Keys from terminus-mgmtd (dataplane/control.cc, "tickets set"): CUR
    // encrypts from now and PREV, when given and not held, is installed
    // before it so that it still decrypts. Nothing changes when CUR is the
    // current or the previous key already (in step with mgmtd, or rotated
    // past it since). Returns whether anything changed. Random sets only.
    bool set(const Key& cur, const Key* prev);
    // The names of the current and previous keys (random sets; the first
    // two file keys otherwise).
    const uint8_t* current_name() const;
    const uint8_t* previous_name() const;
    bool holds(const uint8_t* name) const;
    // An 80-byte key in nginx's layout (name, HMAC key, AES-256 key) as
    // 160 hex digits, and back; false when TEXT is not that.
    static bool parse_hex(std::string_view text, Key& out);
    static std::string to_hex(const Key& k);
    static std::string name_hex(const uint8_t* name);

    const Key& encrypting() const;
    // The key called NAME, or null; RENEW: it no longer encrypts.
    const Key* find(const uint8_t* name, bool& renew) const;

  private:
    TicketKeys() = default;
    // Writes K into the slot no reader uses and publishes it.
    void install(const Key& k);
    static constexpr unsigned kSlots = 3;  // current, previous, and the one being written
    std::vector<Key> file_keys_;           // from files: fixed
    Key slots_[kSlots] = {};
    std::atomic<unsigned> current_{0};
    bool rotating_ = false;
};

class SessionExchange;

// What outlives one configuration (terminusd's generations, reloads): the
// random ticket keys, so that tickets issued before a reload still resume,
// and the session exchanges, whose transports are wired to the cores once.
// GENERATION stamps every exchanged entry; a core applies only those of
// the generation it serves (server indices differ between them).
struct TlsCarry {
    std::shared_ptr<TicketKeys> random_keys;
    std::shared_ptr<SessionExchange> sessions;           // ssl_session_cache shared
    std::shared_ptr<SessionExchange> upstream_sessions;  // proxy_ssl_session_reuse
    uint32_t generation = 0;
};

// What all cores share: ticket keys (one set per server with key files,
// one random set for the others) and the rings over which the per-core
// session caches of "ssl_session_cache shared" exchange their entries.
struct SharedTls {
    // CARRY: the keys and exchange to use (null: made here, for this
    // SharedTls alone).
    static Result<std::unique_ptr<SharedTls>> create(const config::Config& cfg, unsigned n_cores = 1,
                                                     const TlsCarry* carry = nullptr);
    SharedTls();
    ~SharedTls();
    std::shared_ptr<TicketKeys> random_keys;
    std::vector<std::unique_ptr<TicketKeys>> file_keys;  // parallel to Config::servers
    std::shared_ptr<SessionExchange> exchange;           // null: no shared cache, or one core
    uint32_t generation = 0;                             // stamped on exchanged entries
    TicketKeys* keys_for(size_t server) const;
};

class CoreTls;

// One server{} with "listen ... ssl" on one core: its SSL_CTX and counts.
struct ServerTls {
    CoreTls* core = nullptr;
    TicketKeys* tickets = nullptr;
    size_t server = 0;  // index in Config::servers
    SSL_CTX* ctx = nullptr;
    bool reject = false;  // ssl_reject_handshake
    uint64_t failed[static_cast<size_t>(Failure::kCount)] = {};
    std::vector<uint8_t> alpn;      // ssl_alpn in wire format
    std::vector<uint8_t> ocsp_der;  // ssl_stapling_file
    int min_version = 0, max_version = 0;
};

// The servers that share one listening address and port, and how SNI
// picks among them (nginx's server_name rules). One per core: the
// compiled regular expressions keep per-match state.
struct ListenGroup {
    uint32_t address = 0;
    uint16_t port = 0;
    bool ssl = false;
    std::vector<size_t> servers;  // indices in Config::servers
    size_t default_server = 0;    // index in Config::servers
    struct Regex {
        size_t server;
        std::shared_ptr<void> code;   // pcre2_code
        std::shared_ptr<void> match;  // pcre2_match_data
    };
    std::vector<Regex> regexes;  // in the order written
};

// Groups CFG's servers by listen address and port.
std::vector<ListenGroup> listen_groups(const config::Config& cfg);

// Which server of G the name SNI selects (nginx: exact name, longest
// "*.example.com" or ".example.com", longest "www.example.*", first
// matching regex, then the default server). SNI may be null or empty.
size_t select_server(const config::Config& cfg, const ListenGroup& g, const char* sni);

class CoreTls {
  public:
    // Builds one OSSL_LIB_CTX and, in it, one SSL_CTX per TLS server of
    // CFG, loading every certificate, key and file. CORE: this core's
    // index, for the session exchange.
    // COUNTERS: where this core's counts go (they outlive a generation's
    // contexts); null: counters_own.
    static Result<std::unique_ptr<CoreTls>> create(const config::Config& cfg, const SharedTls& shared,
                                                   unsigned core = 0, TlsCounters* counters = nullptr);
    ~CoreTls();
    CoreTls(const CoreTls&) = delete;
    CoreTls& operator=(const CoreTls&) = delete;

    // The TLS state of server SERVER (index in Config::servers), or null.
    ServerTls* server(size_t server);
    const ServerTls* server(size_t server) const;
    const config::Config& config() const { return cfg_; }
    OSSL_LIB_CTX* libctx() const { return libctx_; }

    // Ciphers for session tickets, fetched once.
    EVP_CIPHER* ticket_cipher(uint8_t key_size) const { return key_size == 48 ? aes128_cbc_ : aes256_cbc_; }

    // Applies the session-cache changes other cores sent (a burst);
    // returns whether there were any.
    bool poll();
    // From OpenSSL's cache callbacks: share an added or removed session.
    void share_new(size_t server, SSL_SESSION* sess);
    void share_removed(size_t server, SSL_SESSION* sess);
    unsigned core() const { return core_; }

  private:
    TlsCounters counters_own_;

  public:
    TlsCounters& counters;

  private:
    CoreTls(const config::Config& cfg, const SharedTls& shared, TlsCounters* c)
        : counters(c ? *c : counters_own_), cfg_(cfg), shared_(shared) {}
    Result<bool> build_server(size_t index);

    unsigned core_ = 0;
    bool applying_ = false;  // applying a peer's change: do not echo it back
    bool closing_ = false;   // being freed: removals go nowhere
    // Sessions in this core's shared-cache contexts by server and ID (one
    // reference each): OpenSSL removes a session only given the very
    // object its cache holds.
    std::unordered_map<std::string, SSL_SESSION*> cached_;
    static std::string cache_key(size_t server, const unsigned char* id, unsigned id_len);
    const config::Config& cfg_;
    const SharedTls& shared_;
    OSSL_LIB_CTX* libctx_ = nullptr;
    OSSL_PROVIDER* default_provider_ = nullptr;
    EVP_CIPHER* aes128_cbc_ = nullptr;
    EVP_CIPHER* aes256_cbc_ = nullptr;
    std::vector<std::unique_ptr<ServerTls>> servers_;  // parallel to cfg.servers
};

// Where a parked handshake says it may go on. An offloading provider or
// engine that supports callbacks (ASYNC_WAIT_CTX_set_callback, as Intel's
// QAT engine does in its callback mode) calls back when its operation
// completes; the callback appends the endpoint's cookie here, and the
// core's poller resumes exactly those handshakes. Without that support
// (ASYNC_STATUS_UNSUPPORTED) a parked handshake must be retried each turn
// of the loop. One per core; reserve room for every session so that the
// callback never allocates.
struct AsyncReady {
    std::vector<uint32_t> cookies;
};

// What carries records once the handshake is done. OpenSSL's record
// layer now; a batched, offloaded AEAD engine replaces it later.
class RecordLayer {
  public:
    virtual ~RecordLayer() = default;
    // What read() and write() return below zero.
    static constexpr int kPeerClosed = -1;  // close_notify or EOF: the peer finished sending
    static constexpr int kFailed = -2;      // nothing was or can be sent: reset the connection
    static constexpr int kAlerted = -3;     // a fatal alert went out (or came in): close with a FIN
    // Decrypts into DST; > 0 bytes, 0: nothing complete yet (a KeyUpdate
    // that asked for ours is answered on the way), kPeerClosed,
    // kAlerted: a record that does not decrypt, a message not allowed
    // now (a ClientHello or Certificate after a TLS 1.3 handshake, a
    // KeyUpdate of an unknown type) or the peer's fatal alert. The alert
    // OpenSSL chose is already in the transport, flushed (lost only when
    // the transport had no room, or one of our records was half sent);
    // send nothing more, drop what is still received, close with a FIN,
    // as nginx does (SSL_ERROR_SSL: no close_notify, then close()). Every
    // later read() returns kAlerted again. kFailed: the transport failed.
    virtual int read(void* dst, uint32_t len) = 0;
    // Encrypts up to LEN bytes of SRC; > 0 bytes taken, 0: no room in the
    // transport, kFailed: failed. After a 0, the next call must offer the
    // same bytes again, at least pending_write() of them.
    virtual int write(const void* src, uint32_t len) = 0;
    virtual uint32_t pending_write() const = 0;
    // Plaintext bytes the transport has room for now, records included.
    virtual uint32_t write_room() const = 0;
};

// One TLS connection, server side.
class Endpoint {
  public:
    Endpoint(CoreTls& core, const ListenGroup& group, Transport& t);
    ~Endpoint();
    Endpoint(const Endpoint&) = delete;
    Endpoint& operator=(const Endpoint&) = delete;

    enum class Status { kAgain, kDone, kFailed };
    // Runs the handshake as far as the received bytes allow.
    Status handshake();
    bool established() const { return done_; }
    // A handshake step waits for an asynchronous crypto operation.
    bool parked() const { return parked_; }
    // When parked: the operation will call back (READY gets COOKIE), so
    // no retry is needed until then.
    bool parked_with_callback() const { return parked_ && async_.callback; }
    void notify_async(AsyncReady* ready, uint32_t cookie) { async_.ready = ready, async_.cookie = cookie; }
    // The handshake failed or was cut short: why.
    void fail(Failure f);
    Failure failure() const { return failure_; }
    // The OpenSSL error behind failure() (ERR_get_error's form, for
    // ERR_reason_error_string), 0 when none (an EOF, a timeout).
    unsigned long error() const { return error_; }

    // The server block SNI chose (index in Config::servers).
    size_t server() const { return server_; }
    const std::string& sni() const { return sni_; }

    // After the handshake: plaintext in and out (RecordLayer semantics;
    // the first kAlerted that was not the client's own alert counts a
    // bad record).
    int read(void* dst, uint32_t len);
    int write(const void* src, uint32_t len);
    uint32_t write_room() const;
    uint32_t pending_write() const;
    // Sends close_notify (best effort).
    void shutdown();

    SSL* ssl() const { return ssl_; }
    // Set by the ticket callback: the session came from a ticket.
    void note_ticket() { ticket_used_ = true; }
    int on_client_hello(int* alert);

  private:
    void count_done();

    CoreTls& core_;
    const ListenGroup& group_;
    Transport& transport_;
    SSL* ssl_ = nullptr;
    std::unique_ptr<RecordLayer> records_;
    size_t server_ = 0;
    std::string sni_;
    Failure failure_ = Failure::kCount;
    unsigned long error_ = 0;
    bool done_ = false;
    bool parked_ = false;
    bool failed_ = false;
    bool ticket_used_ = false;

  public:
    struct AsyncHook {
        AsyncReady* ready = nullptr;
        uint32_t cookie = 0;
        bool callback = false;  // the last park will be called back
    };

  private:
    AsyncHook async_;
    bool bad_record_ = false;
};

// One TLS connection, client side, over a Transport: the load generator's
// clients now, the re-encrypting proxy's upstream side later. The caller
// owns the SSL_CTX (it holds the policy: versions, groups, verification).
class ClientEndpoint {
  public:
    // SNI: the server name to send (null: none). RESUME: a session to
    // offer (null: a full handshake).
    ClientEndpoint(SSL_CTX* ctx, Transport& t, const char* sni, SSL_SESSION* resume);
    // The server side of CTX instead (SSL_set_accept_state), with the same
    // handshake, records and shutdown: the load generator's TLS backend,
    // a plain SSL_CTX with no CoreTls or configuration behind it.
    struct Accept {};
    ClientEndpoint(SSL_CTX* ctx, Transport& t, Accept);
    ~ClientEndpoint();
    ClientEndpoint(const ClientEndpoint&) = delete;
    ClientEndpoint& operator=(const ClientEndpoint&) = delete;

    enum class Status { kAgain, kDone, kFailed };
    Status handshake();
    bool established() const { return done_; }
    // After kFailed: why, in the server side's classes (peer_closed,
    // malformed, peer_alert, no_shared_protocol...; k_bad_client_cert
    // here is the server's certificate: SSL_get_verify_result(ssl())
    // says what failed), and the OpenSSL error behind it (as Endpoint's).
    // Not counted here: the caller counts what it needs.
    Failure failure() const { return failure_; }
    unsigned long error() const { return error_; }
    // The server accepted the offered session (after the handshake).
    bool resumed() const;
    // As Endpoint's.
    bool parked() const { return parked_; }
    bool parked_with_callback() const { return parked_ && async_.callback; }
    void notify_async(AsyncReady* ready, uint32_t cookie) { async_.ready = ready, async_.cookie = cookie; }
    // After the handshake: RecordLayer semantics.
    int read(void* dst, uint32_t len);
    int write(const void* src, uint32_t len);
    uint32_t write_room() const;
    uint32_t pending_write() const;
    // Sends close_notify and marks the session resumable: a session is
    // only offered again after a clean end (ssl_clear_bad_session).
    void shutdown();
    // The session to offer next time (one reference, the caller's), or
    // null. In TLS 1.3 it exists once a NewSessionTicket was read.
    SSL_SESSION* get1_session() const;
    SSL* ssl() const { return ssl_; }

  private:
    Transport& transport_;
    SSL* ssl_ = nullptr;
    std::unique_ptr<RecordLayer> records_;
    Failure failure_ = Failure::kCount;
    unsigned long error_ = 0;
    bool done_ = false;
    bool failed_ = false;
    bool parked_ = false;
    Endpoint::AsyncHook async_;
};

}  // namespace terminus::tls
