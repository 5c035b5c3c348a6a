// Timers are handles into this core's wheel, one slot per kind in each
// connection (VPP tcp_timer.h); expiry looks the connection up by index.
#include "dataplane/tcp/byte_queue.h"
#include "dataplane/tcp/tcp.h"

namespace terminus::tcp {

namespace {

// A handle whose expiry poll() has taken from the wheel and not yet
// delivered: no wheel entry is behind it any more.
constexpr TimerHandle kFiredTimer = kInvalidTimer - 1;

}  // namespace

void Stack::arm(Connection& c, TcpTimer t, uint64_t us) {
    const unsigned k = static_cast<unsigned>(t);
    // Relative to the wheel's own clock, which poll() moves and which may
    // lag the time of the event that arms the timer.
    const uint64_t due = (now_us_ + us + params_.tick_us - 1) / params_.tick_us;
    const uint64_t base = wheel_.now();
    const uint64_t ticks = due > base ? due - base : 0;
    if (c.timers[k] != kInvalidTimer && c.timers[k] != kFiredTimer) {
        c.timers[k] = wheel_.update(c.timers[k], ticks);
    } else {
        c.timers[k] = wheel_.start(c.index, static_cast<uint8_t>(k), ticks);
    }
    if (c.timers[k] == kInvalidTimer) ++counters_.timer_full;
}

void Stack::disarm(Connection& c, TcpTimer t) {
    const unsigned k = static_cast<unsigned>(t);
    if (c.timers[k] == kInvalidTimer) return;
    if (c.timers[k] != kFiredTimer) wheel_.stop(c.timers[k]);
    c.timers[k] = kInvalidTimer;
}

bool Stack::poll(uint64_t now_us) {
    now_us_ = now_us;
    bool any = !drained_.empty();
    for (size_t i = 0; i < drained_.size(); ++i) {
        Connection& c = conns_[drained_[i].index];
        if (c.generation != drained_[i].generation) continue;  // gone since
        if (c.state == TcpState::kLastAck || c.state == TcpState::kTimeWait) close_normally(c);
    }
    drained_.clear();
    ExpiredTimer expired[64];
    for (;;) {
        const uint32_t n = wheel_.advance(now_us / params_.tick_us, expired, 64);
        // Mark the whole batch first. An expiry's handling may destroy
        // another connection of the batch and reuse its slot (a handler
        // reconnecting into a full table recycles the oldest TIME-WAIT,
        // whose own expiry is likely in this very batch): that
        // connection's expiry must then not reach the slot's new owner,
        // and its spent handle must not stop a wheel entry since reused.
        for (uint32_t i = 0; i < n; ++i) {
            conns_[expired[i].user_id].timers[expired[i].timer_kind] = kFiredTimer;
        }
        for (uint32_t i = 0; i < n; ++i) {
            Connection& c = conns_[expired[i].user_id];
            const unsigned k = expired[i].timer_kind;
            if (c.timers[k] != kFiredTimer) continue;  // disarmed or re-armed since
            c.timers[k] = kInvalidTimer;
            if (c.state != TcpState::kClosed) on_timer(c, static_cast<TcpTimer>(k), now_us);
        }
        any |= n > 0;
        if (n < 64) break;
    }
    return any;
}

void Stack::on_timer(Connection& c, TcpTimer t, uint64_t now_us) {
    switch (t) {
        case TcpTimer::kRetransmit: {
            if (c.tlp_armed) {
                // A probe timeout, not an RTO: no back-off, no retry counted.
                c.tlp_armed = false;
                send_probe(c, now_us);
                arm(c, TcpTimer::kRetransmit, c.rtt.rto_us());
                return;
            }
            ++counters_.rto_expired;
            const bool handshake = c.state == TcpState::kSynSent || c.state == TcpState::kSynReceived;
            if (++c.retries > (handshake ? params_.syn_retries : params_.data_retries)) {
                if (!handshake) send_rst(c);
                destroy(c, CloseReason::kTimeout, true);
                return;
            }
            c.rtt.back_off();
            if (handshake) {
                retransmit_first(c, now_us);  // resends the SYN or SYN-ACK, re-arms
                return;
            }
            // RFC 5681 3.1 and RFC 6298 5.4-5.6: collapse the window, back
            // off, and resend from SND.UNA (go-back-N).
            c.congestion().on_timeout(c.snd_nxt - c.snd_una, now_us);
            c.in_recovery = false;
            c.recover = c.snd_nxt;
            c.dupacks = 0;
            // RFC 2018 8: after a timeout the SACKed bits are forgotten,
            // the receiver may have dropped what it reported.
            c.sacked.clear();
            c.sent_n = 0;
            c.rack_xmit_us = 0;
            c.high_rxt = c.snd_una;
            c.rtt_timing = false;  // Karn
            // SND.NXT stays: the resend starts at RTX_NXT.
            c.rto_recovery = true;
            c.rtx_nxt = c.snd_una;
            if (!send_data(c, now_us)) {
                // The window is closed: a bare segment keeps the peer talking.
                retransmit_first(c, now_us);
            }
            arm(c, TcpTimer::kRetransmit, c.rtt.rto_us());
            return;
        }
        case TcpTimer::kDelayedAck:
            if (c.unacked_segments > 0 || c.ack_now) send_ack(c, now_us);
            return;
        case TcpTimer::kPersist: {
            // Zero-window probe: an old sequence number makes the peer
            // answer with its current window (as Linux does).
            emit(&c, make(c, c.snd_una - 1, kAck, nullptr, 0, now_us, false), c.tuple.remote_ip);
            c.rtt.back_off();
            if (c.snd_wnd == 0) arm(c, TcpTimer::kPersist, c.rtt.rto_us());
            return;
        }
        case TcpTimer::kKeepalive: {
            if (c.state != TcpState::kEstablished && c.state != TcpState::kCloseWait &&
                c.state != TcpState::kFinWait2) {
                return;
            }
            if (c.ka_probes == 0 && now_us < c.heard_us + c.ka_idle_us) {
                arm(c, TcpTimer::kKeepalive, c.heard_us + c.ka_idle_us - now_us);  // heard since
                return;
            }
            if (c.ka_probes >= c.ka_count) {
                ++counters_.keepalive_timeouts;
                send_rst(c);
                destroy(c, CloseReason::kTimeout, true);
                return;
            }
            // A probe carries an old sequence number so that a live peer
            // must answer with an ACK (RFC 9293 3.8.4).
            ++c.ka_probes;
            ++counters_.keepalive_probes;
            emit(&c, make(c, c.snd_una - 1, kAck, nullptr, 0, now_us, false), c.tuple.remote_ip);
            arm(c, TcpTimer::kKeepalive, c.ka_interval_us);
            return;
        }
        case TcpTimer::kTimeWait:
            destroy(c, CloseReason::kClosed, true);
            return;
        case TcpTimer::kIdle:
            if (c.state == TcpState::kSynSent) {
                ++counters_.connect_timeouts;
                destroy(c, CloseReason::kTimeout, true);
                return;
            }
            if (c.state == TcpState::kTimeWait) return;
            if (c.idle_us && now_us < c.active_us + c.idle_us) {
                arm(c, TcpTimer::kIdle, c.active_us + c.idle_us - now_us);  // active since
                return;
            }
            if (!c.handler) {
                // Closed, and the peer never finished: give up on it.
                ++counters_.orphan_resets;
                send_rst(c);
                destroy(c, CloseReason::kTimeout, false);
                return;
            }
            ++counters_.idle_timeouts;
            close_as(c, CloseReason::kIdle, now_us);
            return;
        case TcpTimer::kDeadline:
            if (!c.handler || c.state == TcpState::kTimeWait) return;
            close_as(c, CloseReason::kDeadline, now_us);
            return;
        case TcpTimer::kReorder:
            rack_detect(c, now_us);
            return;
        case TcpTimer::kCount:
            return;
    }
}

}  // namespace terminus::tcp
