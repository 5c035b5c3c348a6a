// The connection table, listeners, and the calls the layers above make.
#include <algorithm>
#include <initializer_list>

#include "dataplane/tcp/byte_queue.h"
#include "dataplane/tcp/tcp.h"

namespace terminus::tcp {

const char* to_string(CloseReason r) {
    switch (r) {
        case CloseReason::kClosed: return "closed";
        case CloseReason::kReset: return "reset by peer";
        case CloseReason::kRefused: return "refused";
        case CloseReason::kTimeout: return "timed out";
        case CloseReason::kAborted: return "aborted";
        case CloseReason::kIdle: return "idle timeout";
        case CloseReason::kDeadline: return "deadline";
    }
    return "?";
}

namespace {

uint32_t hash_tuple(const FourTuple& t) {
    // Connections of one core come from one flow hash already; mix for
    // the table.
    uint64_t x = (static_cast<uint64_t>(t.remote_ip) << 32 | t.local_ip) ^
                 (static_cast<uint64_t>(t.remote_port) << 16 | t.local_port) * 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return static_cast<uint32_t>(x);
}

uint32_t next_pow2(uint32_t v) {
    uint32_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

}  // namespace

Stack::Stack(const TcpParams& params, rte_mempool* pool, Output& out, const SipKey& secret,
             rte_ether_addr local_mac)
    : params_(params),
      pool_(pool),
      out_(out),
      secret_(secret),
      mac_(local_mac),
      wheel_(params.max_connections * kNumTcpTimers, params.tick_us),
      ooo_pool_(params.max_connections / 4 + 16),
      conns_(new Connection[params.max_connections]) {
    free_.reserve(params.max_connections);
    drained_.reserve(params.max_connections);
    for (uint32_t i = params.max_connections; i-- > 0;) free_.push_back(i);
    const uint32_t slots = next_pow2(params.max_connections * 2);
    table_.assign(slots, -1);
    table_mask_ = slots - 1;
}

Stack::~Stack() {
    for (uint32_t i = 0; i < params_.max_connections; ++i) {
        Connection& c = conns_[i];
        if (c.state == TcpState::kClosed) continue;
        bq_clear(c.sndq);
        bq_clear(c.rcvq);
        c.ooo.clear(ooo_pool_);
    }
}

Connection* Stack::lookup(const FourTuple& t) {
    for (uint32_t i = hash_tuple(t) & table_mask_;; i = (i + 1) & table_mask_) {
        const int32_t idx = table_[i];
        if (idx < 0) return nullptr;
        if (conns_[static_cast<uint32_t>(idx)].tuple == t) return &conns_[static_cast<uint32_t>(idx)];
    }
}

Connection* Stack::create(const FourTuple& t, uint64_t now_us) {
    if (free_.empty() && tw_head_ != kNoConnection) {
        // Out of slots: the oldest TIME-WAIT connection gives its slot up,
        // silently -- its peer is done with it, a RST would tell nobody.
        // Losing 2 MSL of protection for one old 4-tuple is a lesser harm
        // than refusing a new connection (Linux, past tcp_max_tw_buckets,
        // skips TIME-WAIT altogether).
        ++counters_.time_wait_recycled;
        destroy(conns_[tw_head_], CloseReason::kClosed, false);
    }
    if (free_.empty()) {
        ++counters_.no_memory;
        return nullptr;
    }
    const uint32_t idx = free_.back();
    free_.pop_back();
    Connection& c = conns_[idx];
    const uint32_t generation = c.generation + 1;
    c.~Connection();
    new (&c) Connection();
    c.index = idx;
    c.generation = generation;
    c.tuple = t;
    c.rtt = RttEstimator(params_.rto);
    if (params_.congestion == config::CongestionControl::kCubic) {
        c.cc.emplace<Cubic>(params_.mss);
    } else {
        c.cc.emplace<NewReno>(params_.mss);
    }
    for (auto& h : c.timers) h = kInvalidTimer;
    c.iss = initial_sequence(secret_, t, now_us);
    c.recover = c.iss;
    uint32_t i = hash_tuple(t) & table_mask_;
    while (table_[i] >= 0) i = (i + 1) & table_mask_;
    table_[i] = static_cast<int32_t>(idx);
    ++used_;
    return &c;
}

void Stack::destroy(Connection& c, CloseReason why, bool notify) {
    time_wait_unlink(c);
    for (unsigned t = 0; t < kNumTcpTimers; ++t) disarm(c, static_cast<TcpTimer>(t));
    if (c.listener >= 0) {
        --listeners_[static_cast<size_t>(c.listener)].pending;
        c.listener = -1;
    }
    Handler* h = c.handler;
    c.handler = nullptr;
    c.close_deferred = false;
    if (notify && h) h->on_closed(c, why);
    bq_clear(c.sndq);
    bq_clear(c.rcvq);
    c.ooo.clear(ooo_pool_);
    set_state(c, TcpState::kClosed);
    ++c.generation;

    // Backward-shift deletion from the open-addressing table.
    uint32_t hole = hash_tuple(c.tuple) & table_mask_;
    while (table_[hole] != static_cast<int32_t>(c.index)) hole = (hole + 1) & table_mask_;
    table_[hole] = -1;
    for (uint32_t i = (hole + 1) & table_mask_; table_[i] >= 0; i = (i + 1) & table_mask_) {
        const uint32_t home = hash_tuple(conns_[static_cast<uint32_t>(table_[i])].tuple) & table_mask_;
        const bool between = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!between) {
            table_[hole] = table_[i];
            table_[i] = -1;
            hole = i;
        }
    }
    free_.push_back(c.index);
    --used_;
}

void Stack::set_state(Connection& c, TcpState s) {
    // One place changes state, and counts it (VPP tcp_connection_set_state).
    if (c.state != TcpState::kClosed) --counters_.state[static_cast<unsigned>(c.state)];
    c.state = s;
    if (s != TcpState::kClosed) ++counters_.state[static_cast<unsigned>(s)];
    // An orphan reaching TIME-WAIT has nobody left to tell: recyclable.
    if (s == TcpState::kTimeWait && !c.handler) time_wait_push(c);
}

void Stack::time_wait_push(Connection& c) {
    if (c.time_wait_listed) return;
    c.time_wait_listed = true;
    c.tw_prev = tw_tail_;
    c.tw_next = kNoConnection;
    if (tw_tail_ != kNoConnection) {
        conns_[tw_tail_].tw_next = c.index;
    } else {
        tw_head_ = c.index;
    }
    tw_tail_ = c.index;
}

void Stack::time_wait_unlink(Connection& c) {
    if (!c.time_wait_listed) return;
    if (c.tw_prev != kNoConnection) {
        conns_[c.tw_prev].tw_next = c.tw_next;
    } else {
        tw_head_ = c.tw_next;
    }
    if (c.tw_next != kNoConnection) {
        conns_[c.tw_next].tw_prev = c.tw_prev;
    } else {
        tw_tail_ = c.tw_prev;
    }
    c.tw_prev = c.tw_next = kNoConnection;
    c.time_wait_listed = false;
}

Stack::ListenEntry* Stack::find_listener(uint32_t ip, uint16_t port) {
    if (!listening_) return nullptr;
    ListenEntry* wildcard = nullptr;
    for (auto& l : listeners_) {
        if (l.port != port || !l.listener) continue;
        if (l.ip == ip) return &l;
        if (l.ip == 0) wildcard = &l;
    }
    return wildcard;
}

bool Stack::listen(uint32_t ip, uint16_t port, Listener* l, unsigned backlog) {
    for (auto& e : listeners_) {
        if (e.ip != ip || e.port != port) continue;
        if (e.listener) return false;
        // Unlistened before: the entry (and its handshakes' count) stays.
        e.listener = l;
        e.backlog = backlog;
        return true;
    }
    // Entries are never removed: connections in SYN-RECEIVED name theirs
    // by index.
    listeners_.push_back(ListenEntry{ip, port, l, backlog, 0});
    return true;
}

void Stack::relisten(uint32_t ip, uint16_t port, Listener* l, unsigned backlog) {
    for (auto& e : listeners_) {
        if (e.ip == ip && e.port == port) {
            e.listener = l;
            e.backlog = backlog;
            return;
        }
    }
    listen(ip, port, l, backlog);
}

void Stack::unlisten(uint32_t ip, uint16_t port) {
    for (auto& e : listeners_) {
        if (e.ip == ip && e.port == port) e.listener = nullptr;
    }
}

bool Stack::path_mtu(const FourTuple& t, uint16_t mtu) {
    Connection* c = lookup(t);
    if (!c) return false;
    // RFC 1191 5: 68 means "no MTU given" from old routers; use the RFC 1122
    // minimum then. The MSS never drops below 536 (RFC 9293 3.7.1).
    const uint16_t mss = mtu >= 576 ? static_cast<uint16_t>(mtu - 40) : 536;
    if (mss < c->snd_mss) {
        c->snd_mss = mss;
        ++counters_.pmtu_lowered;
    }
    return true;
}

void Stack::touch(Connection& c, bool heard) {
    c.active_us = now_us_;
    if (c.idle_us && c.timers[static_cast<unsigned>(TcpTimer::kIdle)] == kInvalidTimer) {
        arm(c, TcpTimer::kIdle, c.idle_us);
    }
    if (!heard) return;
    c.heard_us = now_us_;
    if (c.ka_idle_us) {
        c.ka_probes = 0;
        if (c.timers[static_cast<unsigned>(TcpTimer::kKeepalive)] == kInvalidTimer) {
            arm(c, TcpTimer::kKeepalive, c.ka_idle_us);
        }
    }
}

void Stack::set_keepalive(Connection& c, uint64_t idle_us, uint64_t interval_us, uint8_t count) {
    c.ka_idle_us = idle_us;
    c.ka_interval_us = interval_us ? interval_us : 75'000'000;
    c.ka_count = count ? count : 9;
    c.ka_probes = 0;
    c.heard_us = now_us_;
    if (idle_us) {
        arm(c, TcpTimer::kKeepalive, idle_us);
    } else {
        disarm(c, TcpTimer::kKeepalive);
    }
}

void Stack::set_idle_timeout(Connection& c, uint64_t idle_us) {
    c.idle_us = idle_us;
    c.active_us = now_us_;
    if (idle_us) {
        arm(c, TcpTimer::kIdle, idle_us);
    } else {
        disarm(c, TcpTimer::kIdle);
    }
}

Connection* Stack::connect(const FourTuple& t, Handler* h, uint64_t now_us, uint64_t connect_us) {
    now_us_ = now_us;
    uint32_t reuse_iss = 0;
    bool reuse = false;
    if (Connection* old = lookup(t)) {
        // Our own TIME-WAIT on this 4-tuple (we closed first) may be taken
        // over by a new active open when timestamps were in use: PAWS
        // keeps the old incarnation's segments out, and a peer that still
        // holds the old one accepts our newer timestamp (RFC 6191). This
        // is Linux's tcp_tw_reuse; without it a proxy that closes first
        // runs out of local ports to one upstream within 2 MSL.
        if (old->state != TcpState::kTimeWait || old->handler || !old->ts_ok) return nullptr;
        reuse_iss = old->snd_nxt + 65535 + 2;  // beyond the old sequence space (RFC 1122 4.2.2.13)
        reuse = true;
        ++counters_.time_wait_reused;
        destroy(*old, CloseReason::kClosed, false);
    }
    Connection* c = open(t, reuse ? std::optional<uint32_t>(reuse_iss) : std::nullopt, now_us);
    if (!c) return nullptr;
    c->handler = h;
    c->rcv_wnd = params_.rcv_buf;
    set_state(*c, TcpState::kSynSent);
    ++counters_.connects;
    send_syn(*c, false, now_us);
    if (connect_us) arm(*c, TcpTimer::kIdle, connect_us);
    return c;
}

uint32_t Stack::send_space(const Connection& c) const {
    return c.sndq.bytes >= params_.snd_buf ? 0 : params_.snd_buf - c.sndq.bytes;
}

uint32_t Stack::write(Connection& c, const void* data, uint32_t len, uint64_t now_us) {
    now_us_ = now_us;
    if (c.fin_queued || (c.state != TcpState::kEstablished && c.state != TcpState::kCloseWait)) {
        return 0;
    }
    const uint32_t room = send_space(c);
    if (len > room) len = room;
    const uint32_t n = bq_write(c.sndq, pool_, data, len);
    if (n) {
        touch(c, false);
        send_data(c, now_us);
    }
    return n;
}

bool Stack::append(Connection& c, rte_mbuf* m, uint64_t now_us) {
    now_us_ = now_us;
    if (c.fin_queued || (c.state != TcpState::kEstablished && c.state != TcpState::kCloseWait) ||
        m->data_len > send_space(c)) {
        return false;
    }
    m->next = nullptr;
    m->nb_segs = 1;
    m->pkt_len = m->data_len;
    bq_append(c.sndq, m);
    touch(c, false);
    send_data(c, now_us);
    return true;
}

void Stack::flush(Connection& c, uint64_t now_us) {
    if (!c.corked) return;
    c.corked = false;
    now_us_ = now_us;
    send_data(c, now_us);
}

void Stack::set_deadline(Connection& c, uint64_t us) {
    if (us) {
        arm(c, TcpTimer::kDeadline, us);
    } else {
        disarm(c, TcpTimer::kDeadline);
    }
}

void Stack::consumed(Connection& c, uint64_t now_us) {
    drained(c);
    // Reading may open the window enough to tell the peer (RFC 9293
    // 3.8.6.2.2, RFC 1122 4.2.3.3: when it grows by min(buffer/2, MSS)),
    // only while what the peer was told is small enough to hold it back,
    // and not once it has finished: it sends nothing more, and may have
    // closed its socket (it would answer with a RST).
    const uint32_t old_adv = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
    const uint32_t now_free = params_.rcv_buf - c.rcvq.bytes;
    if (!c.fin_received &&
        old_adv < std::min<uint32_t>(params_.rcv_buf / 4, 4u * params_.mss) &&
        now_free >= old_adv + std::min<uint32_t>(params_.rcv_buf / 2, params_.mss) &&
        c.state != TcpState::kClosed) {
        send_ack(c, now_us);
    }
}

uint32_t Stack::read(Connection& c, void* dst, uint32_t len, uint64_t now_us) {
    now_us_ = now_us;
    if (len > c.rcvq.bytes) len = c.rcvq.bytes;
    if (len == 0) return 0;
    bq_copy(c.rcvq, 0, len, dst);
    bq_consume(c.rcvq, len);
    consumed(c, now_us);
    return len;
}

uint32_t Stack::peek(const Connection& c, uint32_t offset, void* dst, uint32_t len) const {
    if (offset >= c.rcvq.bytes) return 0;
    if (len > c.rcvq.bytes - offset) len = c.rcvq.bytes - offset;
    bq_copy(c.rcvq, offset, len, dst);
    return len;
}

uint32_t Stack::skip(Connection& c, uint32_t len, uint64_t now_us) {
    now_us_ = now_us;
    if (len > c.rcvq.bytes) len = c.rcvq.bytes;
    if (len == 0) return 0;
    bq_consume(c.rcvq, len);
    consumed(c, now_us);
    return len;
}

uint32_t Stack::forward(Connection& from, Connection& to, uint32_t max, uint64_t now_us) {
    now_us_ = now_us;
    if (to.fin_queued || (to.state != TcpState::kEstablished && to.state != TcpState::kCloseWait)) {
        return 0;
    }
    const uint32_t n = std::min({max, from.rcvq.bytes, send_space(to)});
    // The received segments themselves become the send queue: no copy
    // unless N splits one.
    const uint32_t moved = bq_move(from.rcvq, to.sndq, pool_, n);
    if (moved) {
        consumed(from, now_us);
        touch(to, false);
        send_data(to, now_us);
    }
    return moved;
}

uint32_t Stack::forward(ByteQueue& q, Connection& to, uint32_t max, uint64_t now_us) {
    now_us_ = now_us;
    if (to.fin_queued || (to.state != TcpState::kEstablished && to.state != TcpState::kCloseWait)) {
        return 0;
    }
    const uint32_t moved = bq_move(q, to.sndq, pool_, std::min({max, q.bytes, send_space(to)}));
    if (moved) {
        touch(to, false);
        send_data(to, now_us);
    }
    return moved;
}

void Stack::shutdown(Connection& c, uint64_t now_us) {
    now_us_ = now_us;
    if (c.fin_queued) return;
    switch (c.state) {
        case TcpState::kSynSent:
            destroy(c, CloseReason::kClosed, false);
            return;
        case TcpState::kSynReceived:
        case TcpState::kEstablished:
            c.fin_queued = true;
            set_state(c, TcpState::kFinWait1);
            break;
        case TcpState::kCloseWait:
            c.fin_queued = true;
            set_state(c, TcpState::kLastAck);
            break;
        default:
            return;
    }
    send_data(c, now_us);
}

void Stack::close_normally(Connection& c) {
    if (c.rcvq.bytes > 0 && c.handler) {
        c.close_deferred = true;
        return;
    }
    if (c.state == TcpState::kTimeWait) {
        // The handler is through with C, which waits out 2 MSL alone, and
        // may be recycled -- once the handler has heard, not while it does.
        Handler* h = c.handler;
        c.handler = nullptr;
        if (h) h->on_closed(c, CloseReason::kClosed);
        if (c.state == TcpState::kTimeWait && !c.handler) time_wait_push(c);
        return;
    }
    destroy(c, CloseReason::kClosed, true);
}

void Stack::drained(Connection& c) {
    if (c.close_deferred && c.rcvq.bytes == 0) {
        c.close_deferred = false;
        drained_.push_back({c.index, c.generation});  // finished in poll(), outside the caller's callback
    }
}

void Stack::abort(Connection& c) {
    if (c.state != TcpState::kSynSent && c.state != TcpState::kClosed) send_rst(c);
    destroy(c, CloseReason::kAborted, true);
}

void Stack::close(Connection& c, uint64_t now_us) { close_as(c, CloseReason::kClosed, now_us); }

void Stack::close_as(Connection& c, CloseReason why, uint64_t now_us) {
    now_us_ = now_us;
    const bool synchronized = c.state == TcpState::kEstablished || c.state == TcpState::kCloseWait ||
                              c.state == TcpState::kFinWait1 || c.state == TcpState::kFinWait2 ||
                              c.state == TcpState::kClosing || c.state == TcpState::kLastAck;
    if (!synchronized || c.rcvq.bytes > 0) {
        // Unread data (or no connection yet to finish): reset, as close()
        // on such a socket does.
        if (c.state != TcpState::kSynSent && c.state != TcpState::kClosed &&
            c.state != TcpState::kTimeWait) {
            send_rst(c);
        }
        destroy(c, why == CloseReason::kClosed ? CloseReason::kAborted : why, true);
        return;
    }
    Handler* h = c.handler;
    c.handler = nullptr;
    c.close_deferred = false;
    disarm(c, TcpTimer::kKeepalive);
    shutdown(c, now_us);
    if (c.state != TcpState::kClosed && c.state != TcpState::kTimeWait) {
        c.idle_us = params_.orphan_us;
        c.active_us = now_us;
        arm(c, TcpTimer::kIdle, c.idle_us);
    }
    if (h) h->on_closed(c, why);
}

}  // namespace terminus::tcp
