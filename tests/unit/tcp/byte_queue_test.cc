// Byte queues over real mbufs: appends, reads, partial consumption, and
// moves that relink whole segments instead of copying them.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "dataplane/tcp/byte_queue.h"
#include "tests/unit/dataplane/eal_env.h"

namespace terminus::tcp {
namespace {

using terminus::testing::EalEnvironment;

rte_mbuf* segment(const std::string& bytes) {
    rte_mbuf* m = rte_pktmbuf_alloc(EalEnvironment::pool());
    EXPECT_NE(m, nullptr);
    char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
    std::memcpy(p, bytes.data(), bytes.size());
    return m;
}

std::string contents(const ByteQueue& q) {
    std::string out(q.bytes, '\0');
    bq_copy(q, 0, q.bytes, out.data());
    return out;
}

TEST(ByteQueue, MoveRelinksWholeSegments) {
    ByteQueue from, to;
    rte_mbuf* a = segment("alpha");
    rte_mbuf* b = segment("beta");
    bq_append(from, a);
    bq_append(from, b);
    const unsigned in_use = rte_mempool_in_use_count(EalEnvironment::pool());
    EXPECT_EQ(bq_move(from, to, EalEnvironment::pool(), 9), 9u);
    EXPECT_EQ(to.head, a);  // the same buffers, not copies
    EXPECT_EQ(to.tail, b);
    EXPECT_EQ(contents(to), "alphabeta");
    EXPECT_EQ(from.bytes, 0u);
    EXPECT_EQ(from.head, nullptr);
    EXPECT_EQ(from.tail, nullptr);
    EXPECT_EQ(rte_mempool_in_use_count(EalEnvironment::pool()), in_use);
    bq_clear(to);
}

TEST(ByteQueue, MoveCopiesOnlyTheSplitPart) {
    ByteQueue from, to;
    bq_append(from, segment("alpha"));
    rte_mbuf* b = segment("betagamma");
    bq_append(from, b);
    EXPECT_EQ(bq_move(from, to, EalEnvironment::pool(), 9), 9u);
    EXPECT_EQ(contents(to), "alphabeta");
    EXPECT_EQ(contents(from), "gamma");
    EXPECT_EQ(from.head, b);  // the rest stays where it was
    // Appending to a queue whose tail is a moved segment fills its room.
    EXPECT_EQ(bq_write(to, EalEnvironment::pool(), "!", 1), 1u);
    EXPECT_EQ(contents(to), "alphabeta!");
    EXPECT_EQ(bq_move(from, to, EalEnvironment::pool(), 100), 5u);
    EXPECT_EQ(contents(to), "alphabeta!gamma");
    bq_clear(to);
    bq_clear(from);
}

TEST(ByteQueue, MoveAfterAPartialReadKeepsTheOffset) {
    ByteQueue from, to;
    bq_append(from, segment("0123456789"));
    bq_consume(from, 4);
    EXPECT_EQ(bq_move(from, to, EalEnvironment::pool(), 6), 6u);
    EXPECT_EQ(contents(to), "456789");
    EXPECT_EQ(from.bytes, 0u);
    bq_clear(to);
}

TEST(ByteQueue, ConsumeFreesEmptiedSegments) {
    ByteQueue q;
    const unsigned before = rte_mempool_in_use_count(EalEnvironment::pool());
    bq_append(q, segment("abc"));
    bq_append(q, segment("def"));
    bq_consume(q, 3);
    EXPECT_EQ(rte_mempool_in_use_count(EalEnvironment::pool()), before + 1);
    EXPECT_EQ(contents(q), "def");
    bq_consume(q, 3);
    EXPECT_EQ(q.head, nullptr);
    EXPECT_EQ(rte_mempool_in_use_count(EalEnvironment::pool()), before);
}

}  // namespace
}  // namespace terminus::tcp
