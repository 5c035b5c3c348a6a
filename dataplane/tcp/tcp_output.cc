// Building what we send: SYN and SYN-ACK with their options, ACKs (with
// timestamps and SACK blocks), data within the peer's window and the
// congestion window, FIN when the application is done, RST.
#include <algorithm>

#include "dataplane/tcp/byte_queue.h"
#include "dataplane/tcp/tcp.h"

namespace terminus::tcp {

uint16_t Stack::payload_limit(const Connection& c) const {
    // RFC 9293 3.7.1: the MSS counts no options, so the options of each
    // segment come out of it.
    uint32_t opts = c.ts_ok ? 12 : 0;
    if (c.sack_ok && !c.ooo.empty()) {
        SackBlock b[kMaxSackBlocks];
        const unsigned n = c.ooo.sack_blocks(b, c.ts_ok ? 3 : 4);
        opts += 4 + 8 * n;
    }
    return static_cast<uint16_t>(c.snd_mss > opts + 64 ? c.snd_mss - opts : 64);
}

uint16_t Stack::advertised_window(Connection& c) {
    const uint32_t free_space = params_.rcv_buf > c.rcvq.bytes ? params_.rcv_buf - c.rcvq.bytes : 0;
    uint32_t wnd = free_space;
    // Never shrink the window we advertised (RFC 9293 3.8.6.2.2).
    const uint32_t promised = c.rcv_adv - c.rcv_nxt;
    if (seq_gt(c.rcv_adv, c.rcv_nxt) && wnd < promised) wnd = promised;
    // What the 16-bit field can say is what the peer will believe.
    const uint32_t scaled = std::min<uint32_t>(wnd >> c.rcv_wscale, 65535);
    const uint32_t advertised = scaled << c.rcv_wscale;
    c.rcv_wnd = advertised;
    // Never move the right edge back (a shrinking window, RFC 9293 3.8.6.2.2).
    if (seq_gt(c.rcv_nxt + advertised, c.rcv_adv) || !seq_gt(c.rcv_adv, c.rcv_nxt)) {
        c.rcv_adv = c.rcv_nxt + advertised;
    }
    return static_cast<uint16_t>(scaled);
}

rte_mbuf* Stack::make(const Connection& cc, uint32_t seq, uint8_t flags, const uint8_t* payload,
                      uint32_t len, uint64_t now_us, bool syn_options) {
    auto& c = const_cast<Connection&>(cc);
    uint8_t opts[40];
    size_t olen = 0;
    if (syn_options) {
        SynOptions so;
        so.mss = params_.mss;
        // On a SYN-ACK, offer only what the SYN offered (RFC 7323 1.3).
        const bool synack = flags & kAck;
        so.wscale = synack ? c.ws_ok : params_.window_scaling;
        so.shift = c.rcv_wscale;
        so.sack_permitted = params_.sack && (!synack || c.sack_ok);
        so.timestamps = params_.timestamps && (!synack || c.ts_ok);
        so.ts_val = ts_now(now_us);
        so.ts_ecr = c.ts_recent;
        olen = write_syn_options(opts, so);
    } else {
        SackBlock sack[kMaxSackBlocks];
        unsigned n_sack = c.sack_ok ? c.ooo.sack_blocks(sack, kMaxSackBlocks) : 0;
        olen = write_options(opts, c.ts_ok, ts_now(now_us), c.ts_recent, sack, n_sack);
    }
    OutSegment s;
    s.tuple = c.tuple;
    s.seq = seq;
    s.flags = flags;
    if (flags & kAck) {
        s.ack = c.rcv_nxt;
        c.last_ack_sent = c.rcv_nxt;
    }
    s.window = (flags & kSyn) ? static_cast<uint16_t>(std::min<uint32_t>(params_.rcv_buf, 65535))
                              : advertised_window(c);
    if (flags & kSyn) {
        // The window in a SYN is never scaled (RFC 7323 2.2).
        c.rcv_wnd = std::min<uint32_t>(params_.rcv_buf, 65535);
        c.rcv_adv = c.rcv_nxt + c.rcv_wnd;
    }
    s.options = opts;
    s.options_len = static_cast<uint8_t>(olen);
    s.payload = payload;
    s.payload_len = len;
    Route r{};
    r.src_mac = mac_;
    return build_segment(pool_, r, s);
}

void Stack::emit(Connection* c, rte_mbuf* m, uint32_t remote_ip) {
    if (!m) {
        ++counters_.no_memory;
        return;
    }
    ++counters_.segments_out;
    if (c) {
        c->unacked_segments = 0;
        c->ack_now = false;
        disarm(*c, TcpTimer::kDelayedAck);
    }
    out_.send(m, remote_ip);
}

void Stack::send_syn(Connection& c, bool ack, uint64_t now_us) {
    if (c.snd_nxt == c.iss) {
        // First transmission: choose our window shift (RFC 7323 2.2), for
        // a SYN-ACK only if the SYN offered scaling.
        const bool scale = ack ? c.ws_ok : params_.window_scaling;
        c.rcv_wscale = scale ? window_shift_for(params_.rcv_buf) : 0;
        c.snd_nxt = c.iss + 1;
    }
    rte_mbuf* m = make(c, c.iss, static_cast<uint8_t>(kSyn | (ack ? kAck : 0)), nullptr, 0, now_us, true);
    if (!c.rtt_timing && c.retries == 0) {
        c.rtt_timing = true;
        c.rtt_seq = c.iss;
        c.rtt_start_us = now_us;
    }
    emit(&c, m, c.tuple.remote_ip);
    arm(c, TcpTimer::kRetransmit, c.rtt.rto_us());
}

uint32_t Stack::acceptable_seq(const Connection& c) const {
    // SND.NXT, unless it lies beyond the peer's window (a peer short of
    // memory drops data it had room for, and its window closes below what
    // we sent): then the window's end, which it accepts. Linux's
    // tcp_acceptable_seq; one unit of the peer's window scale is rounding.
    const uint32_t wnd_end = c.snd_una + c.snd_wnd;
    if (seq_leq(c.snd_nxt, wnd_end) || c.snd_nxt - wnd_end < (1u << c.snd_wscale)) return c.snd_nxt;
    return wnd_end;
}

void Stack::send_ack(Connection& c, uint64_t now_us) {
    emit(&c, make(c, acceptable_seq(c), kAck, nullptr, 0, now_us, false), c.tuple.remote_ip);
}

void Stack::send_rst(Connection& c) {
    OutSegment s;
    s.tuple = c.tuple;
    s.seq = acceptable_seq(c);
    s.ack = c.rcv_nxt;
    s.flags = kRst | kAck;
    Route r{};
    r.src_mac = mac_;
    ++counters_.resets_sent;
    emit(nullptr, build_segment(pool_, r, s), c.tuple.remote_ip);
}

void Stack::send_rst_for(const Segment& in) {
    // RFC 9293 3.10.7.1: if the ACK bit is off, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
    // <CTL=RST,ACK>; if on, <SEQ=SEG.ACK><CTL=RST>.
    OutSegment s;
    s.tuple = in.tuple;
    if (in.flags & kAck) {
        s.seq = in.ack;
        s.flags = kRst;
    } else {
        s.seq = 0;
        s.ack = in.seq + in.seg_len();
        s.flags = kRst | kAck;
    }
    Route r{};
    r.src_mac = mac_;
    ++counters_.resets_sent;
    emit(nullptr, build_segment(pool_, r, s), in.tuple.remote_ip);
}

bool Stack::send_new(Connection& c, uint32_t wnd, uint64_t now_us) {
    const uint32_t in_flight = c.snd_nxt - c.snd_una;
    // Bytes of the queue not sent yet (the FIN, when sent, is past them).
    const uint32_t unsent = c.sndq.bytes > in_flight ? c.sndq.bytes - in_flight : 0;
    const uint32_t room = wnd > in_flight ? wnd - in_flight : 0;
    const uint32_t limit = payload_limit(c);
    const uint32_t len = std::min({unsent, room, limit});
    // The FIN takes the sequence number after the last byte; it goes
    // with the segment that carries that byte (or alone).
    const uint32_t fin_seq = c.snd_una + c.sndq.bytes;
    const bool fin_now = c.fin_queued && c.snd_nxt + len == fin_seq;
    if (len == 0 && !fin_now) return false;
    // Avoid silly window syndrome (RFC 9293 3.8.6.2.1): send a partial
    // segment only when it is all there is.
    if (len < limit && (len < unsent || c.corked)) return false;
    uint8_t buf[9216];
    if (len) bq_copy(c.sndq, in_flight, len, buf);
    uint8_t flags = kAck | (len ? kPsh : 0);
    if (fin_now) flags |= kFin;
    rte_mbuf* m = make(c, c.snd_nxt, flags, buf, len, now_us, false);
    if (!m) {
        ++counters_.no_memory;
        return false;
    }
    if (!c.rtt_timing) {
        c.rtt_timing = true;
        c.rtt_seq = c.snd_nxt;
        c.rtt_start_us = now_us;
    }
    if (fin_now) {
        c.fin_sent = true;
        c.fin_seq = c.snd_nxt + len;
    }
    if (c.in_recovery && len) rack_log(c, c.snd_nxt, c.snd_nxt + len, false);
    c.snd_nxt += len + (fin_now ? 1 : 0);
    emit(&c, m, c.tuple.remote_ip);
    // RFC 6298 5.1: the RTO starts if it is not running; a PTO restarts
    // with every new segment (RFC 8985 7.2), so it counts from the tail.
    if (c.timers[static_cast<unsigned>(TcpTimer::kRetransmit)] == kInvalidTimer || c.tlp_armed) {
        arm_retransmit(c);
    }
    return true;
}

void Stack::arm_retransmit(Connection& c) {
    // RFC 8985 7.2: a PTO instead of the RTO when SACK can tell what the
    // probe reveals, nothing is being recovered, no probe is out for this
    // tail, and an RTT is known.
    const bool open = c.state == TcpState::kEstablished || c.state == TcpState::kCloseWait;
    if (c.sack_ok && open && !c.in_recovery && !c.rto_recovery && !c.tlp_out && c.rtt.has_sample()) {
        uint64_t pto = 2 * c.rtt.srtt_us();
        // One segment in flight: the peer may delay its ACK (WCDelAckT).
        if (c.snd_nxt - c.snd_una <= payload_limit(c)) pto += params_.delayed_ack_us + 10'000;
        pto = std::max<uint64_t>(pto, 10'000);
        if (pto < c.rtt.rto_us()) {
            c.tlp_armed = true;
            arm(c, TcpTimer::kRetransmit, pto);
            return;
        }
    }
    c.tlp_armed = false;
    arm(c, TcpTimer::kRetransmit, c.rtt.rto_us());
}

void Stack::send_probe(Connection& c, uint64_t now_us) {
    ++counters_.tlp_probes;
    c.tlp_out = true;
    // New data, one segment beyond cwnd if need be (RFC 8985 7.3).
    const uint32_t in_flight = c.snd_nxt - c.snd_una;
    if (!send_new(c, std::min(c.snd_wnd, in_flight + payload_limit(c)), now_us)) {
        // Else the last segment again (with the FIN when it is last).
        const uint32_t end = c.fin_sent ? c.fin_seq : c.snd_nxt;
        const uint32_t len = std::min<uint32_t>(payload_limit(c), end - c.snd_una);
        resend(c, end - len, len, now_us);
    }
    // The probe's last data byte + 1: what a SACK of it reaches.
    c.tlp_high = c.fin_sent ? c.fin_seq : c.snd_nxt;
}

bool Stack::send_data(Connection& c, uint64_t now_us) {
    if (c.state != TcpState::kEstablished && c.state != TcpState::kCloseWait &&
        c.state != TcpState::kFinWait1 && c.state != TcpState::kLastAck &&
        c.state != TcpState::kClosing) {
        return false;
    }
    bool sent = false;
    if (c.rto_recovery) sent = rto_transmit(c, now_us);
    if (c.rto_recovery) {
        // Still resending: new data waits.
    } else if (c.in_recovery && !c.sacked.empty()) {
        sent |= sack_transmit(c, now_us);
    } else {
        const uint32_t wnd = std::min(c.snd_wnd, c.congestion().cwnd());
        while (send_new(c, wnd, now_us)) sent = true;
    }
    // Data waits but the peer's window is closed: probe it (RFC 9293 3.8.6.1).
    if (!sent && c.snd_wnd == 0 && c.sndq.bytes > c.snd_nxt - c.snd_una &&
        c.timers[static_cast<unsigned>(TcpTimer::kPersist)] == kInvalidTimer &&
        c.timers[static_cast<unsigned>(TcpTimer::kRetransmit)] == kInvalidTimer) {
        arm(c, TcpTimer::kPersist, c.rtt.rto_us());
    }
    return sent;
}

bool Stack::sack_transmit(Connection& c, uint64_t now_us) {
    // RFC 6675 5 (C): cwnd is ssthresh during recovery (step 4.2); NewReno
    // inflates its own cwnd for the non-SACK path, so take the smaller.
    CongestionControl& cc = c.congestion();
    const uint32_t cwnd = std::min(cc.cwnd(), cc.ssthresh());
    const uint32_t smss = payload_limit(c);
    bool sent = false;
    // Each round sends one segment or stops; the bound keeps one ACK's
    // work finite whatever the scoreboard says.
    for (unsigned round = 0; round < 64; ++round) {
        const uint32_t pipe = c.sacked.pipe(c.snd_una, c.snd_nxt, c.high_rxt, smss);
        if (pipe + smss > cwnd) break;
        uint32_t seq = 0, len = 0;
        // NextSeg() rule (1): a hole presumed lost.
        if (c.sacked.next_hole(c.snd_una, c.high_rxt, smss, true, seq, len)) {
            if (!resend(c, seq, len, now_us)) break;
            ++counters_.sack_retransmits;
            c.high_rxt = seq + len;
            sent = true;
            continue;
        }
        // Rule (2): new data, within the peer's window.
        const uint32_t in_flight = c.snd_nxt - c.snd_una;
        const uint32_t wnd = std::min(c.snd_wnd, in_flight + (cwnd - pipe));
        if (send_new(c, wnd, now_us)) {
            sent = true;
            continue;
        }
        // Rule (3): a hole not yet presumed lost.
        if (c.sacked.next_hole(c.snd_una, c.high_rxt, smss, false, seq, len)) {
            if (!resend(c, seq, len, now_us)) break;
            ++counters_.sack_retransmits;
            c.high_rxt = seq + len;
            sent = true;
            continue;
        }
        break;
    }
    return sent;
}

bool Stack::rto_transmit(Connection& c, uint64_t now_us) {
    // The bytes resent since the timeout are all that is presumed in the
    // network (RFC 6675 5.1's view after an RTO): cwnd bounds them. With
    // none of them outstanding one goes whatever the windows say (cwnd is
    // at least one segment; a closed peer window is probed so).
    const uint32_t cwnd = c.congestion().cwnd();
    const uint32_t smss = payload_limit(c);
    const uint32_t end = c.fin_sent ? c.fin_seq + 1 : c.snd_una + c.sndq.bytes;
    bool sent = false;
    for (unsigned round = 0; round < 64; ++round) {
        if (seq_lt(c.rtx_nxt, c.snd_una)) c.rtx_nxt = c.snd_una;
        c.rtx_nxt = c.sacked.skip_sacked(c.rtx_nxt);
        if (!seq_lt(c.rtx_nxt, end) || !seq_lt(c.rtx_nxt, c.snd_nxt)) {
            c.rto_recovery = false;
            break;
        }
        // Resent and neither acknowledged nor SACKed since.
        const uint32_t out = c.rtx_nxt - c.snd_una -
                             (c.sacked.sacked_above(c.snd_una - 1) - c.sacked.sacked_above(c.rtx_nxt - 1));
        const uint32_t data_end = seq_min(c.fin_sent ? c.fin_seq : end, c.snd_nxt);
        const uint32_t len = std::min(smss, data_end - c.rtx_nxt);
        if (out > 0 && (out + len > cwnd || out + len > c.snd_wnd)) break;
        if (!resend(c, c.rtx_nxt, len, now_us)) break;
        const bool fin = c.fin_sent && c.rtx_nxt + len == c.fin_seq;
        c.rtx_nxt += len + (fin ? 1 : 0);
        c.high_rxt = seq_max(c.high_rxt, c.rtx_nxt);
        sent = true;
    }
    return sent;
}

bool Stack::resend(Connection& c, uint32_t seq, uint32_t len, uint64_t now_us) {
    if (c.snd_una == c.iss || seq_lt(seq, c.snd_una)) return false;  // the SYN is not in the queue
    const uint32_t off = seq - c.snd_una;
    const uint32_t avail = c.sndq.bytes > off ? c.sndq.bytes - off : 0;
    len = std::min(len, avail);
    const bool fin = c.fin_sent && seq + len == c.fin_seq;
    if (len == 0 && !fin) return false;
    uint8_t buf[9216];
    if (len) bq_copy(c.sndq, off, len, buf);
    rte_mbuf* m = make(c, seq, static_cast<uint8_t>(kAck | (len ? kPsh : 0) | (fin ? kFin : 0)),
                       len ? buf : nullptr, len, now_us, false);
    if (!m) {
        ++counters_.no_memory;
        return false;
    }
    ++counters_.retransmits;
    c.rtt_timing = false;  // Karn: no sample from a retransmission
    if (c.in_recovery && len) rack_log(c, seq, seq + len, true);
    emit(&c, m, c.tuple.remote_ip);
    return true;
}

void Stack::rack_log(Connection& c, uint32_t seq, uint32_t end, bool retransmit) {
    if (c.sent_n > 0) {
        Connection::SentRange& last = c.sent_log[c.sent_n - 1];
        if (last.end == seq && last.xmit_us == now_us_ && last.retransmit == retransmit) {
            last.end = end;  // the same burst
            return;
        }
    }
    if (c.sent_n == Connection::kSentLog) {
        // Full: forget the oldest (a loss of it is left to the RTO).
        for (unsigned i = 1; i < c.sent_n; ++i) c.sent_log[i - 1] = c.sent_log[i];
        --c.sent_n;
    }
    c.sent_log[c.sent_n++] = Connection::SentRange{seq, end, now_us_, ts_now(now_us_), retransmit};
}

void Stack::retransmit_first(Connection& c, uint64_t now_us) {
    // Resend one segment from SND.UNA (go-back-N restarts from there when
    // the timer fires; fast retransmit resends just this one).
    ++counters_.retransmits;
    c.rtt_timing = false;  // Karn: no sample from a retransmission
    if (c.state == TcpState::kSynSent) {
        send_syn(c, false, now_us);
        return;
    }
    if (c.state == TcpState::kSynReceived) {
        send_syn(c, true, now_us);
        return;
    }
    const uint32_t len = std::min<uint32_t>(c.sndq.bytes, payload_limit(c));
    const bool fin = c.fin_sent && len == c.sndq.bytes;
    uint8_t buf[9216];
    if (len) bq_copy(c.sndq, 0, len, buf);
    rte_mbuf* m = make(c, c.snd_una, static_cast<uint8_t>(kAck | (len ? kPsh : 0) | (fin ? kFin : 0)),
                       buf, len, now_us, false);
    emit(&c, m, c.tuple.remote_ip);
}

}  // namespace terminus::tcp
