#include "dataplane/proxy/transport.h"

#include <algorithm>
#include <cstring>

#include "dataplane/tcp/byte_queue.h"

namespace terminus::dataplane::proxy {

namespace {
// The most a TLS record carries (RFC 8446 5.1).
constexpr uint32_t kMaxRecord = 16384;
// Dynamic record sizing, as Google's and Cloudflare's servers do it: while
// TCP's congestion window is still small (the first records of a
// connection, and again after an idle second) each record fits one TCP
// segment, so that the peer can decrypt what every segment brings instead
// of waiting for the dozen segments of a 16 KB record; then records are
// full, with the least overhead per byte and one AEAD call per 16 KB.
constexpr uint32_t kSmallRecords = 16;
constexpr uint64_t kRecordIdleUs = 1'000'000;
// What a record adds to its plaintext, at most, for every suite we offer
// but CBC with SHA-384: header 5, explicit IV up to 16, MAC up to 20 and
// CBC padding up to 16, or an AEAD's nonce 8 and tag 16 (TLS 1.3: tag and
// content type, 17).
constexpr uint32_t kRecordOverhead = 64;
// TCP timestamps take this much of every segment (RFC 7323 3).
constexpr uint32_t kTimestampOption = 12;

// Where the bytes of one record spread over several segments are gathered
// (one per core: a record is encrypted before the next is gathered).
thread_local uint8_t t_record[kMaxRecord];

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

// ---------------------------------------------------------------------------
// Plain TCP

void PlainTransport::consume(uint32_t n) {
    if (conn_) stack_.skip(*conn_, n, now ? *now : 0);
}

Transport::Sent PlainTransport::send(Transport& from, const SendHints& h, uint32_t& moved) {
    moved = 0;
    if (!conn_) return Sent::kFailed;
    if (from.kind() == Kind::kPlain) {
        // The received segments themselves join our send queue.
        if (from.conn()) moved = stack_.forward(*from.conn(), *conn_, UINT32_MAX, h.now_us);
        return Sent::kOk;
    }
    // Decrypted mbufs are relinked the same way.
    moved = stack_.forward(from.pending(), *conn_, UINT32_MAX, h.now_us);
    return Sent::kOk;
}

void PlainTransport::finish(uint64_t now_us) {
    if (conn_) stack_.shutdown(*conn_, now_us);
}

// ---------------------------------------------------------------------------
// TLS, either role

TlsTransport::TlsTransport(Kind k, tcp::Stack& stack, tcp::Connection& conn, const uint64_t* now)
    : Transport(k, stack, conn) {
    bytes_.stack = &stack;
    bytes_.conn = &conn;
    bytes_.now = now;
}

TlsTransport::~TlsTransport() { tcp::bq_clear(plain_); }

Transport::Recv TlsTransport::fill(uint32_t limit) {
    // Records become plaintext straight in mbufs, which the other side
    // relinks into its send queue; no more than it takes is decrypted, so
    // that a slow receiver holds the records (and the TCP window) back.
    if (ended_) return Recv::kEnd;
    while (plain_.bytes < limit) {
        rte_mbuf* m = rte_pktmbuf_alloc(stack_.pool());
        if (!m) return Recv::kOk;  // the pool is empty: backpressure
        const uint32_t room = std::min<uint32_t>(limit - plain_.bytes, rte_pktmbuf_tailroom(m));
        const int n = tls_read(rte_pktmbuf_mtod(m, void*), room);
        if (n > 0) {
            m->data_len = static_cast<uint16_t>(n);
            m->pkt_len = static_cast<uint32_t>(n);
            tcp::bq_append(plain_, m);
            continue;
        }
        rte_pktmbuf_free(m);
        if (n == 0) return Recv::kOk;
        if (n == -1) {
            ended_ = true;  // close_notify, or the peer's FIN
            return Recv::kEnd;
        }
        if (n == -3) return Recv::kAlerted;
        return Recv::kFailed;
    }
    return Recv::kOk;
}

void TlsTransport::consume(uint32_t n) { tcp::bq_consume(plain_, n); }

uint32_t TlsTransport::record_size() const {
    if (small_records_ >= kSmallRecords || !conn_) return kMaxRecord;
    const uint32_t segment = conn_->snd_mss - (conn_->ts_ok ? kTimestampOption : 0);
    return segment > 2 * kRecordOverhead ? segment - kRecordOverhead : kRecordOverhead;
}

const void* TlsTransport::gather(const tcp::ByteQueue& q, uint32_t len) {
    // Zero copy when the first segment holds them all.
    const rte_mbuf* m = q.head;
    if (m->data_len >= len) return rte_pktmbuf_mtod(m, const void*);
    for (uint32_t n = 0; m && n < len; m = m->next) {
        const uint32_t take = std::min<uint32_t>(m->data_len, len - n);
        std::memcpy(t_record + n, rte_pktmbuf_mtod(m, const void*), take);
        n += take;
    }
    return t_record;
}

Transport::Sent TlsTransport::send(Transport& from, const SendHints& h, uint32_t& moved) {
    // What waits in FROM leaves in records as large as record_size()
    // allows (one SSL_write, one record: the contexts use
    // SSL_MODE_ENABLE_PARTIAL_WRITE), not one per received segment.
    moved = 0;
    if (!conn_) return Sent::kFailed;
    tcp::ByteQueue& q = from.pending();
    if (h.now_us - last_record_us_ >= kRecordIdleUs) small_records_ = 0;
    while (q.bytes > 0 && q.head) {
        // A write OpenSSL holds goes again with at least its bytes, the
        // same ones (they stay pending until OpenSSL took them), even
        // before there is room for more.
        const uint32_t held = pending_write();
        uint32_t len = held;
        if (held == 0) {
            const uint32_t target = record_size();
            const uint32_t want = std::min(q.bytes, target);
            if (want < target && !h.source_done) {
                // A short record that could not leave now anyway waits for
                // the source's next bytes to fill it, as Linux's
                // tcp_autocorking holds small writes while the flow's
                // packets still wait; one that would leave at once goes
                // (no latency added).
                if (would_wait(*conn_, want)) break;
                // Inside the rx burst, it waits for the burst's end: the
                // next frames of the burst may fill it.
                if (!h.flushing) return Sent::kDefer;
            }
            const uint32_t room = write_room();
            if (room == 0) break;
            // While what is in flight will be acknowledged (on_writable
            // then brings us back), wait for a whole record's room: a
            // record cut to the room left is as small as what one ACK
            // freed.
            if (room < want && conn_->sndq.bytes > 0) break;
            len = std::min(want, room);
        }
        const int n = tls_write(gather(q, len), len);
        if (n > 0) {
            from.consume(static_cast<uint32_t>(n));
            moved += static_cast<uint32_t>(n);
            ++records;
            if (small_records_ < kSmallRecords) ++small_records_;
            last_record_us_ = h.now_us;
            continue;
        }
        if (n == 0) break;  // on_writable brings us back
        return Sent::kFailed;
    }
    return Sent::kOk;
}

void TlsTransport::finish(uint64_t now_us) {
    if (!conn_ || conn_->fin_queued) return;
    tls_shutdown();
    stack_.shutdown(*conn_, now_us);
}

// ---------------------------------------------------------------------------

TlsServerTransport::TlsServerTransport(tcp::Stack& stack, tcp::Connection& conn, const uint64_t* now,
                                       tls::CoreTls& core, const tls::ListenGroup& group)
    : TlsTransport(Kind::kTlsServer, stack, conn, now), endpoint(core, group, bytes_) {}

Transport::Step TlsServerTransport::handshake() {
    switch (endpoint.handshake()) {
        case tls::Endpoint::Status::kAgain: return Step::kAgain;
        case tls::Endpoint::Status::kDone: return Step::kDone;
        case tls::Endpoint::Status::kFailed: break;
    }
    return Step::kFailed;
}

TlsClientTransport::TlsClientTransport(tcp::Stack& stack, tcp::Connection& conn, const uint64_t* now,
                                       tls::UpstreamTls& core, const tls::UpstreamKey& key, std::string_view name,
                                       std::string_view alpn)
    : TlsTransport(Kind::kTlsClient, stack, conn, now), endpoint(core, key, bytes_, name, alpn) {}

Transport::Step TlsClientTransport::handshake() {
    switch (endpoint.handshake()) {
        case tls::UpstreamConnection::Status::kAgain: return Step::kAgain;
        case tls::UpstreamConnection::Status::kDone: return Step::kDone;
        case tls::UpstreamConnection::Status::kFailed: break;
    }
    return Step::kFailed;
}

}  // namespace terminus::dataplane::proxy
