// The TCP stack, packet by packet (crafted segments in, exact segments
// out) and end to end (two stacks joined by an in-memory link that can
// lose, reorder, duplicate and delay with a seeded generator:
// tests/support/stack_link.h).
#include <gtest/gtest.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/tcp/tcp.h"
#include "tests/support/stack_link.h"
#include "tests/unit/dataplane/eal_env.h"

namespace terminus::tcp {
namespace {

using terminus::testing::EalEnvironment;
using terminus::testing::Impairment;
using terminus::testing::StackLink;

constexpr uint32_t kIpA = 0xc6120002;  // 198.18.0.2
constexpr uint32_t kIpB = 0xc6120001;  // 198.18.0.1
constexpr unsigned kIhl = sizeof(rte_ipv4_hdr);

// Captures what a stack sends.
struct Capture : Output {
    std::vector<rte_mbuf*> frames;
    void send(rte_mbuf* m, uint32_t) override { frames.push_back(m); }
    ~Capture() override { clear(); }
    void clear() {
        for (auto* m : frames) rte_pktmbuf_free(m);
        frames.clear();
    }
    Segment seg(size_t i) const {
        Segment s;
        EXPECT_EQ(parse_segment(frames.at(i), kIhl, s), ParseResult::kOk);
        return s;  // as the peer sees it
    }
};

// Records what happens on connections.
struct Recorder : Handler, Listener {
    Stack* stack = nullptr;
    std::vector<Connection*> accepted;
    int established = 0;
    int closed = 0;
    CloseReason last_reason = CloseReason::kClosed;
    std::string received;
    bool peer_fin = false;
    bool read_eagerly = true;

    Handler* accept(Connection& c) override {
        accepted.push_back(&c);
        return this;
    }
    void on_established(Connection&) override { ++established; }
    void on_readable(Connection& c) override {
        if (read_eagerly) drain(c);
        if (c.fin_received) peer_fin = true;
    }
    void drain(Connection& c) {
        char buf[4096];
        uint32_t n;
        while ((n = stack->read(c, buf, sizeof buf, now)) > 0) received.append(buf, n);
    }
    void on_writable(Connection&) override {}
    void on_closed(Connection&, CloseReason why) override {
        ++closed;
        last_reason = why;
    }
    uint64_t now = 0;
};

TcpParams params() {
    TcpParams p;
    p.max_connections = 64;
    return p;
}

// A segment from the peer at kIpB:REMOTE_PORT to the stack at kIpA:80.
rte_mbuf* craft(uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window = 65535,
                const std::string& payload = "", const uint8_t* opts = nullptr,
                uint8_t opts_len = 0, uint16_t remote_port = 40000) {
    OutSegment s;
    s.tuple = FourTuple{kIpB, kIpA, remote_port, 80};
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.window = window;
    s.options = opts;
    s.options_len = opts_len;
    s.payload = reinterpret_cast<const uint8_t*>(payload.data());
    s.payload_len = static_cast<uint32_t>(payload.size());
    return build_segment(EalEnvironment::pool(), Route{}, s);
}

class TcpPacket : public ::testing::Test {
  protected:
    void SetUp() override { restart(params()); }
    // A fresh stack with P, listening on port 80.
    void restart(const TcpParams& p) {
        out.clear();
        stack = std::make_unique<Stack>(p, EalEnvironment::pool(), out, SipKey{1, 2},
                                        rte_ether_addr{{2, 0, 0, 0, 0, 2}});
        rec.stack = stack.get();
        stack->listen(0, 80, &rec, 16);
    }
    void TearDown() override {
        out.clear();
        stack.reset();
    }
    // Drives a handshake from the peer; returns our ISS.
    uint32_t handshake(uint32_t peer_isn = 1000) {
        const uint8_t mss[4] = {2, 4, 0x05, 0xb4};
        stack->input(craft(peer_isn, 0, kSyn, 65535, "", mss, 4), kIhl, 0);
        EXPECT_EQ(out.frames.size(), 1u);
        const Segment synack = out.seg(0);
        out.clear();
        // 100 ms later: the stack measures an RTT of 100 ms, so its RTO is
        // SRTT + 4 * RTTVAR = 300 ms.
        stack->input(craft(peer_isn + 1, synack.seq + 1, kAck), kIhl, 100'000);
        return synack.seq;
    }
    Capture out;
    Recorder rec;
    std::unique_ptr<Stack> stack;
};

TEST_F(TcpPacket, SynToAClosedPortGetsRstAck) {
    stack->input(
        [] {
            OutSegment s;
            s.tuple = FourTuple{kIpB, kIpA, 40000, 81};
            s.seq = 5000;
            s.flags = kSyn;
            return build_segment(EalEnvironment::pool(), Route{}, s);
        }(),
        kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kRst | kAck);
    EXPECT_EQ(r.seq, 0u);
    EXPECT_EQ(r.ack, 5001u);
    EXPECT_EQ(stack->counters().no_listener, 1u);
}

TEST_F(TcpPacket, AckToNoConnectionGetsRstWithItsAckNumber) {
    stack->input(craft(7000, 424242, kAck), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kRst);
    EXPECT_EQ(r.seq, 424242u);
}

TEST_F(TcpPacket, RstToNoConnectionIsIgnored) {
    stack->input(craft(7000, 1, kRst), kIhl, 0);
    EXPECT_TRUE(out.frames.empty());
}

TEST_F(TcpPacket, SynGetsSynAckWithOurOptions) {
    const uint8_t opts[20] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 7};
    stack->input(craft(1000, 0, kSyn, 29200, "", opts, 20), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kSyn | kAck);
    EXPECT_EQ(r.ack, 1001u);
    EXPECT_TRUE(r.options.has_mss);
    EXPECT_EQ(r.options.mss, 1460);
    EXPECT_TRUE(r.options.has_wscale);
    EXPECT_TRUE(r.options.sack_permitted);
    EXPECT_TRUE(r.options.has_timestamps);
    EXPECT_EQ(r.options.ts_ecr, 9u);  // echoes the peer's TSval
    EXPECT_EQ(stack->counters().state[static_cast<unsigned>(TcpState::kSynReceived)], 1u);
}

TEST_F(TcpPacket, SynWithoutOptionsGetsNoneOfThemBack) {
    stack->input(craft(1000, 0, kSyn), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    Segment r = out.seg(0);
    EXPECT_TRUE(r.options.has_mss);  // MSS is always sent
    EXPECT_FALSE(r.options.has_wscale);
    EXPECT_FALSE(r.options.sack_permitted);
    EXPECT_FALSE(r.options.has_timestamps);
}

TEST_F(TcpPacket, FinalAckEstablishesAndAccepts) {
    handshake();
    ASSERT_EQ(rec.accepted.size(), 1u);
    EXPECT_EQ(rec.established, 1);
    EXPECT_EQ(rec.accepted[0]->state, TcpState::kEstablished);
    EXPECT_EQ(stack->counters().accepts, 1u);
}

TEST_F(TcpPacket, AckOfSomethingElseInSynReceivedGetsRst) {
    stack->input(craft(1000, 0, kSyn), kIhl, 0);
    const Segment synack = out.seg(0);
    out.clear();
    stack->input(craft(1001, synack.seq + 7, kAck), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kRst);
    EXPECT_EQ(out.seg(0).seq, synack.seq + 7);
}

TEST_F(TcpPacket, InOrderDataIsDeliveredAndAckedEverySecondSegment) {
    const uint32_t iss = handshake();

    stack->input(craft(1001, iss + 1, kAck | kPsh, 65535, "hello "), kIhl, 0);
    EXPECT_TRUE(out.frames.empty());  // delayed
    stack->input(craft(1007, iss + 1, kAck | kPsh, 65535, "world"), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1012u);
    EXPECT_EQ(rec.received, "hello world");
}

TEST_F(TcpPacket, ABurstWakesTheHandlerAndAcksOnce) {
    // Four segments in one receive burst: one on_readable, one ACK for all
    // of them, sent after the handler had its turn.
    struct Counting : Recorder {
        int wakes = 0;
        void on_readable(Connection& c) override {
            ++wakes;
            Recorder::on_readable(c);
        }
    } r;
    Stack st(params(), EalEnvironment::pool(), out, SipKey{1, 2}, rte_ether_addr{{2, 0, 0, 0, 0, 2}});
    r.stack = &st;
    st.listen(0, 80, &r, 16);
    const uint8_t mss[4] = {2, 4, 0x05, 0xb4};
    st.input(craft(1000, 0, kSyn, 65535, "", mss, 4), kIhl, 0);
    const uint32_t iss = out.seg(0).seq;
    out.clear();
    st.input(craft(1001, iss + 1, kAck), kIhl, 1000);
    st.begin_burst();
    for (uint32_t i = 0; i < 4; ++i) {
        st.input(craft(1001 + 100 * i, iss + 1, kAck, 65535, std::string(100, 'a' + i)), kIhl, 2000);
    }
    EXPECT_EQ(r.wakes, 0);
    EXPECT_TRUE(out.frames.empty());
    st.end_burst(2000);
    EXPECT_EQ(r.wakes, 1);
    EXPECT_EQ(r.received.size(), 400u);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1401u);
    // Outside a burst each segment is handled at once, as before.
    out.clear();
    st.input(craft(1401, iss + 1, kAck, 65535, "x"), kIhl, 3000);
    EXPECT_EQ(r.wakes, 2);
    out.clear();
}

TEST_F(TcpPacket, DataAndFinInABurstAreAckedAtItsEnd) {
    const uint32_t iss = handshake();
    out.clear();
    stack->begin_burst();
    stack->input(craft(1001, iss + 1, kAck | kPsh | kFin, 65535, "bye"), kIhl, 200'000);
    stack->end_burst(200'000);
    EXPECT_EQ(rec.received, "bye");
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1005u);  // the data and the FIN, at once
}

TEST_F(TcpPacket, DelayedAckFiresAfterItsTimer) {
    const uint32_t iss = handshake();
    stack->input(craft(1001, iss + 1, kAck, 65535, "x"), kIhl, 0);
    EXPECT_TRUE(out.frames.empty());
    stack->poll(39'000);
    EXPECT_TRUE(out.frames.empty());
    stack->poll(41'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1002u);
}

TEST_F(TcpPacket, OutOfOrderDataGetsAnImmediateDupAck) {
    const uint32_t iss = handshake();
    stack->input(craft(1011, iss + 1, kAck, 65535, "later"), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1001u);
    out.clear();
    stack->input(craft(1001, iss + 1, kAck, 65535, "0123456789"), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1016u);
    EXPECT_EQ(rec.received, "0123456789later");
}

TEST_F(TcpPacket, InWindowRstGetsChallengeAck) {
    const uint32_t iss = handshake();
    stack->input(craft(1005, iss + 1, kRst), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kAck);
    EXPECT_EQ(out.seg(0).ack, 1001u);
    EXPECT_EQ(rec.closed, 0);
    EXPECT_EQ(stack->counters().challenge_acks, 1u);
}

TEST_F(TcpPacket, ExactRstClosesTheConnection) {
    const uint32_t iss = handshake();
    stack->input(craft(1001, iss + 1, kRst), kIhl, 0);
    EXPECT_TRUE(out.frames.empty());
    EXPECT_EQ(rec.closed, 1);
    EXPECT_EQ(rec.last_reason, CloseReason::kReset);
    EXPECT_EQ(stack->connections(), 0u);
}

TEST_F(TcpPacket, OutOfWindowRstIsDropped) {
    const uint32_t iss = handshake();
    stack->input(craft(1001 + 10'000'000, iss + 1, kRst), kIhl, 0);
    EXPECT_TRUE(out.frames.empty());
    EXPECT_EQ(rec.closed, 0);
}

TEST_F(TcpPacket, SynInEstablishedGetsChallengeAck) {
    const uint32_t iss = handshake();
    stack->input(craft(5555, 0, kSyn), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kAck);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    EXPECT_EQ(rec.closed, 0);
}

TEST_F(TcpPacket, OutOfWindowDataGetsAnAck) {
    const uint32_t iss = handshake();
    stack->input(craft(1001 + 1'000'000, iss + 1, kAck, 65535, "far away"), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1001u);
    EXPECT_EQ(stack->counters().out_of_window, 1u);
}

TEST_F(TcpPacket, AckForUnsentDataGetsAnAckAndIsDropped) {
    const uint32_t iss = handshake();
    stack->input(craft(1001, iss + 100, kAck, 65535, "data"), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1001u);
    EXPECT_EQ(rec.received, "");
}

TEST_F(TcpPacket, FinInEveryReceivingStateIsAcked) {
    const uint32_t iss = handshake();
    stack->input(craft(1001, iss + 1, kAck | kFin), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1002u);
    EXPECT_EQ(rec.accepted[0]->state, TcpState::kCloseWait);
    EXPECT_TRUE(rec.peer_fin);
    out.clear();
    stack->shutdown(*rec.accepted[0], 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kAck | kFin);
    EXPECT_EQ(rec.accepted[0]->state, TcpState::kLastAck);
    stack->input(craft(1002, iss + 2, kAck), kIhl, 0);
    EXPECT_EQ(rec.closed, 1);
    EXPECT_EQ(stack->connections(), 0u);
}

TEST_F(TcpPacket, ActiveCloseGoesThroughTimeWait) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->shutdown(c, 0);
    EXPECT_EQ(c.state, TcpState::kFinWait1);
    out.clear();
    stack->input(craft(1001, iss + 2, kAck), kIhl, 0);
    EXPECT_EQ(c.state, TcpState::kFinWait2);
    stack->input(craft(1001, iss + 2, kAck | kFin), kIhl, 0);
    EXPECT_EQ(c.state, TcpState::kTimeWait);
    EXPECT_EQ(rec.closed, 1);  // the handler is done with it
    EXPECT_EQ(stack->connections(), 1u);
    stack->poll(61'000'000);
    EXPECT_EQ(stack->connections(), 0u);
}

TEST_F(TcpPacket, ReceiveWindowDoesNotSlideWhileNothingIsRead) {
    // A reader that stops reading: the window closes at what was
    // advertised, and data beyond it is not queued (found as unbounded
    // memory growth behind a stalled client).
    rec.read_eagerly = false;
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    const std::string chunk(1000, 'y');
    for (uint32_t i = 0; i < 400; ++i) {
        stack->input(craft(1001 + i * 1000, iss + 1, kAck, 65535, chunk), kIhl, 0);
    }
    // The peer ignored our windows: we kept what fits the receive buffer.
    EXPECT_LE(c.rcvq.bytes, stack->params().rcv_buf);
    EXPECT_GE(c.rcvq.bytes, stack->params().rcv_buf - 70000);
    EXPECT_GT(stack->counters().out_of_window, 0u);
}

TEST_F(TcpPacket, FragmentationNeededLowersTheSegmentSize) {
    const uint32_t iss = handshake();  // the peer said MSS 1460
    Connection& c = *rec.accepted[0];
    EXPECT_TRUE(stack->path_mtu(FourTuple{kIpA, kIpB, 80, 40000}, 1280));
    EXPECT_EQ(c.snd_mss, 1240);
    out.clear();
    const std::string data(3000, 'z');
    stack->write(c, data.data(), 3000, 0);
    ASSERT_FALSE(out.frames.empty());
    EXPECT_LE(rte_pktmbuf_pkt_len(out.frames[0]), 14u + 1280u);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    // Old routers send MTU 0: fall back to 576, never below.
    EXPECT_TRUE(stack->path_mtu(FourTuple{kIpA, kIpB, 80, 40000}, 0));
    EXPECT_EQ(c.snd_mss, 536);
    EXPECT_FALSE(stack->path_mtu(FourTuple{kIpA, kIpB, 80, 40001}, 1280));
}

TEST_F(TcpPacket, KeepaliveProbesASilentPeerThenGivesUp) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->set_keepalive(c, 1'000'000, 200'000, 2);  // at 100 ms: first probe at 1.1 s
    out.clear();
    stack->poll(1'150'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, iss);  // SND.UNA - 1
    EXPECT_EQ(out.seg(0).flags, kAck);
    out.clear();
    stack->poll(1'400'000);
    EXPECT_EQ(out.frames.size(), 1u);  // the second probe
    EXPECT_EQ(rec.closed, 0);
    out.clear();
    stack->poll(1'700'000);  // two unanswered: give up
    EXPECT_EQ(rec.closed, 1);
    EXPECT_EQ(rec.last_reason, CloseReason::kTimeout);
    EXPECT_EQ(stack->counters().keepalive_probes, 2u);
    EXPECT_EQ(stack->counters().keepalive_timeouts, 1u);
}

TEST_F(TcpPacket, AnsweredKeepaliveKeepsTheConnection) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->set_keepalive(c, 1'000'000, 200'000, 1);
    stack->poll(1'150'000);  // probe 1
    stack->input(craft(1001, iss + 1, kAck), kIhl, 1'200'000);  // the peer answers
    stack->poll(1'600'000);
    EXPECT_EQ(rec.closed, 0);
    EXPECT_EQ(c.state, TcpState::kEstablished);
}

TEST_F(TcpPacket, IdleTimeoutClosesASilentConnectionWithFin) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->set_idle_timeout(c, 1'000'000);
    out.clear();
    stack->input(craft(1001, iss + 1, kAck, 65535, "x"), kIhl, 500'000);  // activity
    stack->poll(1'400'000);
    EXPECT_EQ(rec.closed, 0);
    out.clear();
    stack->poll(1'600'000);
    EXPECT_EQ(rec.closed, 1);
    EXPECT_EQ(rec.last_reason, CloseReason::kIdle);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kFin | kAck);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    EXPECT_EQ(stack->counters().idle_timeouts, 1u);
    // The peer finishes too: the connection goes through TIME-WAIT alone.
    out.clear();
    stack->input(craft(1002, iss + 2, kFin | kAck), kIhl, 1'700'000);
    EXPECT_EQ(c.state, TcpState::kTimeWait);
    EXPECT_EQ(rec.closed, 1);
}

TEST_F(TcpPacket, ClosedConnectionThatGetsDataIsReset) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->close(c, 200'000);
    EXPECT_EQ(rec.closed, 1);
    EXPECT_EQ(c.state, TcpState::kFinWait1);
    out.clear();
    stack->input(craft(1001, iss + 2, kAck, 65535, "late"), kIhl, 300'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_TRUE(out.seg(0).flags & kRst);
    EXPECT_EQ(stack->connections(), 0u);
    EXPECT_EQ(stack->counters().orphan_resets, 1u);
    EXPECT_EQ(rec.closed, 1);  // the handler heard of it once
}

TEST_F(TcpPacket, ClosedConnectionWhosePeerNeverFinishesIsReset) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->close(c, 200'000);
    stack->input(craft(1001, iss + 2, kAck), kIhl, 300'000);  // FIN acked: FIN-WAIT-2
    EXPECT_EQ(c.state, TcpState::kFinWait2);
    out.clear();
    stack->poll(300'000 + stack->params().orphan_us + 10'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_TRUE(out.seg(0).flags & kRst);
    EXPECT_EQ(stack->connections(), 0u);
}

TEST_F(TcpPacket, CloseWithUnreadDataResets) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    rec.read_eagerly = false;
    stack->input(craft(1001, iss + 1, kAck, 65535, "unread"), kIhl, 200'000);
    out.clear();
    stack->close(c, 300'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_TRUE(out.seg(0).flags & kRst);
    EXPECT_EQ(stack->connections(), 0u);
    EXPECT_EQ(rec.last_reason, CloseReason::kAborted);
}

TEST_F(TcpPacket, ConnectTimeoutGivesUp) {
    Connection* c = stack->connect(FourTuple{kIpA, kIpB, 50000, 9}, &rec, 0, 500'000);
    ASSERT_NE(c, nullptr);
    stack->poll(400'000);
    EXPECT_EQ(rec.closed, 0);
    stack->poll(600'000);
    EXPECT_EQ(rec.closed, 1);
    EXPECT_EQ(rec.last_reason, CloseReason::kTimeout);
    EXPECT_EQ(stack->counters().connect_timeouts, 1u);
}

TEST_F(TcpPacket, ExactRstEndsATimeWaitNobodyReads) {
    // As Linux (tcp_rfc1337 = 0): a client reusing the 4-tuple that met
    // our ACK to its SYN resets the TIME-WAIT, and its next SYN finds the
    // port free. An inexact one is challenged (RFC 5961 3.2).
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->shutdown(c, 0);
    stack->input(craft(1001, iss + 2, kAck), kIhl, 0);
    stack->input(craft(1001, iss + 2, kAck | kFin), kIhl, 0);
    ASSERT_EQ(c.state, TcpState::kTimeWait);
    out.clear();
    stack->input(craft(1003, 0, kRst), kIhl, 0);
    EXPECT_EQ(c.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->counters().rst_challenged, 1u);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).ack, 1002u);
    stack->input(craft(1002, 0, kRst), kIhl, 0);
    EXPECT_EQ(stack->connections(), 0u);
    EXPECT_EQ(stack->counters().time_wait_reset, 1u);
    // And a RST for nothing is counted, not answered.
    out.clear();
    stack->input(craft(1002, 0, kRst), kIhl, 0);
    EXPECT_TRUE(out.frames.empty());
    EXPECT_EQ(stack->counters().rst_no_connection, 1u);
}

TEST_F(TcpPacket, RstKeepsATimeWaitWhoseBytesAreUnread) {
    // RFC 1337: while the handler has the last bytes still to read, a RST
    // would throw them away.
    rec.read_eagerly = false;
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->shutdown(c, 0);
    stack->input(craft(1001, iss + 2, kAck | kFin, 65535, "tail"), kIhl, 0);
    ASSERT_EQ(c.state, TcpState::kTimeWait);
    stack->input(craft(1006, 0, kRst), kIhl, 0);
    EXPECT_EQ(c.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->counters().rst_time_wait, 1u);
    rec.drain(c);
    EXPECT_EQ(rec.received, "tail");
}

// Closes every connection it is given as soon as it is established and
// opens another in its place: the slot is reused inside the callback.
struct Reopener : Recorder {
    Connection* reopened = nullptr;
    void on_established(Connection& c) override {
        ++established;
        if (reopened) return;
        const uint32_t slot = c.index;
        stack->abort(c);
        reopened = stack->connect(FourTuple{kIpA, kIpB, 50000, 9999}, this, now);
        EXPECT_EQ(reopened ? reopened->index : ~0u, slot) << "the test needs the slot reused";
    }
};

TEST_F(TcpPacket, ASlotReusedInsideACallbackIsNotTakenForTheOldConnection) {
    Stack st(params(), EalEnvironment::pool(), out, SipKey{1, 2}, rte_ether_addr{{2, 0, 0, 0, 0, 2}});
    Reopener r;
    r.stack = &st;
    st.listen(0, 80, &r, 16);
    const uint8_t mss[4] = {2, 4, 0x05, 0xb4};
    st.input(craft(1000, 0, kSyn, 65535, "", mss, 4), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    const uint32_t iss = out.seg(0).seq;
    out.clear();
    // The final ACK carries data: the handler closes the connection on
    // established and opens another into its slot; the data must not reach
    // that one.
    st.input(craft(1001, iss + 1, kAck | kPsh, 65535, "hello"), kIhl, 1000);
    ASSERT_NE(r.reopened, nullptr);
    EXPECT_EQ(r.reopened->state, TcpState::kSynSent);
    EXPECT_EQ(r.reopened->rcvq.bytes, 0u);
    EXPECT_EQ(r.reopened->rcv_nxt, 0u);
    EXPECT_TRUE(r.received.empty());
    // Nothing of the old segment was processed on the new connection.
    EXPECT_EQ(st.counters().data_not_receiving, 0u);
    out.clear();
}

TEST_F(TcpPacket, TimeoutResendsWithoutRewindingSndNxt) {
    // After an RTO the first segment goes again, but SND.NXT stays at the
    // highest byte sent: a pure ACK we send then carries it, so a peer that
    // holds everything (only our ACKs were lost) accepts it instead of
    // dropping it as out of window (the go-back-N deadlock).
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    std::string data(3 * 1460, 'x');
    ASSERT_EQ(stack->write(c, data.data(), static_cast<uint32_t>(data.size()), 100'000), data.size());
    out.clear();
    stack->poll(401'000);  // the RTO
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    EXPECT_EQ(c.snd_nxt, iss + 1 + 3 * 1460);
    out.clear();
    // The peer's data makes us ACK: with SND.MAX, not the resend point.
    stack->input(craft(1001, iss + 1, kAck | kPsh, 65535, "hi"), kIhl, 402'000);
    stack->poll(450'000);  // the delayed ACK
    ASSERT_GE(out.frames.size(), 1u);
    for (size_t i = 0; i < out.frames.size(); ++i) {
        const Segment a = out.seg(i);
        if (a.payload_len == 0) {
            EXPECT_EQ(a.seq, iss + 1 + 3 * 1460) << "pure ACK " << i;
        }
    }
    out.clear();
    // The peer acknowledges the resent segment: the resend goes on from
    // there (slow start: two segments), not with new data.
    stack->input(craft(1003, iss + 1 + 1460, kAck), kIhl, 460'000);
    ASSERT_EQ(out.frames.size(), 2u);
    EXPECT_EQ(out.seg(0).seq, iss + 1 + 1460);
    EXPECT_EQ(out.seg(1).seq, iss + 1 + 2 * 1460);
    EXPECT_EQ(stack->counters().retransmits, 3u);
    // Everything acknowledged: the retransmission timer stops.
    out.clear();
    stack->input(craft(1003, iss + 1 + 3 * 1460, kAck), kIhl, 470'000);
    EXPECT_FALSE(c.rto_recovery);
    EXPECT_EQ(c.timers[static_cast<unsigned>(TcpTimer::kRetransmit)], kInvalidTimer);
}

TEST_F(TcpPacket, AcksStayInsideAWindowThatClosedBelowSndNxt) {
    // A peer short of memory drops data it had room for and closes its
    // window below what we sent: an ACK at SND.NXT would be out of its
    // window and dropped, so it carries the window's end (Linux's
    // tcp_acceptable_seq) -- else neither side hears the other.
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    std::string data(3 * 1460, 'x');
    stack->write(c, data.data(), static_cast<uint32_t>(data.size()), 100'000);
    out.clear();
    stack->input(craft(1001, iss + 1 + 1460, kAck, 0), kIhl, 110'000);  // window 0
    stack->input(craft(1001, iss + 1 + 1460, kAck | kPsh, 0, "hi"), kIhl, 120'000);
    stack->poll(200'000);  // the delayed ACK
    bool acked = false;
    for (size_t i = 0; i < out.frames.size(); ++i) {
        const Segment a = out.seg(i);
        if (a.payload_len == 0 && a.ack == 1003) {
            EXPECT_EQ(a.seq, iss + 1 + 1460);
            acked = true;
        }
    }
    EXPECT_TRUE(acked);
}

TEST_F(TcpPacket, TimeoutResendSkipsWhatThePeerSacks) {
    const uint8_t syn_opts[8] = {2, 4, 0x05, 0xb4, 4, 2, 1, 1};
    stack->input(craft(1000, 0, kSyn, 65535, "", syn_opts, 8), kIhl, 0);
    const uint32_t iss = out.seg(0).seq;
    out.clear();
    stack->input(craft(1001, iss + 1, kAck), kIhl, 100'000);
    Connection& c = *rec.accepted[0];
    std::string data(4 * 1460, 'x');
    stack->write(c, data.data(), static_cast<uint32_t>(data.size()), 100'000);
    stack->poll(301'000);  // the tail loss probe: segment 4 again
    EXPECT_EQ(stack->counters().tlp_probes, 1u);
    stack->poll(602'000);  // RTO: segment 1 again
    EXPECT_EQ(stack->counters().rto_expired, 1u);
    out.clear();
    // Segment 1 arrives; the peer SACKs 3 (it holds 1, 3; 2 and 4 lost).
    const uint32_t s3 = iss + 1 + 2 * 1460;
    uint8_t opts[12] = {1, 1, 5, 10};
    for (int i = 0; i < 4; ++i) {
        opts[4 + i] = static_cast<uint8_t>(s3 >> (24 - 8 * i));
        opts[8 + i] = static_cast<uint8_t>((s3 + 1460) >> (24 - 8 * i));
    }
    stack->input(craft(1001, iss + 1 + 1460, kAck, 65535, "", opts, 12), kIhl, 610'000);
    ASSERT_EQ(out.frames.size(), 2u);
    EXPECT_EQ(out.seg(0).seq, iss + 1 + 1460);
    EXPECT_EQ(out.seg(1).seq, iss + 1 + 3 * 1460);  // 3 skipped
}

TEST_F(TcpPacket, UnreadBytesSurviveTheClose) {
    // The peer sends its last bytes and FIN while the handler does not
    // read: the close is reported only once the bytes are read.
    rec.read_eagerly = false;
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->shutdown(c, 0);
    stack->input(craft(1001, iss + 2, kAck | kFin, 65535, "tail"), kIhl, 0);
    ASSERT_EQ(c.state, TcpState::kTimeWait);
    EXPECT_EQ(rec.closed, 0);
    rec.drain(c);
    EXPECT_EQ(rec.received, "tail");
    stack->poll(1000);
    EXPECT_EQ(rec.closed, 1);
}

TEST_F(TcpPacket, SimultaneousCloseGoesThroughClosing) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->shutdown(c, 0);
    stack->input(craft(1001, iss + 1, kAck | kFin), kIhl, 0);  // FIN crosses ours
    EXPECT_EQ(c.state, TcpState::kClosing);
    stack->input(craft(1002, iss + 2, kAck), kIhl, 0);
    EXPECT_EQ(c.state, TcpState::kTimeWait);
}

TEST_F(TcpPacket, UnansweredDataIsRetransmittedWithBackOff) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    out.clear();
    ASSERT_EQ(stack->write(c, "ping", 4, 100'000), 4u);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    out.clear();
    stack->poll(399'000);
    EXPECT_TRUE(out.frames.empty());
    stack->poll(401'000);  // RTO 300 ms after the write
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    EXPECT_EQ(out.seg(0).payload_len, 4u);
    out.clear();
    stack->poll(990'000);  // backed off to 600 ms
    EXPECT_TRUE(out.frames.empty());
    stack->poll(1'003'000);
    EXPECT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(stack->counters().rto_expired, 2u);
}

TEST_F(TcpPacket, ThreeDuplicateAcksTriggerFastRetransmit) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    std::string data(5 * 1460, 'x');
    stack->write(c, data.data(), static_cast<uint32_t>(data.size()), 0);
    out.clear();
    for (int i = 0; i < 3; ++i) stack->input(craft(1001, iss + 1, kAck), kIhl, 1000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, iss + 1);
    EXPECT_EQ(stack->counters().fast_retransmits, 1u);
}

// SACK option bytes: NOP NOP, kind 5, then each block's edges.
std::vector<uint8_t> sack_option(std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
    std::vector<uint8_t> o = {1, 1, 5, static_cast<uint8_t>(2 + 8 * blocks.size())};
    auto put = [&o](uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) o.push_back(static_cast<uint8_t>(v >> shift));
    };
    for (const auto& [l, r] : blocks) {
        put(l);
        put(r);
    }
    return o;
}

class TcpSack : public TcpPacket {
  protected:
    // A handshake whose SYN offers SACK; then ten full segments sent.
    void start() {
        const uint8_t syn_opts[8] = {2, 4, 0x05, 0xb4, 4, 2, 1, 1};
        stack->input(craft(1000, 0, kSyn, 65535, "", syn_opts, 8), kIhl, 0);
        const uint32_t iss = out.seg(0).seq;
        out.clear();
        stack->input(craft(1001, iss + 1, kAck), kIhl, 100'000);
        c = rec.accepted.at(0);
        ASSERT_TRUE(c->sack_ok);
        std::string data(10 * 1460, 'x');
        ASSERT_EQ(stack->write(*c, data.data(), static_cast<uint32_t>(data.size()), 100'000), data.size());
        ASSERT_EQ(out.frames.size(), 10u);
        out.clear();
        for (uint32_t i = 0; i <= 10; ++i) seg[i] = iss + 1 + i * 1460;
    }
    // An ACK of UNA from the peer reporting BLOCKS.
    void ack(uint32_t una, std::initializer_list<std::pair<uint32_t, uint32_t>> blocks) {
        const std::vector<uint8_t> o = sack_option(blocks);
        stack->input(craft(1001, una, kAck, 65535, "", blocks.size() ? o.data() : nullptr,
                           static_cast<uint8_t>(blocks.size() ? o.size() : 0)),
                     kIhl, 110'000);
    }
    Connection* c = nullptr;
    uint32_t seg[11] = {};
};

TEST_F(TcpSack, RetransmitsExactlyTheHolesTheScoreboardShows) {
    start();
    // Segments 0 and 5 are lost; the peer SACKs what arrives after each.
    ack(seg[0], {{seg[1], seg[2]}});
    ack(seg[0], {{seg[1], seg[3]}});
    EXPECT_TRUE(out.frames.empty());
    ack(seg[0], {{seg[1], seg[4]}});  // three segments above 0: it is lost
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, seg[0]);
    EXPECT_EQ(out.seg(0).payload_len, 1460u);
    out.clear();
    ack(seg[0], {{seg[1], seg[5]}});
    ack(seg[0], {{seg[6], seg[7]}, {seg[1], seg[5]}});
    // cwnd is 5 segments (half of 10); in the pipe: 0 resent, 5 (not
    // presumed lost yet) and 7..9.
    EXPECT_TRUE(out.frames.empty());
    // 8 leaves the pipe: room for one segment, no new data, so NextSeg's
    // rule (3) resends the hole at 5 before it counts as lost.
    ack(seg[0], {{seg[6], seg[8]}, {seg[1], seg[5]}});
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, seg[5]);
    out.clear();
    ack(seg[0], {{seg[6], seg[9]}, {seg[1], seg[5]}});
    EXPECT_TRUE(out.frames.empty());  // 5 went already
    // The resent 0 arrives: a partial ACK up to the next hole.
    ack(seg[5], {{seg[6], seg[9]}});
    EXPECT_TRUE(out.frames.empty());  // nothing resent twice
    ack(seg[9], {});
    ack(seg[10], {});
    EXPECT_FALSE(c->in_recovery);
    EXPECT_TRUE(c->sacked.empty());
    EXPECT_EQ(stack->counters().fast_retransmits, 1u);
    EXPECT_EQ(stack->counters().sack_retransmits, 2u);
    EXPECT_EQ(stack->counters().rto_expired, 0u);
}

TEST_F(TcpSack, SendsNewDataWhileThePipeHasRoom) {
    start();
    std::string more(6 * 1460, 'y');
    ASSERT_EQ(stack->write(*c, more.data(), static_cast<uint32_t>(more.size()), 110'000), more.size());
    EXPECT_TRUE(out.frames.empty());  // cwnd is full
    // Only segment 0 is lost; 1..9 are SACKed one ACK at a time.
    ack(seg[0], {{seg[1], seg[2]}});
    ack(seg[0], {{seg[1], seg[3]}});
    // The first two duplicates each let one new segment out (RFC 3042).
    ASSERT_EQ(out.frames.size(), 2u);
    EXPECT_EQ(out.seg(0).seq, seg[10]);
    EXPECT_EQ(out.seg(1).seq, seg[10] + 1460);
    EXPECT_EQ(stack->counters().limited_transmits, 2u);
    out.clear();
    ack(seg[0], {{seg[1], seg[4]}});  // segment 0 is lost: recovery
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, seg[0]);
    out.clear();
    for (uint32_t i = 5; i <= 10; ++i) ack(seg[0], {{seg[1], seg[i]}});
    // As the SACKs drain the pipe, new data follows in order (NextSeg
    // rule 2), and nothing already SACKed goes again.
    ASSERT_GE(out.frames.size(), 2u);
    for (size_t i = 0; i < out.frames.size(); ++i) {
        EXPECT_EQ(out.seg(i).seq, seg[10] + (2 + i) * 1460) << "frame " << i;
    }
    EXPECT_EQ(stack->counters().sack_retransmits, 1u);
}

TEST_F(TcpSack, BlocksBeyondWhatWasSentAreIgnored) {
    start();
    ack(seg[0], {{seg[10], seg[10] + 5000}});
    ack(seg[0], {{seg[0] - 5000, seg[0]}});  // a D-SACK below SND.UNA
    EXPECT_TRUE(c->sacked.empty());
    EXPECT_TRUE(out.frames.empty());
    EXPECT_FALSE(c->in_recovery);
}

TEST_F(TcpSack, ATailLossIsRepairedByAProbeWithoutAnRto) {
    // Segments 9 and 10 (the tail) are lost: no duplicate ACKs can come.
    // The probe timeout (2 SRTT, before the RTO) resends the last segment;
    // the peer SACKs it, which shows 9 lost, and recovery resends it.
    start();
    ack(seg[8], {});
    EXPECT_TRUE(c->tlp_armed);
    stack->poll(309'000);  // PTO: 2 x 100 ms after the last ACK at 110 ms
    EXPECT_EQ(stack->counters().tlp_probes, 1u);
    EXPECT_EQ(stack->counters().rto_expired, 0u);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, seg[9]);  // the last segment again
    out.clear();
    const std::vector<uint8_t> o = sack_option({{seg[9], seg[10]}});
    stack->input(craft(1001, seg[8], kAck, 65535, "", o.data(), static_cast<uint8_t>(o.size())), kIhl,
                 320'000);
    EXPECT_EQ(stack->counters().tlp_recoveries, 1u);
    ASSERT_GE(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, seg[8]);  // segment 9, at once
    out.clear();
    stack->input(craft(1001, seg[10], kAck), kIhl, 330'000);
    EXPECT_EQ(c->snd_una, seg[10]);
    stack->poll(2'000'000);
    EXPECT_EQ(stack->counters().rto_expired, 0u);
    EXPECT_FALSE(c->tlp_out);
}

TEST_F(TcpSack, RackFindsALostRetransmissionWithoutAnRto) {
    // Segment 2 is lost, and so is its retransmission. New data sent after
    // that retransmission is SACKed; once RACK.rtt plus the reordering
    // window has passed, the retransmission is known lost and sent again
    // -- RFC 6675 alone would wait for the RTO.
    start();
    std::string more(5 * 1460, 'y');
    ASSERT_EQ(stack->write(*c, more.data(), static_cast<uint32_t>(more.size()), 100'000), more.size());
    ASSERT_TRUE(out.frames.empty());  // cwnd is full
    auto sack_ack = [&](uint32_t right, uint64_t now) {
        const std::vector<uint8_t> o = sack_option({{seg[2], right}});
        stack->input(craft(1001, seg[1], kAck, 65535, "", o.data(), static_cast<uint8_t>(o.size())),
                     kIhl, now);
    };
    ack(seg[1], {});  // segment 1 arrived (and cwnd grows: more new data goes)
    out.clear();
    sack_ack(seg[10], 111'000);
    ASSERT_TRUE(c->in_recovery);
    ASSERT_GE(out.frames.size(), 2u);
    EXPECT_EQ(out.seg(0).seq, seg[1]);  // the retransmission (to be lost)
    EXPECT_TRUE(seq_geq(out.seg(1).seq, seg[10]));  // new data after it
    const uint32_t new_end = out.seg(out.frames.size() - 1).seq + 1460;
    out.clear();
    // The new data arrives, the retransmission does not.
    sack_ack(new_end, 320'000);
    EXPECT_EQ(stack->counters().rack_lost_retransmits, 0u);  // within the reordering window
    out.clear();
    stack->poll(350'000);  // 111 + RACK.rtt 209 + SRTT/4 25 ms
    EXPECT_EQ(stack->counters().rack_lost_retransmits, 1u);
    ASSERT_GE(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).seq, seg[1]);
    EXPECT_EQ(stack->counters().rto_expired, 0u);
    out.clear();
    stack->input(craft(1001, new_end, kAck), kIhl, 360'000);
    EXPECT_EQ(c->snd_una, new_end);
    EXPECT_FALSE(c->in_recovery);
}

TEST_F(TcpSack, TimeoutForgetsTheScoreboard) {
    start();
    ack(seg[0], {{seg[1], seg[2]}});
    EXPECT_FALSE(c->sacked.empty());
    stack->poll(1'000'000);  // a tail loss probe first (RFC 8985 7)
    EXPECT_EQ(stack->counters().tlp_probes, 1u);
    EXPECT_EQ(stack->counters().rto_expired, 0u);
    out.clear();
    stack->poll(3'000'000);
    EXPECT_EQ(stack->counters().rto_expired, 1u);
    EXPECT_TRUE(c->sacked.empty());
    ASSERT_FALSE(out.frames.empty());
    EXPECT_EQ(out.seg(0).seq, seg[0]);
}

TEST_F(TcpPacket, ZeroWindowStopsDataAndProbes) {
    const uint32_t iss = handshake();
    Connection& c = *rec.accepted[0];
    stack->input(craft(1001, iss + 1, kAck, 0), kIhl, 0);  // window closes
    out.clear();
    stack->write(c, "blocked", 7, 0);
    EXPECT_TRUE(out.frames.empty());
    stack->poll(500'000);
    ASSERT_EQ(out.frames.size(), 1u);  // a probe
    EXPECT_EQ(out.seg(0).seq, iss);     // an old sequence number
    out.clear();
    stack->input(craft(1001, iss + 1, kAck, 65535), kIhl, 1'200'000);  // window opens
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).payload_len, 7u);
}

TEST_F(TcpPacket, PawsSparesReorderedAcksAndData) {
    // The hand-off between cores and the network reorder segments: a bare
    // ACK overtaken by a newer one, and data overtaken by later data, are
    // taken, and cost no ACK back.
    const uint8_t syn_opts[12] = {1, 1, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0};
    stack->input(craft(1000, 0, kSyn, 65535, "", syn_opts, 12), kIhl, 0);
    const uint32_t iss = out.seg(0).seq;
    out.clear();
    auto ts = [](uint8_t v) { return std::vector<uint8_t>{1, 1, 8, 10, 0, 0, 0, v, 0, 0, 0, 0}; };
    stack->input(craft(1001, iss + 1, kAck, 65535, "", ts(101).data(), 12), kIhl, 1000);
    ASSERT_EQ(rec.accepted.size(), 1u);
    Connection& c = *rec.accepted[0];
    std::string data(2 * 1460, 'x');
    stack->write(c, data.data(), static_cast<uint32_t>(data.size()), 1000);
    out.clear();
    // The peer's ACK of both segments (TSval 104) overtakes its ACK of the
    // first (TSval 103).
    stack->input(craft(1001, iss + 1 + 2 * 1460, kAck, 65535, "", ts(104).data(), 12), kIhl, 2000);
    stack->input(craft(1001, iss + 1 + 1460, kAck, 65535, "", ts(103).data(), 12), kIhl, 2000);
    EXPECT_EQ(stack->counters().paws, 0u);
    EXPECT_TRUE(out.frames.empty()) << "an ACK went back for a reordered ACK";
    EXPECT_EQ(c.snd_una, iss + 1 + 2 * 1460);
    // Data: the second segment (TSval 106) before the first (TSval 105).
    stack->input(craft(1001 + 3, iss + 1 + 2 * 1460, kAck, 65535, "def", ts(106).data(), 12), kIhl, 3000);
    stack->input(craft(1001, iss + 1 + 2 * 1460, kAck, 65535, "abc", ts(105).data(), 12), kIhl, 3000);
    EXPECT_EQ(stack->counters().paws, 0u);
    EXPECT_EQ(rec.received, "abcdef");
}

TEST_F(TcpPacket, PawsDropsAnOldTimestamp) {
    const uint8_t syn_opts[12] = {1, 1, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0};
    stack->input(craft(1000, 0, kSyn, 65535, "", syn_opts, 12), kIhl, 0);
    const Segment synack = out.seg(0);
    out.clear();
    const uint8_t ack_opts[12] = {1, 1, 8, 10, 0, 0, 0, 101, 0, 0, 0, 0};
    stack->input(craft(1001, synack.seq + 1, kAck, 65535, "", ack_opts, 12), kIhl, 0);
    ASSERT_EQ(rec.accepted.size(), 1u);
    const uint8_t old_opts[12] = {1, 1, 8, 10, 0, 0, 0, 50, 0, 0, 0, 0};
    stack->input(craft(1001, synack.seq + 1, kAck, 65535, "stale", old_opts, 12), kIhl, 0);
    EXPECT_EQ(stack->counters().paws, 1u);
    EXPECT_EQ(rec.received, "");
}

TEST_F(TcpPacket, BacklogFullAnswersWithSynCookieThatValidates) {
    // Fill the backlog of 16 with half-open connections from other ports.
    for (uint16_t p = 0; p < 16; ++p) {
        OutSegment s;
        s.tuple = FourTuple{kIpB, kIpA, static_cast<uint16_t>(41000 + p), 80};
        s.seq = 100;
        s.flags = kSyn;
        stack->input(build_segment(EalEnvironment::pool(), Route{}, s), kIhl, 0);
    }
    out.clear();
    stack->input(craft(1000, 0, kSyn), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(stack->counters().syn_cookies_sent, 1u);
    const Segment synack = out.seg(0);
    const unsigned before = stack->connections();
    stack->input(craft(1001, synack.seq + 1, kAck, 65535, "after cookie"), kIhl, 0);
    EXPECT_EQ(stack->counters().syn_cookies_ok, 1u);
    EXPECT_EQ(stack->connections(), before + 1);
    ASSERT_FALSE(rec.accepted.empty());
    EXPECT_EQ(rec.received, "after cookie");
}

TEST_F(TcpPacket, ForgedCookieAckGetsRst) {
    stack->input(craft(1001, 0x12345678, kAck), kIhl, 0);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kRst);
    EXPECT_EQ(stack->counters().bad_cookie, 1u);
}

// ---------------------------------------------------------------------------
// TIME-WAIT: reopened by a new SYN (RFC 6191), recycled when the table is full.

static_assert(kNumTcpStates == static_cast<unsigned>(TcpState::kTimeWait) + 1,
              "kNumTcpStates counts TERMINUS_TCP_STATES");

// NOP NOP, then a timestamp option (RFC 7323 3).
std::vector<uint8_t> ts_option(uint32_t val, uint32_t ecr) {
    std::vector<uint8_t> o = {1, 1, 8, 10};
    for (uint32_t v : {val, ecr}) {
        for (int shift = 24; shift >= 0; shift -= 8) o.push_back(static_cast<uint8_t>(v >> shift));
    }
    return o;
}

class TcpTimeWait : public TcpPacket {
  protected:
    // A connection from kIpB:PORT (peer ISN 1000) that we close first, at
    // T: it ends in TIME-WAIT with RCV.NXT 1002 and, with TIMESTAMPS, the
    // peer's last TSval (TS.Recent) 103. ORPHAN: closed (no handler) before
    // the peer's FIN, rather than shut down and told of it in TIME-WAIT.
    Connection& time_wait(bool timestamps, uint16_t port = 40000, bool orphan = false,
                          uint64_t t = 0) {
        const auto opts = [timestamps](uint32_t val, uint32_t ecr) {
            return timestamps ? ts_option(val, ecr) : std::vector<uint8_t>{};
        };
        auto send = [&](uint32_t seq, uint32_t ack, uint8_t flags, const std::vector<uint8_t>& o) {
            stack->input(craft(seq, ack, flags, 65535, "", o.empty() ? nullptr : o.data(),
                               static_cast<uint8_t>(o.size()), port),
                         kIhl, t);
        };
        out.clear();
        send(1000, 0, kSyn, opts(100, 0));
        EXPECT_EQ(out.frames.size(), 1u);
        const Segment synack = out.seg(0);
        const uint32_t ecr = synack.options.ts_val;
        send(1001, synack.seq + 1, kAck, opts(101, ecr));
        Connection& c = *rec.accepted.back();
        EXPECT_EQ(c.tuple.remote_port, port);
        if (orphan) {
            stack->close(c, t);
        } else {
            stack->shutdown(c, t);
        }
        send(1001, synack.seq + 2, kAck, opts(102, ecr));
        send(1001, synack.seq + 2, kAck | kFin, opts(103, ecr));
        EXPECT_EQ(c.state, TcpState::kTimeWait);
        EXPECT_EQ(c.rcv_nxt, 1002u);
        EXPECT_EQ(c.snd_nxt, synack.seq + 2);
        EXPECT_EQ(c.handler, nullptr);
        out.clear();
        return c;
    }
    // A SYN from kIpB:PORT, with a timestamp TSVAL unless 0.
    void syn(uint32_t seq, uint32_t tsval, uint64_t t, uint16_t port = 40000) {
        std::vector<uint8_t> o = {2, 4, 0x05, 0xb4};
        if (tsval) {
            const std::vector<uint8_t> ts = ts_option(tsval, 0);
            o.insert(o.end(), ts.begin(), ts.end());
        }
        stack->input(craft(seq, 0, kSyn, 65535, "", o.data(), static_cast<uint8_t>(o.size()), port),
                     kIhl, t);
    }
    uint64_t in_state(TcpState s) const { return stack->counters().state[static_cast<unsigned>(s)]; }
    static TcpParams small(uint32_t max_connections) {
        TcpParams p = params();
        p.max_connections = max_connections;
        return p;
    }
};

TEST_F(TcpTimeWait, SynWithNewerTimestampIsAccepted) {
    Connection& old = time_wait(true);
    const uint32_t old_snd_nxt = old.snd_nxt;
    // Its sequence number is below the old RCV.NXT: the timestamp alone
    // tells a new incarnation (RFC 6191 2).
    syn(500, 200, 1'000'000);
    ASSERT_EQ(out.frames.size(), 1u);
    const Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kSyn | kAck);
    EXPECT_EQ(r.ack, 501u);
    EXPECT_EQ(r.seq, old_snd_nxt + 65535 + 2);  // beyond the old incarnation (RFC 1122 4.2.2.13)
    EXPECT_TRUE(r.options.has_timestamps);
    EXPECT_EQ(r.options.ts_ecr, 200u);
    EXPECT_EQ(stack->connections(), 1u);
    EXPECT_EQ(in_state(TcpState::kTimeWait), 0u);
    EXPECT_EQ(in_state(TcpState::kSynReceived), 1u);
    EXPECT_EQ(stack->counters().time_wait_reused, 1u);
    EXPECT_EQ(stack->counters().syn_challenged, 0u);
    // The handshake completes into a new accepted connection.
    const std::vector<uint8_t> ts = ts_option(201, r.options.ts_val);
    stack->input(craft(501, r.seq + 1, kAck, 65535, "", ts.data(), static_cast<uint8_t>(ts.size())),
                 kIhl, 1'100'000);
    ASSERT_EQ(rec.accepted.size(), 2u);
    EXPECT_EQ(rec.accepted[1]->state, TcpState::kEstablished);
    EXPECT_EQ(rec.accepted[1]->irs, 500u);
    EXPECT_EQ(rec.established, 2);
}

TEST_F(TcpTimeWait, SynWithOlderTimestampIsRefused) {
    Connection& old = time_wait(true);
    // A newer sequence number does not help: PAWS marks it an old duplicate.
    syn(5000, 50, 1'000'000);
    ASSERT_EQ(out.frames.size(), 1u);
    const Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kAck);
    EXPECT_EQ(r.seq, old.snd_nxt);
    EXPECT_EQ(r.ack, 1002u);
    EXPECT_EQ(old.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->connections(), 1u);
    EXPECT_EQ(stack->counters().paws, 1u);
    EXPECT_EQ(stack->counters().time_wait_reused, 0u);
    EXPECT_EQ(rec.accepted.size(), 1u);
}

TEST_F(TcpTimeWait, SynWithEqualTimestampNeedsANewerSequence) {
    Connection& old = time_wait(true);
    syn(900, 103, 1'000'000);  // TS.Recent again, and an old sequence number
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kAck);
    EXPECT_EQ(old.state, TcpState::kTimeWait);
    out.clear();
    syn(5000, 103, 1'000'000);  // RFC 6191 2: equal timestamp, newer sequence
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kSyn | kAck);
    EXPECT_EQ(out.seg(0).ack, 5001u);
    EXPECT_EQ(stack->counters().time_wait_reused, 1u);
}

TEST_F(TcpTimeWait, SynWithoutTimestampsBeyondRcvNxtIsAccepted) {
    Connection& old = time_wait(false);
    const uint32_t old_snd_nxt = old.snd_nxt;
    syn(1002 + 100'000, 0, 1'000'000);
    ASSERT_EQ(out.frames.size(), 1u);
    const Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kSyn | kAck);
    EXPECT_EQ(r.ack, 1002u + 100'000 + 1);
    EXPECT_EQ(r.seq, old_snd_nxt + 65535 + 2);
    EXPECT_FALSE(r.options.has_timestamps);
    EXPECT_EQ(in_state(TcpState::kSynReceived), 1u);
    EXPECT_EQ(stack->counters().time_wait_reused, 1u);
}

TEST_F(TcpTimeWait, SynWithoutTimestampsAtRcvNxtIsRefused) {
    Connection& old = time_wait(false);
    syn(1002, 0, 1'000'000);  // not greater than RCV.NXT: may be the old one's
    ASSERT_EQ(out.frames.size(), 1u);
    const Segment r = out.seg(0);
    EXPECT_EQ(r.flags, kAck);  // today's answer: a challenge ACK (RFC 5961 4)
    EXPECT_EQ(r.seq, old.snd_nxt);
    EXPECT_EQ(r.ack, 1002u);
    EXPECT_EQ(old.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->counters().syn_challenged, 1u);
    EXPECT_EQ(stack->counters().time_wait_reused, 0u);
}

TEST_F(TcpTimeWait, SynWithoutListenerLeavesTimeWait) {
    Connection& old = time_wait(true);
    stack->close_listeners();
    syn(5000, 200, 1'000'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kAck);
    EXPECT_EQ(old.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->counters().time_wait_reused, 0u);
}

TEST_F(TcpTimeWait, FullTableRecyclesTheOldestTimeWait) {
    restart(small(2));
    Connection& a = time_wait(false, 40001, false, 0);
    Connection& b = time_wait(false, 40002, true, 1'000'000);  // an orphan
    ASSERT_EQ(stack->connections(), 2u);
    // A passive open into the full table takes the oldest slot, A's,
    // without a RST to A's peer.
    syn(7000, 0, 2'000'000, 40003);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kSyn | kAck);
    EXPECT_EQ(out.seg(0).tuple.local_port, 40003);  // as the peer sees it
    EXPECT_EQ(out.seg(0).ack, 7001u);
    EXPECT_EQ(a.state, TcpState::kSynReceived);
    EXPECT_EQ(a.tuple.remote_port, 40003);
    EXPECT_EQ(b.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->counters().time_wait_recycled, 1u);
    EXPECT_EQ(in_state(TcpState::kTimeWait), 1u);
    EXPECT_EQ(in_state(TcpState::kSynReceived), 1u);
    // An active open takes the next oldest, B.
    out.clear();
    Connection* up = stack->connect(FourTuple{kIpA, kIpB, 50000, 8080}, &rec, 3'000'000);
    ASSERT_EQ(up, &b);
    EXPECT_EQ(up->state, TcpState::kSynSent);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kSyn);
    EXPECT_EQ(stack->counters().time_wait_recycled, 2u);
    EXPECT_EQ(in_state(TcpState::kTimeWait), 0u);
    EXPECT_EQ(stack->counters().no_memory, 0u);
    // Nothing left in TIME-WAIT: refused, as before.
    EXPECT_EQ(stack->connect(FourTuple{kIpA, kIpB, 50001, 8080}, &rec, 3'000'000), nullptr);
    EXPECT_EQ(stack->counters().no_memory, 1u);
    EXPECT_EQ(stack->connections(), 2u);
}

TEST_F(TcpTimeWait, ConnectTakesOverOurTimeWaitWithTimestamps) {
    // tcp_tw_reuse: a proxy that closed first reconnects from the same
    // local port; its new ISS lies beyond the old sequence space.
    Connection& c = time_wait(true);
    const FourTuple t = c.tuple;
    const uint32_t old_nxt = c.snd_nxt;
    Connection* n = stack->connect(t, &rec, 2'000'000);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->state, TcpState::kSynSent);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kSyn);
    EXPECT_EQ(out.seg(0).seq, old_nxt + 65537u);
    EXPECT_EQ(stack->counters().time_wait_reused, 1u);
    EXPECT_EQ(in_state(TcpState::kTimeWait), 0u);
}

TEST_F(TcpTimeWait, ConnectKeepsTimeWaitWithoutTimestamps) {
    Connection& c = time_wait(false);
    EXPECT_EQ(stack->connect(c.tuple, &rec, 2'000'000), nullptr);
    EXPECT_EQ(c.state, TcpState::kTimeWait);
    EXPECT_EQ(stack->counters().time_wait_reused, 0u);
}

TEST_F(TcpTimeWait, TimeWaitThatEndsLeavesTheRecycleQueue) {
    restart(small(2));
    Connection& a = time_wait(false, 40001, false, 0);
    Connection& b = time_wait(false, 40002, false, 30'000'000);
    stack->poll(60'500'000);  // the first one's 2 MSL is over
    ASSERT_EQ(stack->connections(), 1u);
    syn(7000, 0, 60'500'000, 40003);  // a free slot: nothing recycled
    EXPECT_EQ(stack->counters().time_wait_recycled, 0u);
    Connection& c = a;  // the one free slot
    EXPECT_EQ(c.tuple.remote_port, 40003);
    EXPECT_EQ(c.state, TcpState::kSynReceived);
    out.clear();
    syn(8000, 0, 60'500'000, 40004);  // the table is full: B goes, not C
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kSyn | kAck);
    EXPECT_EQ(out.seg(0).tuple.local_port, 40004);
    EXPECT_EQ(c.state, TcpState::kSynReceived);
    EXPECT_EQ(c.tuple.remote_port, 40003);
    EXPECT_EQ(b.tuple.remote_port, 40004);
    EXPECT_EQ(stack->counters().time_wait_recycled, 1u);
}

// Reconnects once when a connection times out, as the proxy does with
// the next upstream server.
struct Reconnector : Recorder {
    Connection* next = nullptr;
    void on_closed(Connection& c, CloseReason why) override {
        Recorder::on_closed(c, why);
        if (why == CloseReason::kTimeout && !next) {
            next = stack->connect(FourTuple{kIpA, kIpB, 50001, 8080}, this, now);
        }
    }
};

TEST_F(TcpTimeWait, ExpiryInTheSameBatchSparesTheRecycledSlot) {
    // A's 2 MSL and B's connect timeout end in the same tick, B's first.
    // B's handler reconnects into the full table and gets A's slot: A's
    // expiry, in the same batch, must not close the new connection.
    restart(small(2));
    Connection& a = time_wait(false, 40001, false, 200'000);  // expires at 60.2 s
    Reconnector up;
    up.stack = stack.get();
    Connection* b = stack->connect(FourTuple{kIpA, kIpB, 50000, 8080}, &up, 300'000, 59'900'000);
    ASSERT_NE(b, nullptr);
    stack->poll(60'199'000);
    ASSERT_EQ(a.state, TcpState::kTimeWait);
    ASSERT_EQ(b->state, TcpState::kSynSent);
    up.now = 60'200'000;
    stack->poll(60'200'000);
    ASSERT_EQ(up.next, &a);  // recycled
    EXPECT_EQ(up.next->state, TcpState::kSynSent);
    EXPECT_EQ(up.next->tuple.local_port, 50001);
    EXPECT_EQ(up.closed, 1);  // B's timeout only
    EXPECT_EQ(up.last_reason, CloseReason::kTimeout);
    EXPECT_EQ(stack->connections(), 1u);
    EXPECT_EQ(stack->counters().time_wait_recycled, 1u);
    EXPECT_EQ(stack->counters().connect_timeouts, 1u);
    // Its own timers still run: its SYN is retransmitted.
    out.clear();
    stack->poll(61'300'000);
    ASSERT_EQ(out.frames.size(), 1u);
    EXPECT_EQ(out.seg(0).flags, kSyn);
    EXPECT_EQ(out.seg(0).tuple.remote_port, 50001);
}

// ---------------------------------------------------------------------------
// Two stacks over an impaired in-memory link (tests/support/stack_link.h).

// Sends a buffer from one side and echoes it back through the other, then
// closes both: the bytes arrive intact in both directions.
struct TransferStats {
    uint64_t retransmits = 0, ooo_held = 0, simulated_us = 0 /* until the echo is back */, timeouts = 0, sack_retransmits = 0;
    uint64_t longest_stall_us = 0;  // the longest time neither side received a byte
    uint64_t ooo_full = 0;
};

TransferStats transfer(const Impairment& imp, size_t bytes, uint32_t seed,
                       config::CongestionControl cc = config::CongestionControl::kNewReno,
                       bool sack = true) {
    TransferStats stats;
    TcpParams p = params();
    p.congestion = cc;
    p.sack = sack;
    StackLink net(p, EalEnvironment::pool(), seed, imp);
    Stack& a = net.a;
    Stack& b = net.b;
    Recorder client, server;
    client.stack = &a;
    server.stack = &b;
    EXPECT_TRUE(b.listen(kIpB, 8080, &server, 16));
    Connection* c = a.connect(FourTuple{kIpA, kIpB, 50000, 8080}, &client, 0);
    EXPECT_NE(c, nullptr);
    if (!c) return stats;

    std::string data(bytes, '\0');
    for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>(net.rng() & 0xff);
    size_t written = 0, echoed = 0;
    bool client_closed = false, server_closed = false;
    uint64_t t = 0;
    size_t progress = 0;
    uint64_t last_progress = 0;
    const uint64_t deadline = 600'000'000;  // simulated
    while (t < deadline) {
        net.step(100);
        t = net.now;
        client.now = server.now = t;
        if (c && c->state == TcpState::kEstablished && written < bytes) {
            written += a.write(*c, data.data() + written,
                               static_cast<uint32_t>(std::min<size_t>(bytes - written, 65536)), t);
        }
        if (written == bytes && !client_closed && c && c->state == TcpState::kEstablished) {
            a.shutdown(*c, t);
            client_closed = true;
        }
        // The server echoes what it got.
        if (!server.accepted.empty()) {
            Connection* s = server.accepted[0];
            if (s->state != TcpState::kClosed && echoed < server.received.size()) {
                echoed += b.write(*s, server.received.data() + echoed,
                                  static_cast<uint32_t>(server.received.size() - echoed), t);
            }
            if (server.peer_fin && echoed == bytes && !server_closed) {
                b.shutdown(*s, t);
                server_closed = true;
            }
        }
        if (client.received.size() + server.received.size() != progress) {
            progress = client.received.size() + server.received.size();
            last_progress = t;
        } else if (stats.simulated_us == 0) {
            stats.longest_stall_us = std::max(stats.longest_stall_us, t - last_progress);
        }
        if (stats.simulated_us == 0 && client.received.size() == bytes) stats.simulated_us = t;
        if (client.closed && server.closed && a.connections() == 0 && b.connections() == 0) break;
        if (client.closed && server.closed && t > 400'000'000) break;
    }
    EXPECT_EQ(server.received.size(), bytes);
    EXPECT_TRUE(server.received == data) << "client to server bytes differ";
    EXPECT_EQ(client.received.size(), bytes);
    EXPECT_TRUE(client.received == data) << "server to client bytes differ";
    EXPECT_EQ(client.closed, 1);
    EXPECT_EQ(server.closed, 1);
    EXPECT_EQ(b.connections(), 0u);
    EXPECT_EQ(net.a_to_b.oversized + net.b_to_a.oversized, 0u) << "segments larger than the MTU";
    stats.retransmits = a.counters().retransmits + b.counters().retransmits;
    stats.ooo_held = a.counters().ooo_held + b.counters().ooo_held;
    stats.timeouts = a.counters().rto_expired + b.counters().rto_expired;
    stats.sack_retransmits = a.counters().sack_retransmits + b.counters().sack_retransmits;
    stats.ooo_full = a.counters().ooo_full + b.counters().ooo_full;
    return stats;
}

TEST(TcpLink, TransfersBothWaysOverACleanLink) {
    TransferStats s = transfer({}, 1 << 20, 1);
    EXPECT_EQ(s.retransmits, 0u);
}

TEST(TcpLink, TransfersWithLossReorderingDuplicationAndDelay) {
    Impairment imp;
    imp.loss = 0.02;
    imp.duplicate = 0.02;
    imp.reorder = 0.1;
    imp.delay_us = 2000;
    imp.jitter_us = 3000;
    TransferStats s = transfer(imp, 256 * 1024, 7);
    // The impairments really happened.
    EXPECT_GT(s.retransmits, 0u);
    EXPECT_GT(s.ooo_held, 0u);
}

TEST(TcpLink, CubicTransfersWithLoss) {
    Impairment imp;
    imp.loss = 0.01;
    imp.delay_us = 5000;
    TransferStats s = transfer(imp, 256 * 1024, 11, config::CongestionControl::kCubic);
    EXPECT_GT(s.retransmits, 0u);
}

TEST(TcpLink, SackRecoversMultipleLossesWithoutTimeouts) {
    // Bursty loss in one window is what RFC 6675 is for: NewReno alone
    // repairs one hole per round trip, SACK all of them at once.
    Impairment imp;
    imp.loss = 0.03;
    imp.delay_us = 5000;
    uint64_t with = 0, without = 0, sack_rtx = 0, t_with = 0, t_without = 0;
    for (uint32_t seed = 20; seed < 25; ++seed) {
        TransferStats s = transfer(imp, 512 * 1024, seed, config::CongestionControl::kNewReno, true);
        with += s.timeouts;
        t_with += s.simulated_us;
        sack_rtx += s.sack_retransmits;
        TransferStats n = transfer(imp, 512 * 1024, seed, config::CongestionControl::kNewReno, false);
        without += n.timeouts;
        t_without += n.simulated_us;
    }
    std::printf("5 seeded transfers: %llu RTOs, %llu ms with SACK; %llu RTOs, %llu ms without\n",
                static_cast<unsigned long long>(with), static_cast<unsigned long long>(t_with / 1000),
                static_cast<unsigned long long>(without), static_cast<unsigned long long>(t_without / 1000));
    EXPECT_GT(sack_rtx, 0u);
    EXPECT_LT(with, without);
}

TEST(TcpLink, LossBothWaysAtOnceNeverStalls) {
    // Both directions carry data and both lose 5%: retransmissions and ACKs
    // of each side are lost too. With SND.NXT rewound on a timeout, pure
    // ACKs carried a sequence number the peer already held and were
    // dropped, and a small out-of-order queue hid it; now each transfer
    // finishes with short stalls and few timeouts, and the queue (bounded
    // by memory) never overflows.
    Impairment imp;
    imp.loss = 0.05;
    imp.delay_us = 2000;
    uint64_t rtos = 0, stall = 0, total_ms = 0, full = 0;
    for (uint32_t seed = 40; seed < 48; ++seed) {
        TransferStats s = transfer(imp, 1 << 20, seed);
        rtos += s.timeouts;
        stall = std::max(stall, s.longest_stall_us);
        total_ms += s.simulated_us / 1000;
        full += s.ooo_full;
        EXPECT_GT(s.simulated_us, 0u) << "seed " << seed << " never finished";
    }
    std::printf("8 transfers of 1 MiB both ways at 5%% loss: %llu RTOs, longest stall %llu ms, %llu ms in all\n",
                static_cast<unsigned long long>(rtos), static_cast<unsigned long long>(stall / 1000),
                static_cast<unsigned long long>(total_ms));
    EXPECT_EQ(full, 0u);
    EXPECT_LT(stall, 3'000'000u);
    EXPECT_LT(rtos, 30u);  // 46 before RACK, 10 with it (seeded)
}

}  // namespace
}  // namespace terminus::tcp

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new terminus::testing::EalEnvironment);
    return RUN_ALL_TESTS();
}
