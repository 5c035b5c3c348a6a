// Segment arrives (RFC 9293 3.10.7), the checks in the RFC's order, with
// RFC 5961's defences against blind resets and SYNs, RFC 7323's PAWS, and
// SYN cookies when a listener's backlog is full.
#include <rte_ip.h>
#include <rte_tcp.h>

#include <algorithm>

#include "dataplane/tcp/byte_queue.h"
#include "dataplane/tcp/tcp.h"

namespace terminus::tcp {

namespace {

// Takes the peer's options from its SYN (RFC 9293 3.7.1, RFC 7323, RFC
// 2018): each is used only if both sides offered it.
void adopt_syn_options(Connection& c, const TcpOptions& o, const TcpParams& p) {
    c.snd_mss = o.has_mss ? std::min<uint16_t>(o.mss ? o.mss : 536, p.mss) : 536;
    if (c.snd_mss < 64) c.snd_mss = 64;  // an MSS of a few bytes is an attack
    // RFC 7323 2.2: scaling applies only when both SYNs carry it.
    c.ws_ok = o.has_wscale && p.window_scaling;
    c.snd_wscale = c.ws_ok ? o.wscale : 0;
    if (!c.ws_ok) c.rcv_wscale = 0;
    c.sack_ok = o.sack_permitted && p.sack;
    c.ts_ok = o.has_timestamps && p.timestamps;
    if (c.ts_ok) c.ts_recent = o.ts_val;
}

}  // namespace

void Stack::input(rte_mbuf* m, unsigned ihl, uint64_t now_us) {
    now_us_ = now_us;
    ++counters_.segments_in;
    Segment s;
    switch (parse_segment(m, ihl, s)) {
        case ParseResult::kOk: break;
        case ParseResult::kBadHeader: ++counters_.bad_header; rte_pktmbuf_free(m); return;
        case ParseResult::kBadChecksum: ++counters_.bad_checksum; rte_pktmbuf_free(m); return;
        case ParseResult::kBadOptions: ++counters_.bad_options; rte_pktmbuf_free(m); return;
    }
    Connection* c = lookup(s.tuple);
    if (!c) {
        on_listen(s, m, now_us);
        return;
    }
    if (c->state == TcpState::kTimeWait && time_wait_takes_syn(*c, s)) {
        // RFC 1122 4.2.2.13: the new incarnation starts beyond any
        // sequence number the old one used (Linux: SND.NXT + 65535 + 2).
        const uint32_t iss = c->snd_nxt + 65535 + 2;
        ++counters_.time_wait_reused;
        destroy(*c, CloseReason::kClosed, false);
        on_listen(s, m, now_us, iss);
        return;
    }
    if (c->state == TcpState::kSynSent) {
        on_syn_sent(*c, s, m, now_us);
    } else {
        on_synchronized(*c, s, m, now_us);
    }
}

// RFC 9293 3.10.7.4 (TIME-WAIT, and the note to 3.6.1), RFC 1122
// 4.2.2.13 and RFC 6191 2: a SYN may reopen a 4-tuple still in TIME-WAIT
// when it cannot belong to the old incarnation -- a newer timestamp
// (PAWS would reject an older one), or, without timestamps, a sequence
// number beyond everything the old connection received. Only a listener
// can take it; otherwise TIME-WAIT answers it as any other segment.
bool Stack::time_wait_takes_syn(const Connection& c, const Segment& s) {
    if ((s.flags & (kSyn | kAck | kRst)) != kSyn) return false;
    // A handler still reading the old connection's last bytes holds it.
    if (c.handler) return false;
    if (!find_listener(s.tuple.local_ip, s.tuple.local_port)) return false;
    if (c.ts_ok && s.options.has_timestamps) {
        if (seq_gt(s.options.ts_val, c.ts_recent)) return true;
        // RFC 6191 2: an equal timestamp needs a newer sequence number.
        return s.options.ts_val == c.ts_recent && seq_gt(s.seq, c.rcv_nxt);
    }
    return seq_gt(s.seq, c.rcv_nxt);
}

Connection* Stack::open(const FourTuple& t, std::optional<uint32_t> iss, uint64_t now_us) {
    Connection* c = create(t, now_us);
    if (!c) return nullptr;
    if (iss) c->iss = *iss;
    c->snd_una = c->snd_nxt = c->iss;
    c->recover = c->rtx_nxt = c->high_rxt = c->iss;
    return c;
}

void Stack::synchronize(Connection& c, const Segment& syn) {
    c.irs = syn.seq;
    c.rcv_nxt = syn.seq + 1;
    c.snd_wnd = syn.window;  // never scaled in a SYN (RFC 7323 2.2)
    c.snd_wl1 = syn.seq;
    adopt_syn_options(c, syn.options, params_);
}

// 3.10.7.1 (CLOSED) and 3.10.7.2 (LISTEN).
void Stack::on_listen(const Segment& s, rte_mbuf* m, uint64_t now_us, std::optional<uint32_t> iss) {
    ListenEntry* l = find_listener(s.tuple.local_ip, s.tuple.local_port);
    if (s.flags & kRst) {  // "An incoming RST should be ignored."
        ++counters_.rst_no_connection;
        rte_pktmbuf_free(m);
        return;
    }
    if (!l) {
        ++(s.flags & kSyn ? counters_.no_listener : counters_.no_connection);
        send_rst_for(s);
        rte_pktmbuf_free(m);
        return;
    }
    const size_t li = static_cast<size_t>(l - listeners_.data());
    if ((s.flags & kAck) && !(s.flags & kSyn)) {
        // The ACK of a SYN cookie, or a stray: "any acknowledgment is bad".
        std::optional<CookieData> cookie;
        if (params_.syncookies != config::SynCookies::kOff) {
            cookie = check_cookie(secret_, s.tuple, s.ack, s.seq, s.options.has_timestamps,
                                  s.options.ts_ecr, now_us);
        }
        if (!cookie) {
            ++(params_.syncookies != config::SynCookies::kOff ? counters_.bad_cookie
                                                              : counters_.no_connection);
            send_rst_for(s);
            rte_pktmbuf_free(m);
            return;
        }
        // The cookie stands for our SYN-ACK, which this ACK acknowledges.
        Connection* c = open(s.tuple, s.ack - 1, now_us);
        if (!c) {
            rte_pktmbuf_free(m);
            return;
        }
        ++counters_.syn_cookies_ok;
        c->snd_una = c->snd_nxt = s.ack;
        c->irs = s.seq - 1;
        c->rcv_nxt = s.seq;
        c->snd_mss = std::min(cookie->mss, params_.mss);
        c->sack_ok = cookie->sack_ok && params_.sack;
        c->ts_ok = s.options.has_timestamps && params_.timestamps;
        c->ts_recent = s.options.ts_val;
        if (cookie->wscale_ok && params_.window_scaling) {
            c->snd_wscale = cookie->wscale;
            c->rcv_wscale = window_shift_for(params_.rcv_buf);
        }
        c->snd_wnd = static_cast<uint32_t>(s.window) << c->snd_wscale;
        c->snd_wl1 = s.seq;
        c->snd_wl2 = s.ack;
        c->rcv_wnd = std::min<uint32_t>(params_.rcv_buf, 65535);
        c->rcv_adv = c->rcv_nxt + c->rcv_wnd;
        set_state(*c, TcpState::kEstablished);
        ++counters_.accepts;
        c->handler = l->listener->accept(*c);
        if (!c->handler) {
            send_rst(*c);
            destroy(*c, CloseReason::kAborted, false);
            rte_pktmbuf_free(m);
            return;
        }
        const uint32_t gen = c->generation;
        c->handler->on_established(*c);
        if (c->generation != gen) {  // closed (and perhaps reused) by the handler
            rte_pktmbuf_free(m);
            return;
        }
        on_synchronized(*c, s, m, now_us);  // the ACK may carry data
        return;
    }
    if (!(s.flags & kSyn)) {
        ++counters_.not_syn;
        rte_pktmbuf_free(m);
        return;
    }

    const bool backlog_full = l->pending >= l->backlog;
    if (params_.syncookies == config::SynCookies::kAlways ||
        (backlog_full && params_.syncookies == config::SynCookies::kOn)) {
        // Answer without keeping state (RFC 4987 3.6).
        Connection tmp;
        tmp.tuple = s.tuple;
        adopt_syn_options(tmp, s.options, params_);
        CookieData d;
        d.wscale_ok = s.options.has_wscale && params_.window_scaling;
        d.wscale = s.options.wscale;
        d.sack_ok = tmp.sack_ok;
        if (d.wscale_ok) tmp.rcv_wscale = window_shift_for(params_.rcv_buf);
        if (!tmp.ts_ok) {
            // Without timestamps there is nowhere to keep these.
            tmp.sack_ok = false;
            tmp.rcv_wscale = 0;
            tmp.snd_wscale = 0;
        }
        tmp.iss = make_cookie(secret_, s.tuple, s.seq, s.options.has_mss ? s.options.mss : 536, now_us);
        tmp.rcv_nxt = s.seq + 1;
        rte_mbuf* synack = make(tmp, tmp.iss, kSyn | kAck, nullptr, 0, now_us, true);
        if (synack && tmp.ts_ok) {
            // Put the options in our timestamp: rewrite TSval in place.
            const uint32_t ts = cookie_timestamp(ts_now(now_us), d);
            auto* th = rte_pktmbuf_mtod_offset(synack, uint8_t*, sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr));
            uint8_t* o = th + sizeof(rte_tcp_hdr);
            const unsigned olen = (static_cast<unsigned>(th[12] >> 4) * 4) - sizeof(rte_tcp_hdr);
            for (unsigned i = 0; i + 10 <= olen;) {
                if (o[i] == 1) { ++i; continue; }
                if (o[i] == 8) {
                    o[i + 2] = static_cast<uint8_t>(ts >> 24);
                    o[i + 3] = static_cast<uint8_t>(ts >> 16);
                    o[i + 4] = static_cast<uint8_t>(ts >> 8);
                    o[i + 5] = static_cast<uint8_t>(ts);
                    break;
                }
                i += o[i + 1] ? o[i + 1] : 1;
            }
            auto* ip = rte_pktmbuf_mtod_offset(synack, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
            auto* tcph = reinterpret_cast<rte_tcp_hdr*>(th);
            tcph->cksum = 0;
            tcph->cksum = rte_ipv4_udptcp_cksum(ip, tcph);
        }
        ++counters_.syn_cookies_sent;
        emit(nullptr, synack, s.tuple.remote_ip);
        rte_pktmbuf_free(m);
        return;
    }
    if (backlog_full) {
        ++counters_.backlog_full;
        rte_pktmbuf_free(m);
        return;
    }
    // (A SYN cookie above cannot take ISS: its ISS is the cookie, as in Linux.)
    Connection* c = open(s.tuple, iss, now_us);
    if (!c) {
        rte_pktmbuf_free(m);
        return;
    }
    c->listener = static_cast<int16_t>(li);
    ++l->pending;
    synchronize(*c, s);
    c->snd_wl2 = c->iss;
    set_state(*c, TcpState::kSynReceived);
    send_syn(*c, true, now_us);
    rte_pktmbuf_free(m);  // data on a SYN is not kept; the peer sends it again
}

// 3.10.7.3 SYN-SENT.
void Stack::on_syn_sent(Connection& c, const Segment& s, rte_mbuf* m, uint64_t now_us) {
    rte_pktmbuf_free(m);
    const bool ack = s.flags & kAck;
    if (ack && (seq_leq(s.ack, c.iss) || seq_gt(s.ack, c.snd_nxt))) {
        if (!(s.flags & kRst)) send_rst_for(s);
        ++counters_.bad_ack;
        return;
    }
    if (s.flags & kRst) {
        if (ack) {
            ++counters_.resets_received;
            destroy(c, CloseReason::kRefused, true);
        } else {
            ++counters_.rst_unacceptable;
        }
        return;
    }
    if (!(s.flags & kSyn)) {
        ++counters_.syn_sent_unexpected;
        return;
    }
    synchronize(c, s);
    // Our SYN offered an unscaled window; its right edge starts here.
    c.rcv_wnd = std::min<uint32_t>(params_.rcv_buf, 65535);
    c.rcv_adv = c.rcv_nxt + c.rcv_wnd;
    if (!ack) {
        // Simultaneous open.
        set_state(c, TcpState::kSynReceived);
        send_syn(c, true, now_us);
        return;
    }
    c.snd_una = s.ack;
    c.snd_wl2 = s.ack;
    if (c.rtt_timing && c.retries == 0) c.rtt.sample(now_us - c.rtt_start_us);
    c.rtt_timing = false;
    c.retries = 0;
    disarm(c, TcpTimer::kRetransmit);
    disarm(c, TcpTimer::kIdle);  // the connect timeout
    set_state(c, TcpState::kEstablished);
    send_ack(c, now_us);
    if (c.handler) c.handler->on_established(c);
}

bool Stack::disordered_ack(const Connection& c, const Segment& s) const {
    if (s.payload_len != 0 || (s.flags & (kSyn | kFin)) || !(s.flags & kAck)) return false;
    // Within one RTO of the newest timestamp (our clock's ms, as theirs
    // is unknown: a peer's clock ticking faster only narrows this).
    const uint32_t age = c.ts_recent - s.options.ts_val;
    return s.seq == c.rcv_nxt && age <= c.rtt.rto_us() / 1000 + 1;
}

// RFC 9293 3.10.7.4 first check, RFC 7323 4.3 for timestamps.
bool Stack::acceptable(const Connection& c, const Segment& s) const {
    const uint32_t len = s.seg_len();
    // The window's right edge is where the last advertisement put it
    // (RCV.NXT + RCV.WND as sent); it does not move as data arrives.
    const uint32_t wnd = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
    if (len == 0) {
        if (wnd == 0) return s.seq == c.rcv_nxt;
        return seq_in(s.seq, c.rcv_nxt, c.rcv_nxt + wnd);
    }
    if (wnd == 0) return false;
    return seq_in(s.seq, c.rcv_nxt, c.rcv_nxt + wnd) ||
           seq_in(s.seq + len - 1, c.rcv_nxt, c.rcv_nxt + wnd);
}

void Stack::on_synchronized(Connection& c, const Segment& s, rte_mbuf* m, uint64_t now_us) {
    // Handlers run below and may close C, and open another connection in
    // its slot: after each, C is only ours while its generation is.
    const uint32_t gen = c.generation;
    // PAWS (RFC 7323 5.3): an old timestamp marks an old duplicate --
    // except a bare ACK a little older than the newest (Linux's
    // tcp_disordered_ack): ACKs overtake each other on the way, and on
    // the cross-core hand-off, and dropping one (with an ACK back for it)
    // would only feed the peer duplicate ACKs. Accepting it costs nothing:
    // an old ACK moves neither SND.UNA nor the window (SND.WL1/WL2).
    if (c.ts_ok && s.options.has_timestamps && !(s.flags & kRst) &&
        seq_lt(s.options.ts_val, c.ts_recent) && !disordered_ack(c, s)) {
        ++counters_.paws;
        send_ack(c, now_us);
        rte_pktmbuf_free(m);
        return;
    }
    // First: is the sequence number acceptable?
    if (!acceptable(c, s)) {
        if (!(s.flags & kRst)) {
            ++counters_.out_of_window;
            send_ack(c, now_us);
        } else {
            ++counters_.rst_out_of_window;
        }
        rte_pktmbuf_free(m);
        return;
    }
    touch(c, true);  // the peer is alive
    // Second: RST, only on an exact match (RFC 5961 3.2); else challenge.
    if (s.flags & kRst) {
        rte_pktmbuf_free(m);
        if (s.seq != c.rcv_nxt) {
            ++counters_.rst_challenged;
            ++counters_.challenge_acks;
            send_ack(c, now_us);
            return;
        }
        if (c.state == TcpState::kTimeWait) {
            if (c.handler) {
                // RFC 1337: a RST does not cut TIME-WAIT short while the
                // handler still reads the last bytes (it would lose them).
                ++counters_.rst_time_wait;
                return;
            }
            // An exact RST on a TIME-WAIT nobody reads ends it, as Linux
            // does by default (tcp_rfc1337 = 0): a client that reuses the
            // 4-tuple and met our ACK to its SYN resets it, and its
            // retransmitted SYN must then find the port free. RFC 5961's
            // exact match already keeps blind resets out.
            ++counters_.time_wait_reset;
            destroy(c, CloseReason::kClosed, false);
            return;
        }
        ++counters_.resets_received;
        destroy(c, CloseReason::kReset, true);
        return;
    }
    // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 4).
    if (s.flags & kSyn) {
        ++counters_.syn_challenged;
        ++counters_.challenge_acks;
        send_ack(c, now_us);
        rte_pktmbuf_free(m);
        return;
    }
    // Fifth: the ACK field.
    if (!(s.flags & kAck)) {
        ++counters_.no_ack_flag;
        rte_pktmbuf_free(m);
        return;
    }
    if (c.state == TcpState::kSynReceived) {
        if (!seq_in(s.ack, c.snd_una + 1, c.snd_nxt + 1)) {
            ++counters_.bad_ack;
            send_rst_for(s);
            rte_pktmbuf_free(m);
            return;
        }
        if (c.listener >= 0) {
            --listeners_[static_cast<size_t>(c.listener)].pending;
            Listener* l = listeners_[static_cast<size_t>(c.listener)].listener;
            c.listener = -1;
            set_state(c, TcpState::kEstablished);
            c.snd_wnd = static_cast<uint32_t>(s.window) << c.snd_wscale;
            c.snd_wl1 = s.seq;
            c.snd_wl2 = s.ack;
            ++counters_.accepts;
            // Unlistened since the SYN (a reload removed the port): reset.
            c.handler = l ? l->accept(c) : nullptr;
            if (!c.handler) {
                send_rst(c);
                destroy(c, CloseReason::kAborted, false);
                rte_pktmbuf_free(m);
                return;
            }
            process_ack(c, s, now_us);
            if (c.generation == gen) c.handler->on_established(c);
            if (c.generation != gen) {
                rte_pktmbuf_free(m);
                return;
            }
        } else {
            set_state(c, TcpState::kEstablished);  // simultaneous open
            process_ack(c, s, now_us);
            if (c.generation == gen && c.handler) c.handler->on_established(c);
            if (c.generation != gen) {
                rte_pktmbuf_free(m);
                return;
            }
        }
    } else {
        if (seq_gt(s.ack, c.snd_nxt)) {
            // It acknowledges something not yet sent.
            ++counters_.bad_ack;
            send_ack(c, now_us);
            rte_pktmbuf_free(m);
            return;
        }
        process_ack(c, s, now_us);
        if (c.generation != gen) {
            rte_pktmbuf_free(m);
            return;
        }
    }
    // RFC 7323 4.3: remember the timestamp to echo.
    if (c.ts_ok && s.options.has_timestamps && seq_leq(s.seq, c.last_ack_sent) &&
        seq_geq(s.options.ts_val, c.ts_recent)) {
        c.ts_recent = s.options.ts_val;
    }
    // Seventh: the segment text.
    process_data(c, s, m, now_us);
    if (c.generation != gen) return;
    // Eighth: FIN, once everything before it arrived.
    if ((s.flags & kFin) && s.seq + s.payload_len == c.rcv_nxt && !c.fin_received) process_fin(c, now_us);
    if (c.generation != gen) return;
    if (c.state == TcpState::kTimeWait && c.handler && !c.close_deferred) {
        close_normally(c);
        if (c.generation != gen) return;
    }
    if (defer(c)) return;  // end_burst() finishes it
    finish_input(c, now_us);
}

void Stack::finish_input(Connection& c, uint64_t now_us) {
    if (c.ack_now) {
        send_ack(c, now_us);
    } else if (c.unacked_segments > 0 &&
               c.timers[static_cast<unsigned>(TcpTimer::kDelayedAck)] == kInvalidTimer) {
        arm(c, TcpTimer::kDelayedAck, params_.delayed_ack_us);
    }
    send_data(c, now_us);
}

bool Stack::defer(Connection& c) {
    if (!burst_) return false;
    if (c.in_burst) return true;
    if (burst_n_ == kBurstList) return false;
    c.in_burst = true;
    burst_list_[burst_n_++] = Drained{c.index, c.generation};
    return true;
}

void Stack::notify_readable(Connection& c) {
    if (!c.handler) return;
    if (defer(c)) {
        c.wake_readable = true;
        return;
    }
    c.handler->on_readable(c);
}

void Stack::notify_writable(Connection& c) {
    if (!c.handler) return;
    if (defer(c)) {
        c.wake_writable = true;
        return;
    }
    c.handler->on_writable(c);
}

void Stack::end_burst(uint64_t now_us) {
    now_us_ = now_us;
    burst_ = false;
    // The handlers first: what they send in answer carries the ACK.
    for (unsigned i = 0; i < burst_n_; ++i) {
        Connection& c = conns_[burst_list_[i].index];
        const uint32_t gen = burst_list_[i].generation;
        if (c.generation != gen) continue;  // gone (and perhaps reused) since
        c.in_burst = false;
        if (c.wake_readable) {
            c.wake_readable = false;
            if (c.handler) c.handler->on_readable(c);
            if (c.generation != gen) continue;
        }
        if (c.wake_writable) {
            c.wake_writable = false;
            if (c.handler && send_space(c) > 0) c.handler->on_writable(c);
            if (c.generation != gen) continue;
        }
        if (c.state != TcpState::kClosed) finish_input(c, now_us);
    }
    burst_n_ = 0;
}

void Stack::rack_on_ack(Connection& c, const Segment& s, uint64_t now_us) {
    if (c.sent_n == 0) return;
    // RFC 8985 6.2 steps 1-2: the newest transmission delivered.
    unsigned kept = 0;
    for (unsigned i = 0; i < c.sent_n; ++i) {
        const Connection::SentRange& r = c.sent_log[i];
        const bool delivered = seq_leq(r.end, c.snd_una) ||
                               (c.sacked.is_sacked(r.seq) && seq_geq(c.sacked.skip_sacked(r.seq), r.end));
        if (!delivered) {
            c.sent_log[kept++] = r;
            continue;
        }
        // An ACK that echoes an older TSval was for the first copy: it
        // says nothing about when this one arrived (RFC 8985 6.2 step 2).
        if (r.retransmit && c.ts_ok && s.options.has_timestamps && seq_lt(s.options.ts_ecr, r.ts_val)) continue;
        if (r.xmit_us > c.rack_xmit_us || (r.xmit_us == c.rack_xmit_us && seq_gt(r.end, c.rack_end))) {
            c.rack_xmit_us = r.xmit_us;
            c.rack_end = r.end;
            c.rack_rtt_us = now_us - r.xmit_us;
        }
    }
    c.sent_n = static_cast<uint8_t>(kept);
    rack_detect(c, now_us);
}

void Stack::rack_detect(Connection& c, uint64_t now_us) {
    if (!c.in_recovery || c.rack_xmit_us == 0) return;
    // RFC 8985 6.2 step 4 (reo_wnd: a quarter of the smoothed RTT) and
    // step 5: sent before RACK.xmit and still missing after RACK.rtt +
    // reo_wnd means lost.
    const uint64_t reo_wnd = c.rtt.srtt_us() / 4;
    uint64_t wait = 0;
    Connection::SentRange lost[Connection::kSentLog];
    unsigned n_lost = 0, kept = 0;
    for (unsigned i = 0; i < c.sent_n; ++i) {
        const Connection::SentRange r = c.sent_log[i];
        const bool before = r.xmit_us < c.rack_xmit_us ||
                            (r.xmit_us == c.rack_xmit_us && seq_lt(r.end, c.rack_end));
        // First transmissions are RFC 6675's to judge; only copies sent
        // before the newest delivery can be proven lost.
        if (r.retransmit && before) {
            const uint64_t due = r.xmit_us + c.rack_rtt_us + reo_wnd;
            if (now_us >= due) {
                lost[n_lost++] = r;
                continue;  // out of the log: its resend is logged anew
            }
            if (!wait || due - now_us < wait) wait = due - now_us;
        }
        c.sent_log[kept++] = r;
    }
    c.sent_n = static_cast<uint8_t>(kept);
    // Lost again: resend what the peer still lacks of each, in segments.
    for (unsigned k = 0; k < n_lost; ++k) {
        for (uint32_t at = lost[k].seq; seq_lt(at, lost[k].end);) {
            at = c.sacked.skip_sacked(seq_max(at, c.snd_una));
            if (!seq_lt(at, lost[k].end)) break;
            const uint32_t len = std::min<uint32_t>(payload_limit(c), lost[k].end - at);
            if (!resend(c, at, len, now_us)) break;
            ++counters_.rack_lost_retransmits;
            at += len;
        }
    }
    if (wait) arm(c, TcpTimer::kReorder, wait);
}

void Stack::process_ack(Connection& c, const Segment& s, uint64_t now_us) {
    const uint32_t gen = c.generation;
    process_ack_fields(c, s, now_us);
    if (c.generation == gen && c.state != TcpState::kClosed) rack_on_ack(c, s, now_us);
}

void Stack::process_ack_fields(Connection& c, const Segment& s, uint64_t now_us) {
    const uint32_t ack = s.ack;
    const uint32_t old_wnd = c.snd_wnd;
    // RFC 6675 5 (A): the scoreboard learns what the peer holds.
    uint32_t newly_sacked = 0;
    if (c.sack_ok && s.options.n_sack > 0 && c.snd_nxt != c.snd_una) {
        newly_sacked = c.sacked.update(s.options.sack, s.options.n_sack, seq_max(ack, c.snd_una), c.snd_nxt);
    }
    // Window update (RFC 9293 3.10.7.4, SND.WL1/WL2).
    if (seq_lt(c.snd_wl1, s.seq) || (c.snd_wl1 == s.seq && seq_leq(c.snd_wl2, ack))) {
        c.snd_wnd = static_cast<uint32_t>(s.window) << c.snd_wscale;
        c.snd_wl1 = s.seq;
        c.snd_wl2 = ack;
        if (c.snd_wnd > 0) disarm(c, TcpTimer::kPersist);
    }
    if (seq_gt(ack, c.snd_una)) {
        uint32_t acked = ack - c.snd_una;
        // SYN and FIN occupy sequence space but not the queue.
        if (c.snd_una == c.iss) --acked;
        if (c.fin_sent && seq_gt(ack, c.fin_seq)) --acked;
        uint32_t data = std::min(acked, c.sndq.bytes);
        bq_consume(c.sndq, data);
        c.snd_una = ack;
        c.sacked.advance(ack);
        c.high_rxt = seq_max(c.high_rxt, ack);
        if (c.rto_recovery) {
            // The peer holds everything below ACK: resending goes on above it.
            c.rtx_nxt = seq_max(c.rtx_nxt, ack);
            if (!seq_lt(c.rtx_nxt, c.snd_nxt)) c.rto_recovery = false;
        }
        // RTT: timestamps give a sample per ACK (RFC 7323 4.1), otherwise
        // the one timed segment, never a retransmitted one (Karn).
        if (c.ts_ok && s.options.has_timestamps && s.options.ts_ecr != 0) {
            const uint32_t echoed = ts_now(now_us) - s.options.ts_ecr;
            c.rtt.sample(static_cast<uint64_t>(echoed) * 1000 + 1);
            c.rtt_timing = false;
        } else if (c.rtt_timing && seq_gt(ack, c.rtt_seq)) {
            c.rtt.sample(now_us - c.rtt_start_us);
            c.rtt_timing = false;
        }
        c.retries = 0;
        CongestionControl& cc = c.congestion();
        if (c.in_recovery) {
            if (seq_geq(ack, c.recover)) {
                cc.on_recovery_end();
                c.in_recovery = false;
                c.sacked.clear();
                c.sent_n = 0;
                c.rack_xmit_us = 0;
            } else if (c.sacked.empty()) {
                retransmit_first(c, now_us);  // RFC 6582 partial ACK
            }
            // With SACK, send_data() after this ACK runs RFC 6675 5 (C).
        } else {
            cc.on_ack(data, now_us, c.rtt.srtt_us());
        }
        c.dupacks = 0;
        if (c.tlp_out && seq_geq(ack, c.tlp_high)) c.tlp_out = false;  // the tail is through
        if (c.snd_una == c.snd_nxt) {
            disarm(c, TcpTimer::kRetransmit);
            c.tlp_armed = false;
        } else {
            arm_retransmit(c);
        }
        const bool our_fin_acked = c.fin_sent && seq_gt(ack, c.fin_seq);
        switch (c.state) {
            case TcpState::kFinWait1:
                if (our_fin_acked) set_state(c, TcpState::kFinWait2);
                break;
            case TcpState::kClosing:
                if (our_fin_acked) {
                    set_state(c, TcpState::kTimeWait);
                    arm(c, TcpTimer::kTimeWait, params_.time_wait_us);
                }
                break;
            case TcpState::kLastAck:
                if (our_fin_acked) {
                    close_normally(c);
                    return;
                }
                break;
            default:
                break;
        }
        if (data > 0 && c.handler && send_space(c) > 0) notify_writable(c);
        return;
    }
    // A duplicate ACK: nothing new, no data, same window, data outstanding
    // (RFC 5681 2) -- or, with SACK, one that reports new data held (RFC
    // 6675 2).
    if (ack == c.snd_una && c.snd_nxt != c.snd_una && !(s.flags & (kSyn | kFin)) &&
        ((s.payload_len == 0 && c.snd_wnd == old_wnd) || newly_sacked > 0)) {
        ++c.dupacks;
        // RFC 6582 3.2 step 2: not again for losses of one window; RFC
        // 6675 5 (4): DupThresh duplicates, or the first byte is lost.
        // A tail loss probe went after everything else: when the peer
        // SACKs it with holes below, those are lost (RFC 8985 7.4: RACK
        // marks them; the probe being the newest delivery, at once).
        const bool probe_sacked = c.tlp_out && !c.sacked.empty() &&
                                  seq_geq(c.sacked.high_sacked(), c.tlp_high);
        const bool lost = c.dupacks >= SackScoreboard::kDupThresh || probe_sacked ||
                          (!c.sacked.empty() && c.sacked.is_lost(c.snd_una, payload_limit(c)));
        if (probe_sacked && !c.in_recovery) ++counters_.tlp_recoveries;
        // With SACK the scoreboard tells a new loss from the tail of the
        // last recovery, so a loss right at RecoveryPoint starts one too.
        const bool new_window = c.sacked.empty() ? seq_gt(ack, c.recover) : seq_geq(ack, c.recover);
        if (!c.in_recovery && lost && new_window) {
            enter_recovery(c, now_us);
        } else if (!c.in_recovery && !c.rto_recovery && c.dupacks < SackScoreboard::kDupThresh) {
            // RFC 3042 limited transmit: each of the first two duplicates
            // lets one new segment out beyond cwnd, so that a small window
            // still gathers the duplicates fast retransmit needs.
            const uint32_t cwnd = c.congestion().cwnd() + c.dupacks * payload_limit(c);
            if (send_new(c, std::min(c.snd_wnd, cwnd), now_us)) ++counters_.limited_transmits;
        }
    }
}

void Stack::enter_recovery(Connection& c, uint64_t now_us) {
    c.in_recovery = true;
    if (c.tlp_armed) arm_retransmit(c);  // no probes in recovery: the RTO stands
    c.recover = c.snd_nxt;
    c.congestion().on_loss(c.snd_nxt - c.snd_una, now_us);
    ++counters_.fast_retransmits;
    if (c.sacked.empty()) {
        retransmit_first(c, now_us);  // RFC 6582 3.2 step 3
        return;
    }
    // RFC 6675 5 (4.3): resend the segment at HighACK + 1, then let the
    // scoreboard say what else may go (4.4, in send_data).
    c.high_rxt = c.snd_una;
    uint32_t seq = 0, len = 0;
    if (c.sacked.next_hole(c.snd_una, c.snd_una, payload_limit(c), false, seq, len) &&
        resend(c, seq, len, now_us)) {
        ++counters_.sack_retransmits;
        c.high_rxt = seq + len;
    }
}

void Stack::process_data(Connection& c, const Segment& s, rte_mbuf* m, uint64_t now_us) {
    (void)now_us;
    const bool can_receive = c.state == TcpState::kEstablished ||
                             c.state == TcpState::kFinWait1 || c.state == TcpState::kFinWait2;
    if (s.payload_len == 0 || !can_receive || c.fin_received) {
        if (s.payload_len > 0) ++counters_.data_not_receiving;
        rte_pktmbuf_free(m);
        return;
    }
    if (!c.handler) {
        // Closed by us: nobody will read this (Linux resets an orphan
        // that receives data, RFC 2525 2.17).
        ++counters_.orphan_resets;
        rte_pktmbuf_free(m);
        send_rst(c);
        destroy(c, CloseReason::kAborted, false);
        return;
    }
    uint32_t seq = s.seq;
    uint32_t len = s.payload_len;
    uint32_t off = s.payload_offset;
    // Trim what lies beyond the window (RFC 9293 3.10.7.4, seventh).
    const uint32_t wnd_end = seq_gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv : c.rcv_nxt;
    if (seq_gt(seq + len, wnd_end)) len = wnd_end - seq;
    if (seq_lt(seq, c.rcv_nxt)) {
        const uint32_t skip = c.rcv_nxt - seq;
        if (skip >= len) {
            ++counters_.duplicate;
            c.ack_now = true;  // an old duplicate: tell the peer where we are
            rte_pktmbuf_free(m);
            return;
        }
        seq += skip;
        off += skip;
        len -= skip;
    }
    if (seq != c.rcv_nxt) {
        // Out of order: hold it, and ACK at once with SACK (RFC 5681 4.2).
        c.ack_now = true;
        // The bound is buffer memory, twice the window as Linux's default
        // tcp_adv_win_scale allows: a window of full segments fits.
        switch (c.ooo.insert(ooo_pool_, seq, len, m, off, c.rcv_nxt, 2 * params_.rcv_buf)) {
            case ReassemblyQueue::Insert::kHeld: ++counters_.ooo_held; break;
            case ReassemblyQueue::Insert::kDuplicate: ++counters_.duplicate; break;
            case ReassemblyQueue::Insert::kFull: ++counters_.ooo_full; break;
        }
        return;
    }
    // In order: keep just the payload.
    rte_pktmbuf_adj(m, static_cast<uint16_t>(off));
    rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - len));
    bq_append(c.rcvq, m);
    c.rcv_nxt += len;
    // The gap may have closed: take what the out-of-order queue holds.
    if (!c.ooo.empty()) {
        c.ack_now = true;
        rte_mbuf* chain = nullptr;
        uint32_t held = 0;
        while (c.ooo.pop(ooo_pool_, c.rcv_nxt, chain, held)) {
            bq_append(c.rcvq, chain);
            c.rcv_nxt += held;
        }
    }
    // Delayed ACK: every second full segment at once, else within 40 ms
    // (RFC 9293 3.8.6.3).
    if (++c.unacked_segments >= 2) c.ack_now = true;
    notify_readable(c);
}

void Stack::process_fin(Connection& c, uint64_t now_us) {
    c.fin_received = true;
    c.rcv_nxt += 1;
    c.ack_now = true;
    switch (c.state) {
        case TcpState::kSynReceived:
        case TcpState::kEstablished:
            set_state(c, TcpState::kCloseWait);
            break;
        case TcpState::kFinWait1:
            // Our FIN not acked yet (or it would be FIN-WAIT-2).
            set_state(c, TcpState::kClosing);
            break;
        case TcpState::kFinWait2:
            set_state(c, TcpState::kTimeWait);
            for (unsigned t = 0; t < kNumTcpTimers; ++t) disarm(c, static_cast<TcpTimer>(t));
            arm(c, TcpTimer::kTimeWait, params_.time_wait_us);
            break;
        case TcpState::kTimeWait:
            arm(c, TcpTimer::kTimeWait, params_.time_wait_us);  // restart 2 MSL
            break;
        default:
            break;
    }
    (void)now_us;
    notify_readable(c);
}

}  // namespace terminus::tcp
