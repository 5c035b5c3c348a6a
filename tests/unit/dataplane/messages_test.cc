// The message rings between cores (dataplane/messages.cc): two cores'
// mailboxes on real rte_rings, driven from one thread.
#include "dataplane/messages.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <string>
#include <vector>

#include "tests/unit/dataplane/eal_env.h"
#include "tls/exchange.h"

namespace terminus::dataplane {
namespace {

using terminus::testing::EalEnvironment;

struct Seen {
    MessageKind kind;
    uint32_t arg;
    void* ptr;
};

// Records what core SELF is given, and each run's length.
struct Recorder {
    std::vector<Seen> seen;
    std::vector<unsigned> runs;
    unsigned self = ~0u;
    static void deliver(void* ctx, unsigned self, const Message* m, unsigned n) {
        auto* r = static_cast<Recorder*>(ctx);
        r->self = self;
        r->runs.push_back(n);
        for (unsigned i = 0; i < n; ++i) r->seen.push_back({m[i].kind, m[i].arg, m[i].ptr});
    }
};

void free_mbuf(void*, const Message& m) { rte_pktmbuf_free(static_cast<rte_mbuf*>(m.ptr)); }

class Messages : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string why;
        ASSERT_EQ(rings.create("ut_msg_" + std::to_string(++made), 2, kEntries, why), 0) << why;
        for (unsigned c = 0; c < 2; ++c) {
            rings.connect(mb[c], c);
            mb[c].set_counters(&counters[c]);
            for (unsigned k = 0; k < kMessageKinds; ++k) {
                mb[c].on(static_cast<MessageKind>(k), {Recorder::deliver, nullptr, &rec[c]});
            }
        }
    }

    static Message msg(MessageKind k, uint32_t arg, void* ptr = nullptr) {
        Message m;
        m.kind = k;
        m.arg = arg;
        m.ptr = ptr;
        return m;
    }

    static constexpr unsigned kEntries = 1024;  // 1023 usable
    static inline unsigned made = 0;
    MessageRings rings;
    Mailbox mb[2];
    net::NetCounters counters[2];
    Recorder rec[2];
};

TEST(MessageRingsSize, FollowsTheMbufsPerCoreWithinBounds) {
    EXPECT_EQ(MessageRings::entries_for(32767, 2), 16384u);
    EXPECT_EQ(MessageRings::entries_for(32767, 4), 8192u);
    EXPECT_EQ(MessageRings::entries_for(8191, 2), 4096u);
    EXPECT_EQ(MessageRings::entries_for(2048, 4), 1024u);      // at least 1024
    EXPECT_EQ(MessageRings::entries_for(1u << 20, 2), 16384u);  // at most 16384
}

TEST_F(Messages, DeliverEveryKindInOrderAsRunsOfOneKind) {
    static const MessageKind order[] = {MessageKind::kPacket, MessageKind::kPacket, MessageKind::kArp,
                                        MessageKind::kSessionEntry, MessageKind::kSessionEntry,
                                        MessageKind::kUpstreamSession, MessageKind::kPacket,
                                        MessageKind::kConfigGeneration};
    int dummy[std::size(order)];
    for (unsigned i = 0; i < std::size(order); ++i) ASSERT_TRUE(mb[0].send(1, msg(order[i], i, &dummy[i])));
    ASSERT_TRUE(mb[1].send(0, msg(MessageKind::kArp, 77)));

    EXPECT_EQ(mb[1].poll(), std::size(order));
    ASSERT_EQ(rec[1].seen.size(), std::size(order));
    for (unsigned i = 0; i < std::size(order); ++i) {
        EXPECT_EQ(rec[1].seen[i].kind, order[i]) << i;
        EXPECT_EQ(rec[1].seen[i].arg, i);
        EXPECT_EQ(rec[1].seen[i].ptr, &dummy[i]);
    }
    EXPECT_EQ(rec[1].runs, (std::vector<unsigned>{2, 1, 2, 1, 1, 1}));
    EXPECT_EQ(rec[1].self, 1u);
    EXPECT_EQ(mb[1].poll(), 0u);  // nothing more: no progress

    EXPECT_EQ(mb[0].poll(), 1u);  // the other direction has a ring of its own
    ASSERT_EQ(rec[0].seen.size(), 1u);
    EXPECT_EQ(rec[0].seen[0].arg, 77u);
    EXPECT_EQ(counters[0].ring_full_packet + counters[1].ring_full_arp, 0u);
}

TEST_F(Messages, AFullRingCountsByKindAndFreesTheFrame) {
    mb[0].on(MessageKind::kPacket, {Recorder::deliver, free_mbuf, &rec[0]});
    mb[0].on(MessageKind::kArp, {Recorder::deliver, free_mbuf, &rec[0]});
    for (unsigned i = 0; i < kEntries - 1; ++i) ASSERT_TRUE(mb[0].send(1, msg(MessageKind::kConfigGeneration, i)));

    rte_mempool* pool = EalEnvironment::pool();
    const unsigned avail = rte_mempool_avail_count(pool);
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    EXPECT_FALSE(mb[0].send(1, msg(MessageKind::kPacket, 0, m)));
    EXPECT_EQ(counters[0].ring_full_packet, 1u);
    EXPECT_EQ(rte_mempool_avail_count(pool), avail);  // freed

    // An ARP flood holds one reference per core: a full ring drops just
    // the one meant for it.
    m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    rte_mbuf_refcnt_update(m, 1);
    EXPECT_FALSE(mb[0].send(1, msg(MessageKind::kArp, 0, m)));
    EXPECT_EQ(counters[0].ring_full_arp, 1u);
    EXPECT_EQ(rte_mbuf_refcnt_read(m), 1u);
    rte_pktmbuf_free(m);
    EXPECT_EQ(rte_mempool_avail_count(pool), avail);

    EXPECT_EQ(counters[0].ring_full_config_generation, 0u);
    EXPECT_FALSE(mb[0].send(1, msg(MessageKind::kConfigGeneration, 0)));
    EXPECT_EQ(counters[0].ring_full_config_generation, 1u);

    // Drained, it takes messages again.
    EXPECT_EQ(mb[1].poll(), kMessageBurst);
    EXPECT_TRUE(mb[0].send(1, msg(MessageKind::kPacket, 0)));
    EXPECT_EQ(counters[1].ring_full_packet, 0u);
}

unsigned free_slots(tls::SessionExchange& ex, unsigned core) {
    std::vector<tls::ExchangeSlot*> taken;
    while (tls::ExchangeSlot* s = ex.take(core)) taken.push_back(s);
    for (auto* s : taken) {
        s->producer = static_cast<uint16_t>(core);
        s->refs.store(1);
        ex.release(s);
    }
    return static_cast<unsigned>(taken.size());
}

TEST_F(Messages, SessionSlotsArriveInOrderAndGoBackToTheirPool) {
    tls::SessionExchange ex(2);
    ASSERT_TRUE(ex.ok());
    Mailbox* boxes[] = {&mb[0], &mb[1]};
    ExchangeMessages transport(ex, MessageKind::kSessionEntry, boxes, 2);
    ASSERT_TRUE(ex.ok());  // its own rings are gone, the pools stay
    const unsigned pool_size = free_slots(ex, 0);
    ASSERT_GT(pool_size, 3u);

    tls::ExchangeSlot* sent[3];
    for (unsigned i = 0; i < 3; ++i) {
        sent[i] = ex.take(0);
        ASSERT_NE(sent[i], nullptr);
        sent[i]->server = i;
        ASSERT_TRUE(ex.broadcast(0, sent[i]));
    }
    tls::ExchangeSlot* got[8];
    EXPECT_EQ(ex.receive(1, got, 8), 0u);  // not before core 1 polls its rings
    EXPECT_EQ(mb[1].poll(), 3u);
    ASSERT_EQ(ex.receive(1, got, 8), 3u);
    for (unsigned i = 0; i < 3; ++i) {
        EXPECT_EQ(got[i], sent[i]);
        EXPECT_EQ(got[i]->server, i);
        ex.release(got[i]);
    }
    EXPECT_EQ(free_slots(ex, 0), pool_size);

    // A full ring: counted as a session entry, the slot back in its pool.
    for (unsigned i = 0; i < kEntries - 1; ++i) ASSERT_TRUE(mb[0].send(1, msg(MessageKind::kPacket, i)));
    tls::ExchangeSlot* s = ex.take(0);
    ASSERT_NE(s, nullptr);
    EXPECT_FALSE(ex.broadcast(0, s));
    EXPECT_EQ(counters[0].ring_full_session_entry, 1u);
    EXPECT_EQ(counters[0].ring_full_packet, 0u);
    EXPECT_EQ(free_slots(ex, 0), pool_size);
}

}  // namespace
}  // namespace terminus::dataplane

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new terminus::testing::EalEnvironment);
    return RUN_ALL_TESTS();
}
