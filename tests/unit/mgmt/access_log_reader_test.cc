// The access log's rings between terminusd's cores and terminus-mgmtd:
// the producer (dataplane/access_log.h) and the reader
// (mgmt/access_log_reader.h) on one segment in /dev/shm: order, a full ring
// that drops and counts, wraparound, one reader at a time, and segments
// that are corrupt, short, of another layout or replaced.
#include "mgmt/access_log_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <rte_ring.h>

#include <cstring>
#include <string>
#include <vector>

#include "dataplane/access_log.h"

namespace terminus::mgmt {
namespace {

using dataplane::AccessLogSegment;

class AccessLogRings : public ::testing::Test {
  protected:
    void SetUp() override {
        path_ = "/dev/shm/terminus-unit-" + std::to_string(::getpid()) + ".log";
    }
    void TearDown() override { ::unlink(path_.c_str()); }

    std::unique_ptr<AccessLogSegment> make(unsigned cores, uint64_t bytes) {
        auto s = AccessLogSegment::create("unit", cores, bytes, 2'000'000'000, path_);
        EXPECT_TRUE(s) << (s ? "" : s.error());
        return s ? std::move(*s) : nullptr;
    }
    static AccessRecord rec(uint64_t seq, uint8_t core) {
        AccessRecord r{};
        r.magic = kAccessRecordMagic;
        r.connection = seq;
        r.core = core;
        return r;
    }
    // Overwrites LEN bytes at OFFSET of the segment file.
    void scribble(size_t offset, const void* bytes, size_t len) {
        const int fd = ::open(path_.c_str(), O_RDWR);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, bytes, len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
        ::close(fd);
    }

    std::string path_;
};

TEST_F(AccessLogRings, RecordsArriveInOrderPerCore) {
    auto seg = make(2, 64 * 1024);
    ASSERT_TRUE(seg);
    EXPECT_EQ(seg->records_per_ring(), 128u);
    for (uint64_t i = 0; i < 10; ++i) {
        ASSERT_TRUE(seg->ring(0).push(rec(i, 0), 0));
        ASSERT_TRUE(seg->ring(1).push(rec(100 + i, 1), 0));
    }
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ((*r)->cores(), 2u);
    std::vector<AccessRecord> out(64);
    const size_t n = (*r)->drain(out.data(), out.size());
    ASSERT_EQ(n, 20u);
    uint64_t next0 = 0, next1 = 100;
    for (size_t i = 0; i < n; ++i) {
        if (out[i].core == 0) {
            EXPECT_EQ(out[i].connection, next0++);
        } else {
            EXPECT_EQ(out[i].connection, next1++);
        }
    }
    EXPECT_EQ(next0, 10u);
    EXPECT_EQ(next1, 110u);
    EXPECT_EQ((*r)->drain(out.data(), out.size()), 0u);
}

TEST_F(AccessLogRings, AFullRingDropsAndCountsAndNeverBlocks) {
    auto seg = make(1, 4096);  // the minimum: 8 slots, 7 records
    ASSERT_TRUE(seg);
    auto& ring = seg->ring(0);
    for (uint64_t i = 0; i < 7; ++i) ASSERT_TRUE(ring.push(rec(i, 0), 0)) << i;
    EXPECT_FALSE(ring.push(rec(7, 0), 0));
    EXPECT_FALSE(ring.push(rec(8, 0), 0));
    EXPECT_EQ(ring.dropped(), 2u);
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    std::vector<AccessRecord> out(16);
    ASSERT_EQ((*r)->drain(out.data(), out.size()), 7u);
    for (uint64_t i = 0; i < 7; ++i) EXPECT_EQ(out[i].connection, i) << "the oldest stay, the newest drop";
    EXPECT_TRUE(ring.push(rec(9, 0), 0)) << "room again once drained";
}

TEST_F(AccessLogRings, WrapsAroundManyTimes) {
    auto seg = make(1, 4096);
    ASSERT_TRUE(seg);
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    std::vector<AccessRecord> out(8);
    uint64_t sent = 0, got = 0;
    for (int round = 0; round < 1000; ++round) {
        const int k = 1 + round % 7;
        for (int i = 0; i < k; ++i) ASSERT_TRUE(seg->ring(0).push(rec(sent++, 0), 0));
        const size_t n = (*r)->drain(out.data(), out.size());
        ASSERT_EQ(n, static_cast<size_t>(k));
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i].connection, got++);
    }
    EXPECT_EQ(seg->ring(0).dropped(), 0u);
}

TEST_F(AccessLogRings, OneReaderAtATime) {
    auto seg = make(1, 4096);
    ASSERT_TRUE(seg);
    auto a = AccessLogReader::open(path_);
    ASSERT_TRUE(a) << a.error();
    auto b = AccessLogReader::open(path_);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().find("another terminus-mgmtd"), std::string::npos) << b.error();
    a->reset();
    EXPECT_TRUE(AccessLogReader::open(path_)) << "the lock goes with the reader";
}

TEST_F(AccessLogRings, InvalidRecordsAreSkippedAndCounted) {
    auto seg = make(1, 4096);
    ASSERT_TRUE(seg);
    AccessRecord bad = rec(1, 0);
    bad.magic = 0xdeadbeef;
    AccessRecord wrong_core = rec(2, 5);
    AccessRecord long_alpn = rec(3, 0);
    long_alpn.alpn_len = 200;
    ASSERT_TRUE(seg->ring(0).push(rec(0, 0), 0));
    ASSERT_TRUE(seg->ring(0).push(bad, 0));
    ASSERT_TRUE(seg->ring(0).push(wrong_core, 0));
    ASSERT_TRUE(seg->ring(0).push(long_alpn, 0));
    ASSERT_TRUE(seg->ring(0).push(rec(4, 0), 0));
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    std::vector<AccessRecord> out(8);
    ASSERT_EQ((*r)->drain(out.data(), out.size()), 2u);
    EXPECT_EQ(out[0].connection, 0u);
    EXPECT_EQ(out[1].connection, 4u);
    EXPECT_EQ((*r)->invalid(), 3u);
}

TEST_F(AccessLogRings, ACorruptRingStopsTheReaderWithoutACrash) {
    auto seg = make(2, 4096);
    ASSERT_TRUE(seg);
    for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(seg->ring(1).push(rec(i, 1), 0));
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    // Core 1's ring: a mask that would reach past the file.
    const size_t ring1 = sizeof(AccessLogHeader) + (seg->bytes() - sizeof(AccessLogHeader)) / 2;
    const uint32_t mask = 0xffffff;
    scribble(ring1 + offsetof(rte_ring, mask), &mask, sizeof mask);
    std::vector<AccessRecord> out(8);
    EXPECT_EQ((*r)->drain(out.data(), out.size()), 0u);
    EXPECT_TRUE((*r)->corrupt());
    // Opened afresh, the layout is refused.
    r->reset();
    auto again = AccessLogReader::open(path_);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().find("does not match"), std::string::npos) << again.error();
}

TEST_F(AccessLogRings, GarbageIndexesReadOnlyInsideTheRing) {
    auto seg = make(1, 4096);
    ASSERT_TRUE(seg);
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    // The producer's tail far ahead of the consumer: whatever the slots
    // hold is read (and refused), never past them.
    const uint32_t tail = 0x7fffffff;
    scribble(sizeof(AccessLogHeader) + offsetof(rte_ring, prod) + offsetof(rte_ring_headtail, tail), &tail, 4);
    std::vector<AccessRecord> out(64);
    size_t total = 0;
    for (int i = 0; i < 10; ++i) total += (*r)->drain(out.data(), out.size());
    EXPECT_EQ(total, 0u);
    EXPECT_GT((*r)->invalid(), 0u);
}

TEST_F(AccessLogRings, HeadersThatDoNotFitAreRefused) {
    {
        auto seg = make(1, 4096);
        ASSERT_TRUE(seg);
        const uint32_t cores = 9;  // more rings than the file holds
        scribble(offsetof(AccessLogHeader, cores), &cores, sizeof cores);
        auto r = AccessLogReader::open(path_);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().find("do not fit"), std::string::npos) << r.error();
        const uint32_t version = 99;
        scribble(offsetof(AccessLogHeader, version), &version, sizeof version);
        r = AccessLogReader::open(path_);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().find("layout 99"), std::string::npos) << r.error();
    }
    EXPECT_FALSE(AccessLogReader::open(path_)) << "removed at the producer's exit";
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "short", 5), 5);
    ::close(fd);
    auto r = AccessLogReader::open(path_);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("too short"), std::string::npos) << r.error();
}

TEST_F(AccessLogRings, AReplacedSegmentIsNoticed) {
    auto seg = make(1, 4096);
    ASSERT_TRUE(seg);
    auto r = AccessLogReader::open(path_);
    ASSERT_TRUE(r) << r.error();
    EXPECT_FALSE((*r)->replaced());
    ASSERT_TRUE(seg->ring(0).push(rec(1, 0), 0));
    seg.reset();  // terminusd exits: the file goes, the reader's mapping stays
    EXPECT_TRUE((*r)->replaced());
    std::vector<AccessRecord> out(8);
    EXPECT_EQ((*r)->drain(out.data(), out.size()), 1u) << "what was left is still read";
    seg = make(1, 4096);
    EXPECT_TRUE((*r)->replaced());
}

}  // namespace
}  // namespace terminus::mgmt
