// One side of a proxied session — the client's connection or the
// upstream's — as the relay sees it: plaintext that the side's peer sent,
// waiting to be passed on, and room to send it plaintext. Under that, a
// transport: plain TCP (received segments relinked into the other side's
// send queue, no copy), TLS as the server (the client side of a
// terminating listen) or TLS as the client (proxy_ssl towards the
// upstream). The relay moves bytes from one side's pending() to the
// other side's send() whatever the two transports are, so a session is
// two sides and a policy, not one code path per combination (the shape of
// Envoy's Network::TransportSocket). Private to dataplane/.
#pragma once

#include <cstdint>
#include <string_view>

#include "dataplane/tcp/tcp.h"
#include "dataplane/tcp_transport.h"
#include "tls/tls.h"
#include "tls/upstream.h"

namespace terminus::dataplane::proxy {

class Transport {
  public:
    enum class Kind : uint8_t { kPlain, kTlsServer, kTlsClient };
    // A handshake step.
    enum class Step : uint8_t { kAgain, kDone, kFailed };
    // What receiving ended with.
    enum class Recv : uint8_t {
        kOk,       // pending() holds what there is; more may come
        kEnd,      // the peer finished (FIN, close_notify): nothing more comes
        kAlerted,  // a bad record: our fatal alert is queued; close after it
        kFailed,   // the connection is unusable: reset
    };
    // What sending ended with.
    enum class Sent : uint8_t {
        kOk,      // everything offered went, or the rest waits for room (on_writable)
        kDefer,   // a short record waits for the end of the receive burst
        kFailed,  // the connection is unusable: reset
    };
    // What a send may know about the moment: inside the rx burst a short
    // record can wait for the burst's end; an upstream that finished sends
    // nothing more, so nothing is worth waiting for.
    struct SendHints {
        uint64_t now_us = 0;
        bool flushing = false;  // after the burst: short records go now
        bool source_done = false;
    };

    Transport(Kind k, tcp::Stack& stack, tcp::Connection& conn) : kind_(k), stack_(stack), conn_(&conn) {}
    virtual ~Transport() = default;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    Kind kind() const { return kind_; }
    tcp::Connection* conn() const { return conn_; }
    // The connection is gone: nothing may touch it from here.
    virtual void detach() { conn_ = nullptr; }

    // The handshake, as far as the received bytes allow (plain: done).
    virtual Step handshake() { return Step::kDone; }
    virtual bool established() const { return true; }

    // Receiving. PENDING: plaintext the peer sent, not yet passed on.
    virtual tcp::ByteQueue& pending() = 0;
    // Makes up to LIMIT bytes pending (TLS decrypts records; plain TCP has
    // them in its receive queue already).
    virtual Recv fill(uint32_t limit) = 0;
    // N pending bytes were passed on.
    virtual void consume(uint32_t n) = 0;
    // The peer finished and every byte of it was passed on.
    virtual bool drained() const = 0;

    // Sending. Plaintext bytes this side takes now.
    virtual uint32_t room() const = 0;
    // Takes bytes from FROM's pending() (consuming them there); MOVED
    // gets how many.
    virtual Sent send(Transport& from, const SendHints& h, uint32_t& moved) = 0;
    // Our side is done: close_notify (TLS) and a FIN behind the data.
    virtual void finish(uint64_t now_us) = 0;

  protected:
    Kind kind_;
    tcp::Stack& stack_;
    tcp::Connection* conn_;
};

// Plain TCP both ways.
class PlainTransport final : public Transport {
  public:
    PlainTransport(tcp::Stack& stack, tcp::Connection& conn) : Transport(Kind::kPlain, stack, conn) {}
    tcp::ByteQueue& pending() override { return conn_ ? conn_->rcvq : empty_; }
    Recv fill(uint32_t) override { return conn_ && conn_->fin_received ? Recv::kEnd : Recv::kOk; }
    void consume(uint32_t n) override;
    bool drained() const override { return !conn_ || conn_->peer_closed(); }
    uint32_t room() const override { return conn_ ? stack_.send_space(*conn_) : 0; }
    Sent send(Transport& from, const SendHints& h, uint32_t& moved) override;
    void finish(uint64_t now_us) override;
    // For consume(): the loop's clock.
    const uint64_t* now = nullptr;

  private:
    tcp::ByteQueue empty_;
};

// TLS over one connection, either role: the subclasses wrap tls::Endpoint (the
// server side of a terminating listen) or tls::UpstreamConnection (proxy_ssl).
// Decrypted bytes are read into mbufs that the other side's plain
// transport relinks into its send queue; bytes to send are encrypted
// from the other side's pending() in records as large as
// record_size() allows.
class TlsTransport : public Transport {
  public:
    ~TlsTransport() override;
    void detach() override {
        conn_ = nullptr;
        bytes_.conn = nullptr;
    }
    tcp::ByteQueue& pending() override { return plain_; }
    Recv fill(uint32_t limit) override;
    void consume(uint32_t n) override;
    bool drained() const override { return ended_ && plain_.bytes == 0; }
    uint32_t room() const override { return write_room(); }
    Sent send(Transport& from, const SendHints& h, uint32_t& moved) override;
    void finish(uint64_t now_us) override;

    // Records sent (for the core's counters).
    uint64_t records = 0;

  protected:
    TlsTransport(Kind k, tcp::Stack& stack, tcp::Connection& conn, const uint64_t* now);
    virtual int tls_read(void* dst, uint32_t len) = 0;
    virtual int tls_write(const void* src, uint32_t len) = 0;
    virtual uint32_t write_room() const = 0;
    virtual uint32_t pending_write() const = 0;
    virtual void tls_shutdown() = 0;

    tcp::TcpTransport bytes_;  // the byte stream OpenSSL reads and writes

  private:
    uint32_t record_size() const;
    const void* gather(const tcp::ByteQueue& q, uint32_t len);

    tcp::ByteQueue plain_;  // decrypted, not passed on yet
    bool ended_ = false;
    // Dynamic record sizing: the one-segment records sent since the
    // connection started or idled, and when the last record went.
    uint32_t small_records_ = 0;
    uint64_t last_record_us_ = 0;
};

class TlsServerTransport final : public TlsTransport {
  public:
    TlsServerTransport(tcp::Stack& stack, tcp::Connection& conn, const uint64_t* now, tls::CoreTls& core,
                       const tls::ListenGroup& group);
    Step handshake() override;
    bool established() const override { return endpoint.established(); }
    tls::Endpoint endpoint;

  protected:
    int tls_read(void* dst, uint32_t len) override { return endpoint.read(dst, len); }
    int tls_write(const void* src, uint32_t len) override { return endpoint.write(src, len); }
    uint32_t write_room() const override { return endpoint.write_room(); }
    uint32_t pending_write() const override { return endpoint.pending_write(); }
    void tls_shutdown() override { endpoint.shutdown(); }
};

// proxy_ssl: TLS to the upstream, with its verification, session reuse
// and counters (tls/upstream.h).
class TlsClientTransport final : public TlsTransport {
  public:
    TlsClientTransport(tcp::Stack& stack, tcp::Connection& conn, const uint64_t* now, tls::UpstreamTls& core,
                       const tls::UpstreamKey& key, std::string_view name, std::string_view alpn);
    Step handshake() override;
    bool established() const override { return endpoint.established(); }
    tls::UpstreamConnection endpoint;

  protected:
    int tls_read(void* dst, uint32_t len) override { return endpoint.read(dst, len); }
    int tls_write(const void* src, uint32_t len) override { return endpoint.write(src, len); }
    uint32_t write_room() const override { return endpoint.write_room(); }
    uint32_t pending_write() const override { return endpoint.pending_write(); }
    void tls_shutdown() override { endpoint.shutdown(); }
};

}  // namespace terminus::dataplane::proxy
