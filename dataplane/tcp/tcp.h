// The userspace TCP of one lcore (RFC 9293 and the RFCs it builds on).
// Connections, listeners and timers belong to the core that owns the flow;
// nothing here takes a lock, allocates after start, or makes a syscall.
// What runs on a connection — the plain proxy, TLS, the preread — plugs in
// through Handler. Private to dataplane/.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include "config/config.h"
#include "dataplane/tcp/congestion.h"
#include "dataplane/tcp/tcp_isn.h"
#include "dataplane/tcp/tcp_reassembly.h"
#include "dataplane/tcp/tcp_rtt.h"
#include "dataplane/tcp/tcp_sack.h"
#include "dataplane/tcp/tcp_segment.h"
#include "dataplane/tcp/tcp_types.h"
#include "dataplane/tcp/timer_wheel.h"

namespace terminus::tcp {

struct Connection;

enum class CloseReason : uint8_t {
    kClosed,   // both sides finished (or we closed and the peer acked)
    kReset,    // the peer reset the connection
    kRefused,  // an active open met a RST
    kTimeout,  // retransmissions or the handshake gave up
    kAborted,  // we reset it
    kIdle,     // its idle timeout expired: a FIN went, it finishes on its own
    kDeadline, // the handler's deadline passed: closed as by close()
};
const char* to_string(CloseReason r);

// What runs on top of a connection.
class Handler {
  public:
    virtual ~Handler() = default;
    virtual void on_established(Connection& c) = 0;
    // Data (or the peer's FIN: c.peer_closed()) is ready to read.
    virtual void on_readable(Connection& c) = 0;
    // Send space was freed.
    virtual void on_writable(Connection& c) = 0;
    // The connection is over for the handler: C is recycled when this
    // returns, or, in TIME-WAIT, stays a little longer without a handler.
    virtual void on_closed(Connection& c, CloseReason why) = 0;
};

// Accepts passive connections on one address and port.
class Listener {
  public:
    virtual ~Listener() = default;
    // The handler for a new connection, or null to refuse it (RST).
    virtual Handler* accept(Connection& c) = 0;
};

// Where finished frames go: Ethernet + IPv4 + TCP, the destination MAC
// still to be resolved for TUPLE.remote_ip.
class Output {
  public:
    virtual ~Output() = default;
    virtual void send(rte_mbuf* frame, uint32_t remote_ip) = 0;
};

#define TERMINUS_TCP_COUNTERS(X)                                           \
    X(segments_in, "segments received")                                    \
    X(segments_out, "segments sent")                                       \
    X(retransmits, "segments retransmitted")                               \
    X(fast_retransmits, "fast recoveries (duplicate ACKs or SACKed loss)") \
    X(sack_retransmits, "segments resent from the SACK scoreboard")       \
    X(limited_transmits, "new segments sent on a duplicate ACK (RFC 3042)") \
    X(rto_expired, "retransmission timeouts")                              \
    X(tlp_probes, "tail loss probes sent (RFC 8985 7)")                    \
    X(tlp_recoveries, "losses a tail loss probe revealed (recovered without an RTO)") \
    X(rack_lost_retransmits, "retransmissions found lost by RACK and resent (RFC 8985 6)") \
    X(ooo_held, "out-of-order segments held")                              \
    X(accepts, "connections accepted")                                     \
    X(connects, "connections opened")                                      \
    X(resets_sent, "RSTs sent")                                            \
    X(resets_received, "RSTs accepted")                                    \
    X(time_wait_reset, "TIME-WAIT connections ended by the peer's RST (as Linux)") \
    X(challenge_acks, "challenge ACKs sent (RFC 5961)")                    \
    X(syn_cookies_sent, "SYN cookies sent")                                \
    X(syn_cookies_ok, "SYN cookies validated")                             \
    X(timer_full, "timers not started: the wheel was full")                \
    X(connect_timeouts, "active opens that timed out")                    \
    X(idle_timeouts, "connections closed after their idle timeout")       \
    X(orphan_resets, "closed connections reset: data came, or they lingered") \
    X(pmtu_lowered, "connections whose MSS an ICMP frag-needed lowered")  \
    X(keepalive_probes, "keepalive probes sent")                          \
    X(keepalive_timeouts, "connections dropped: keepalive unanswered")    \
    X(time_wait_reused, "TIME-WAIT connections taken over by a newer SYN or connect") \
    X(time_wait_recycled, "TIME-WAIT connections recycled for want of a slot") \
    TERMINUS_TCP_DROPS(X)

struct TcpCounters {
#define TERMINUS_X(name, help) uint64_t name = 0;
    TERMINUS_TCP_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
    uint64_t state[kNumTcpStates] = {};  // connections in each TcpState (gauges)
};

struct TcpParams {
    uint16_t mss = 1460;              // what we announce (MTU - 40)
    uint32_t rcv_buf = 256 * 1024;    // receive window per connection
    uint32_t snd_buf = 256 * 1024;    // send buffer per connection
    bool window_scaling = true;
    bool sack = true;
    bool timestamps = true;
    uint32_t max_connections = 4096;  // this core's
    config::SynCookies syncookies = config::SynCookies::kOn;
    config::CongestionControl congestion = config::CongestionControl::kNewReno;
    RtoLimits rto;
    uint64_t delayed_ack_us = 40'000;
    uint64_t time_wait_us = 60'000'000;  // 2 MSL, as Linux
    uint64_t orphan_us = 60'000'000;     // a closed connection's FIN exchange (Linux tcp_fin_timeout)
    unsigned syn_retries = 5;
    unsigned data_retries = 15;       // RFC 9293 3.8.3's R2, as Linux's tcp_retries2
    uint64_t tick_us = 1000;          // timer wheel resolution
};

// A flow's sending side holds its data from SND.UNA on as one mbuf chain
// (copied into segments when sent, kept until acknowledged).
struct ByteQueue {
    rte_mbuf* head = nullptr;
    rte_mbuf* tail = nullptr;
    uint32_t bytes = 0;
};

// No connection: the end of an index list.
constexpr uint32_t kNoConnection = UINT32_MAX;

struct Connection {
    FourTuple tuple;
    TcpState state = TcpState::kClosed;
    Handler* handler = nullptr;
    void* user = nullptr;  // for the handler
    uint32_t index = 0;    // in the stack's slab
    // Changes whenever the slot is freed or reused: code that calls a
    // handler (which may close C and open another connection into the same
    // slot) compares it before and after instead of trusting the state.
    uint32_t generation = 0;
    int16_t listener = -1;  // while in SYN-RECEIVED: whose backlog it counts in
    uint32_t last_ack_sent = 0;  // RFC 7323 4.3

    // RFC 9293 3.3.1 send sequence variables. SND.NXT only moves forward,
    // so it is also the highest sequence number sent (what BSD calls
    // SND.MAX): a retransmission timeout does not rewind it but resends
    // from RTX_NXT, as Linux keeps snd_nxt and retransmits from its queue.
    // Bare ACKs carry it, or the end of the peer's window when that closed
    // below it (acceptable_seq): a sequence number the peer accepts whether
    // it already holds the resent bytes or dropped them.
    uint32_t iss = 0, snd_una = 0, snd_nxt = 0;
    uint32_t snd_wnd = 0, snd_wl1 = 0, snd_wl2 = 0;
    uint8_t snd_wscale = 0;
    uint16_t snd_mss = 536;  // what the peer accepts (RFC 9293 3.7.1 default)
    ByteQueue sndq;          // bytes from snd_una on
    bool fin_queued = false;  // the application closed its side
    bool fin_sent = false;
    // Closed normally while received bytes wait to be read: the handler
    // hears of the close once it has read them.
    bool close_deferred = false;
    uint32_t fin_seq = 0;     // our FIN's sequence number, once sent
    // Receive sequence variables.
    uint32_t irs = 0, rcv_nxt = 0, rcv_wnd = 0, rcv_adv = 0;
    uint8_t rcv_wscale = 0;
    ByteQueue rcvq;  // in-order bytes not read yet
    bool fin_received = false;
    ReassemblyQueue ooo;

    // Options agreed on.
    bool ts_ok = false, sack_ok = false, ws_ok = false;
    uint32_t ts_recent = 0;

    // Loss recovery.
    RttEstimator rtt;
    std::variant<NewReno, Cubic> cc{std::in_place_type<NewReno>, 1460};
    bool rtt_timing = false;
    uint32_t rtt_seq = 0;
    uint64_t rtt_start_us = 0;
    uint8_t dupacks = 0;
    bool in_recovery = false;
    uint32_t recover = 0;  // RFC 6582 "recover", RFC 6675 RecoveryPoint
    SackScoreboard sacked;  // what the peer reported holding (RFC 6675)
    uint32_t high_rxt = 0;  // one past the highest byte resent in recovery
    // After a retransmission timeout: everything from SND.UNA to SND.MAX
    // is presumed lost and resent from RTX_NXT on (go-back-N, skipping
    // what the peer SACKs since), before any new data.
    bool rto_recovery = false;
    uint32_t rtx_nxt = 0;
    // Tail loss probes (RFC 8985 7): the retransmission timer stands for a
    // probe timeout (PTO) while TLP_ARMED; one probe per tail, until an
    // ACK reaches TLP_HIGH (SND.MAX when it went).
    bool tlp_armed = false, tlp_out = false;
    uint32_t tlp_high = 0;
    // RACK (RFC 8985 6) for what RFC 6675 cannot see: a retransmission
    // lost again. During SACK recovery every transmission is logged with
    // its time; the newest one delivered (acknowledged or SACKed) is
    // RACK.xmit, and a retransmission sent before it and still missing
    // after RACK.rtt + reo_wnd is lost and resent -- no RTO needed.
    struct SentRange {
        uint32_t seq, end;
        uint64_t xmit_us;
        uint32_t ts_val;  // the TSval it carried: tells which copy an ACK is for
        bool retransmit;
    };
    static constexpr unsigned kSentLog = 12;
    SentRange sent_log[kSentLog];
    uint8_t sent_n = 0;
    uint64_t rack_xmit_us = 0, rack_rtt_us = 0;
    uint32_t rack_end = 0;
    uint8_t retries = 0;
    uint64_t idle_us = 0;  // 0: no idle timeout
    // Keepalive (RFC 9293 3.8.4, Linux's knobs): probe after KA_IDLE_US of
    // silence, every KA_INTERVAL_US, give up after KA_COUNT unanswered.
    uint64_t ka_idle_us = 0, ka_interval_us = 0;
    uint8_t ka_count = 0, ka_probes = 0;
    // The idle and keepalive timers are lazy: a segment or a write only
    // moves these, and the timer, when it fires early, sleeps again for
    // what is left (no wheel update per segment).
    uint64_t active_us = 0;  // last segment from the peer or new data to send
    uint64_t heard_us = 0;   // last segment from the peer
    uint8_t unacked_segments = 0;  // for delayed ACKs: ACK every second one
    bool ack_now = false;
    // In a receive burst (begin_burst): listed once, woken at its end.
    bool in_burst = false, wake_readable = false, wake_writable = false;
    bool corked = false;  // hold partial segments until flush()

    TimerHandle timers[kNumTcpTimers];

    // In the stack's list of TIME-WAIT connections without a handler,
    // oldest first: what a full table recycles.
    bool time_wait_listed = false;
    uint32_t tw_prev = kNoConnection, tw_next = kNoConnection;

    bool peer_closed() const { return fin_received && rcvq.bytes == 0; }
    CongestionControl& congestion() {
        return std::visit([](auto& c) -> CongestionControl& { return c; }, cc);
    }
};

class Stack {
  public:
    Stack(const TcpParams& params, rte_mempool* pool, Output& out, const SipKey& secret,
          rte_ether_addr local_mac);
    ~Stack();
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;

    // A received frame (Ethernet + checked IPv4 of IHL bytes + TCP). The
    // stack owns M from here.
    void input(rte_mbuf* m, unsigned ihl, uint64_t now_us);
    // The frames input() gets between these are one receive burst: each
    // connection's handler is woken once (readable, writable) and its ACK
    // decided once, with what it sent in answer, at end_burst() -- not per
    // segment. Outside a burst input() does all of it at once.
    void begin_burst() { burst_ = true; }
    void end_burst(uint64_t now_us);
    // Fires due timers; returns whether any did.
    bool poll(uint64_t now_us);

    // Listens on IP:PORT (IP 0: every address); false when something
    // listens there already.
    bool listen(uint32_t ip, uint16_t port, Listener* l, unsigned backlog);
    // A reload: IP:PORT's new connections go to L with BACKLOG from now
    // on, handshakes under way included (it listens there if nothing did).
    void relisten(uint32_t ip, uint16_t port, Listener* l, unsigned backlog);
    // Stops listening on IP:PORT: new SYNs get RST, a handshake under way
    // is reset when it completes; established connections are untouched.
    void unlisten(uint32_t ip, uint16_t port);
    // Stops accepting: new SYNs are answered with RST, as for a closed port.
    void close_listeners() { listening_ = false; }
    // Opens a connection; null when out of connections (after recycling
    // the oldest TIME-WAIT one) or T is in use. CONNECT_US > 0:
    // give up (on_closed(kTimeout)) when not established by then.
    Connection* connect(const FourTuple& t, Handler* h, uint64_t now_us, uint64_t connect_us = 0);
    // ICMP "fragmentation needed" (RFC 1191) for the connection T with
    // the next hop's MTU: lower what it sends to fit (never below 536 + 40).
    // Returns whether a connection was found.
    bool path_mtu(const FourTuple& t, uint16_t mtu);
    // Turns keepalive probes on for C (IDLE_US 0: off).
    void set_keepalive(Connection& c, uint64_t idle_us, uint64_t interval_us, uint8_t count);
    // Closes C (as close() below, on_closed(kIdle)) after IDLE_US without
    // a segment from the peer or new data to send; 0 turns it off.
    void set_idle_timeout(Connection& c, uint64_t idle_us);

    // Appends up to LEN bytes to the send queue; returns how many fit.
    uint32_t write(Connection& c, const void* data, uint32_t len, uint64_t now_us);
    // Appends the one-segment mbuf M (its data_len bytes) to the send
    // queue without copying; false (M still the caller's) when C cannot
    // send or M does not fit in send_space().
    bool append(Connection& c, rte_mbuf* m, uint64_t now_us);
    // Holds partial segments back until flush(): the writes in between
    // (a TLS flight's records) leave in as few segments as they fill.
    void cork(Connection& c) { c.corked = true; }
    void flush(Connection& c, uint64_t now_us);
    // Closes C as close() does (on_closed(kDeadline)) at NOW + US, however
    // busy it is; 0 cancels. The TLS handshake timeout uses it.
    void set_deadline(Connection& c, uint64_t us);
    // Copies up to LEN received bytes into DST; returns how many.
    uint32_t read(Connection& c, void* dst, uint32_t len, uint64_t now_us);
    // Copies up to LEN received bytes from OFFSET into DST without
    // consuming them (the preread looks at a ClientHello that TLS or the
    // relay then reads from its first byte); returns how many.
    uint32_t peek(const Connection& c, uint32_t offset, void* dst, uint32_t len) const;
    // Drops up to LEN received bytes unread (no copy); returns how many.
    uint32_t skip(Connection& c, uint32_t len, uint64_t now_us);
    uint32_t send_space(const Connection& c) const;
    // Moves up to MAX received bytes of FROM into TO's send queue (what
    // fits), consuming only what was moved; returns how many. Whole
    // received segments are relinked, not copied.
    uint32_t forward(Connection& from, Connection& to, uint32_t max, uint64_t now_us);
    // The same from a queue of bytes that is not a connection's (what a
    // TLS side decrypted): up to MAX bytes of Q join TO's send queue.
    uint32_t forward(ByteQueue& q, Connection& to, uint32_t max, uint64_t now_us);
    // Our side is done sending: a FIN follows the queued data.
    void shutdown(Connection& c, uint64_t now_us);
    // Resets the connection (RST) and forgets it; on_closed(kAborted).
    void abort(Connection& c);
    // As close(2): the handler is done with C (on_closed(kClosed) before
    // this returns). With nothing unread, a FIN follows the queued data and
    // C finishes the exchange on its own, reset if the peer sends more
    // data or it lingers past orphan_us; with bytes unread, a RST (RFC
    // 2525 2.17).
    void close(Connection& c, uint64_t now_us);

    const TcpCounters& counters() const { return counters_; }
    unsigned connections() const { return used_; }
    const TcpParams& params() const { return params_; }
    rte_mempool* pool() const { return pool_; }

  private:
    struct Bucket;
    Connection* lookup(const FourTuple& t);
    // A free slot for T, recycling the oldest TIME-WAIT connection when
    // none is left; null (counted no_memory) when that fails too.
    Connection* create(const FourTuple& t, uint64_t now_us);
    // Every new connection starts here: a slot (create), and the send
    // sequence from ISS (ours, or the one given: a TIME-WAIT's successor,
    // a SYN cookie).
    Connection* open(const FourTuple& t, std::optional<uint32_t> iss, uint64_t now_us);
    // The receive side and the peer's options, from its SYN.
    void synchronize(Connection& c, const Segment& syn);
    void destroy(Connection& c, CloseReason why, bool notify);
    void close_as(Connection& c, CloseReason why, uint64_t now_us);
    void set_state(Connection& c, TcpState s);
    // The FIFO of handler-less TIME-WAIT connections (intrusive, O(1)).
    void time_wait_push(Connection& c);
    void time_wait_unlink(Connection& c);

    // tcp_input.cc
    // ISS: the new connection's, when a SYN ends a TIME-WAIT.
    void on_listen(const Segment& s, rte_mbuf* m, uint64_t now_us,
                   std::optional<uint32_t> iss = std::nullopt);
    bool time_wait_takes_syn(const Connection& c, const Segment& s);
    void on_syn_sent(Connection& c, const Segment& s, rte_mbuf* m, uint64_t now_us);
    void on_synchronized(Connection& c, const Segment& s, rte_mbuf* m, uint64_t now_us);
    bool acceptable(const Connection& c, const Segment& s) const;
    // A bare ACK that PAWS spares: reordered, not old (tcp_disordered_ack).
    bool disordered_ack(const Connection& c, const Segment& s) const;
    void process_ack(Connection& c, const Segment& s, uint64_t now_us);  // and RACK after it
    void process_ack_fields(Connection& c, const Segment& s, uint64_t now_us);
    void process_data(Connection& c, const Segment& s, rte_mbuf* m, uint64_t now_us);
    void process_fin(Connection& c, uint64_t now_us);

    // tcp_output.cc
    void send_syn(Connection& c, bool ack, uint64_t now_us);
    // The sequence number a bare ACK or RST carries.
    uint32_t acceptable_seq(const Connection& c) const;
    void send_ack(Connection& c, uint64_t now_us);
    void send_rst_for(const Segment& s);
    void send_rst(Connection& c);
    bool send_data(Connection& c, uint64_t now_us);  // as much as windows allow
    // One new segment within WND bytes from SND.UNA; false when none went.
    bool send_new(Connection& c, uint32_t wnd, uint64_t now_us);
    // RFC 6675 5 (C): while cwnd - pipe allows, NextSeg() and send it.
    bool sack_transmit(Connection& c, uint64_t now_us);
    // After an RTO: resend from RTX_NXT while cwnd allows.
    bool rto_transmit(Connection& c, uint64_t now_us);
    // Resends up to LEN bytes from SEQ (with our FIN when it is next).
    bool resend(Connection& c, uint32_t seq, uint32_t len, uint64_t now_us);
    void enter_recovery(Connection& c, uint64_t now_us);
    // Arms the retransmission timer for data in flight: a probe timeout
    // when a tail loss probe may go (RFC 8985 7.2), else the RTO.
    void arm_retransmit(Connection& c);
    // The PTO fired: new data if the window allows, else the last segment again.
    void send_probe(Connection& c, uint64_t now_us);
    // RACK: logs a transmission made during recovery; after each ACK,
    // learns what was delivered and resends retransmissions found lost.
    void rack_log(Connection& c, uint32_t seq, uint32_t end, bool retransmit);
    void rack_on_ack(Connection& c, const Segment& s, uint64_t now_us);
    void rack_detect(Connection& c, uint64_t now_us);
    void retransmit_first(Connection& c, uint64_t now_us);
    rte_mbuf* make(const Connection& c, uint32_t seq, uint8_t flags, const uint8_t* payload,
                   uint32_t len, uint64_t now_us, bool syn_options);
    uint16_t advertised_window(Connection& c);
    uint16_t payload_limit(const Connection& c) const;
    void emit(Connection* c, rte_mbuf* m, uint32_t remote_ip);

    // A normal close (LAST-ACK done, or TIME-WAIT reached): tells the
    // handler now, or once it has read what is queued.
    void close_normally(Connection& c);
    void drained(Connection& c);
    // Bytes left the receive queue: finish a deferred close, update the
    // peer's window.
    void consumed(Connection& c, uint64_t now_us);
    struct Drained {
        uint32_t index, generation;
    };
    std::vector<Drained> drained_;  // closes to finish in poll()

    // The receive burst: connections to wake and ACK at its end.
    static constexpr unsigned kBurstList = 64;
    bool burst_ = false;
    unsigned burst_n_ = 0;
    Drained burst_list_[kBurstList];
    // Lists C for the end of the burst; false outside one (or when the
    // list is full): the caller acts now.
    bool defer(Connection& c);
    void notify_readable(Connection& c);
    void notify_writable(Connection& c);
    // The end of a segment's processing: the ACK decision and what the
    // windows let out.
    void finish_input(Connection& c, uint64_t now_us);
    // The peer was heard from / the connection did something: the lazy
    // idle and keepalive timers.
    void touch(Connection& c, bool heard);

    // tcp_timers.cc
    void arm(Connection& c, TcpTimer t, uint64_t us);
    void disarm(Connection& c, TcpTimer t);
    void on_timer(Connection& c, TcpTimer t, uint64_t now_us);

    uint32_t ts_now(uint64_t now_us) const { return static_cast<uint32_t>(now_us / 1000); }

    TcpParams params_;
    rte_mempool* pool_;
    Output& out_;
    SipKey secret_;
    rte_ether_addr mac_;
    TimerWheel wheel_;
    uint64_t now_us_ = 0;  // of the event being handled

    // Out-of-order range blocks, one per connection holding such data
    // (a quarter of the connections at once; past that, counted ooo_full).
    OooPool ooo_pool_;
    std::unique_ptr<Connection[]> conns_;
    std::vector<uint32_t> free_;
    std::vector<int32_t> table_;  // open addressing: connection index or -1
    uint32_t table_mask_ = 0;
    unsigned used_ = 0;
    uint32_t tw_head_ = kNoConnection, tw_tail_ = kNoConnection;

    struct ListenEntry {
        uint32_t ip;
        uint16_t port;
        Listener* listener;
        unsigned backlog;
        unsigned pending;  // connections in SYN-RECEIVED
    };
    std::vector<ListenEntry> listeners_;
    bool listening_ = true;
    ListenEntry* find_listener(uint32_t ip, uint16_t port);

    TcpCounters counters_;
};

}  // namespace terminus::tcp
