// TCP's states, timers and drop reasons, each declared once with its
// printable name (VPP's foreach_tcp_fsm_state / tcp_error.def), and
// sequence-number arithmetic (RFC 9293 3.4). Private to dataplane/.
#pragma once

#include <cstdint>

namespace terminus::tcp {

// RFC 9293 3.3.2.
#define TERMINUS_TCP_STATES(X)        \
    X(kClosed, "CLOSED")              \
    X(kListen, "LISTEN")              \
    X(kSynSent, "SYN-SENT")           \
    X(kSynReceived, "SYN-RECEIVED")   \
    X(kEstablished, "ESTABLISHED")    \
    X(kFinWait1, "FIN-WAIT-1")        \
    X(kFinWait2, "FIN-WAIT-2")        \
    X(kCloseWait, "CLOSE-WAIT")       \
    X(kClosing, "CLOSING")            \
    X(kLastAck, "LAST-ACK")           \
    X(kTimeWait, "TIME-WAIT")

enum class TcpState : uint8_t {
#define TERMINUS_X(id, name) id,
    TERMINUS_TCP_STATES(TERMINUS_X)
#undef TERMINUS_X
};

constexpr const char* to_string(TcpState s) {
    switch (s) {
#define TERMINUS_X(id, name) \
    case TcpState::id:       \
        return name;
        TERMINUS_TCP_STATES(TERMINUS_X)
#undef TERMINUS_X
    }
    return "?";
}

// How many states TERMINUS_TCP_STATES lists (TcpCounters::state's size).
constexpr unsigned kNumTcpStates = 0
#define TERMINUS_X(id, name) +1
    TERMINUS_TCP_STATES(TERMINUS_X)
#undef TERMINUS_X
    ;

// One timer slot per kind in every connection (VPP tcp_timer.h).
#define TERMINUS_TCP_TIMERS(X)                                  \
    X(kRetransmit, "retransmit")   /* RFC 6298 */               \
    X(kDelayedAck, "delayed-ack")  /* RFC 9293 3.8.6.3 */       \
    X(kPersist, "persist")         /* zero-window probes */     \
    X(kKeepalive, "keepalive")     /* RFC 9293 3.8.4 */         \
    X(kTimeWait, "time-wait")      /* 2 MSL */                  \
    X(kIdle, "idle")               /* connect and idle timeouts */ \
    X(kDeadline, "deadline")       /* the handler's own bound */ \
    X(kReorder, "rack-reorder")    /* RFC 8985 6.3: RACK's reordering window */

enum class TcpTimer : uint8_t {
#define TERMINUS_X(id, name) id,
    TERMINUS_TCP_TIMERS(TERMINUS_X)
#undef TERMINUS_X
    kCount
};
constexpr unsigned kNumTcpTimers = static_cast<unsigned>(TcpTimer::kCount);

// Every reason a segment is dropped. Each is counted; none is an error.
#define TERMINUS_TCP_DROPS(X)                                                  \
    X(bad_header, "segments shorter than their data offset says")              \
    X(bad_checksum, "segments with a bad checksum")                            \
    X(bad_options, "segments with malformed options")                          \
    X(no_connection, "segments for no connection (answered with RST)")         \
    X(no_listener, "SYNs to a port nobody listens on (answered with RST)")     \
    X(out_of_window, "segments outside the receive window (answered with ACK)")\
    X(paws, "segments rejected by PAWS (RFC 7323 5)")                          \
    X(bad_ack, "segments acknowledging data never sent")                       \
    X(rst_out_of_window, "RSTs outside the window (RFC 5961 3)")               \
    X(rst_challenged, "RSTs answered with a challenge ACK (RFC 5961 3)")       \
    X(rst_no_connection, "RSTs for no connection (ignored, RFC 9293 3.10.7.1)")\
    X(rst_time_wait, "RSTs kept from ending a TIME-WAIT still read (RFC 1337)")\
    X(rst_unacceptable, "RSTs in SYN-SENT without an ACK of our SYN")          \
    X(not_syn, "segments to a listener neither SYN, ACK nor RST")              \
    X(no_ack_flag, "segments without ACK in a synchronized state")             \
    X(syn_sent_unexpected, "segments in SYN-SENT without SYN or RST")          \
    X(data_not_receiving, "data in a state that takes no more (after a FIN)")  \
    X(duplicate, "segments holding only bytes already received (ACKed)")       \
    X(syn_challenged, "SYNs in a synchronized state (RFC 5961 4)")             \
    X(backlog_full, "SYNs dropped: backlog full and SYN cookies off")          \
    X(bad_cookie, "ACKs carrying a SYN cookie that does not validate")         \
    X(ooo_full, "segments beyond the out-of-order queue's bound")              \
    X(no_memory, "segments dropped for want of a free connection or mbuf")

// Sequence space arithmetic modulo 2^32 (RFC 9293 3.4).
constexpr bool seq_lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
constexpr bool seq_leq(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
constexpr bool seq_gt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }
constexpr bool seq_geq(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }
// LO <= X < HI, in sequence space.
constexpr bool seq_in(uint32_t x, uint32_t lo, uint32_t hi) {
    return seq_leq(lo, x) && seq_lt(x, hi);
}
constexpr uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
constexpr uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

}  // namespace terminus::tcp
