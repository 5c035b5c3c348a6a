// limit_conn zones: counting per key, the limit, the bucket filling up,
// zones kept across generations, and two threads racing on one table.
#include "dataplane/proxy/limit_conn.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace terminus::dataplane::proxy {
namespace {

const tcp::SipKey kKey{1, 2};

TEST(LimitZone, CountsEachKeyUpToItsLimit) {
    LimitZone z("addr", 32 * 1024, kKey);
    std::vector<std::atomic<uint64_t>*> held;
    for (int i = 0; i < 3; ++i) {
        std::atomic<uint64_t>* s = nullptr;
        ASSERT_EQ(z.acquire("198.18.0.1", 3, s), LimitZone::Result::kCounted);
        held.push_back(s);
    }
    std::atomic<uint64_t>* s = nullptr;
    EXPECT_EQ(z.acquire("198.18.0.1", 3, s), LimitZone::Result::kLimited);
    EXPECT_EQ(z.count("198.18.0.1"), 3u);
    // Another key has its own count.
    ASSERT_EQ(z.acquire("198.18.0.2", 3, s), LimitZone::Result::kCounted);
    EXPECT_EQ(z.count("198.18.0.2"), 1u);
    LimitZone::release(s);
    EXPECT_EQ(z.count("198.18.0.2"), 0u);
    // One given back makes room for one more; all back frees the slot.
    LimitZone::release(held.back());
    held.pop_back();
    ASSERT_EQ(z.acquire("198.18.0.1", 3, s), LimitZone::Result::kCounted);
    held.push_back(s);
    for (auto* h : held) LimitZone::release(h);
    EXPECT_EQ(z.count("198.18.0.1"), 0u);
    // A higher limit for the same zone (another server's limit_conn).
    for (int i = 0; i < 5; ++i) ASSERT_EQ(z.acquire("198.18.0.1", 5, s), LimitZone::Result::kCounted);
    EXPECT_EQ(z.acquire("198.18.0.1", 5, s), LimitZone::Result::kLimited);
}

TEST(LimitZone, AFullBucketRefusesNewKeysOnly) {
    // One bucket of eight slots.
    LimitZone z("tiny", 64, kKey);
    EXPECT_EQ(z.slots(), 8u);
    std::vector<std::atomic<uint64_t>*> held;
    for (int i = 0; i < 8; ++i) {
        std::atomic<uint64_t>* s = nullptr;
        ASSERT_EQ(z.acquire("key" + std::to_string(i), 10, s), LimitZone::Result::kCounted) << i;
        held.push_back(s);
    }
    std::atomic<uint64_t>* s = nullptr;
    EXPECT_EQ(z.acquire("key8", 10, s), LimitZone::Result::kFull);
    // Keys already there still count.
    EXPECT_EQ(z.acquire("key3", 10, s), LimitZone::Result::kCounted);
    LimitZone::release(s);
    // A key that leaves makes room.
    LimitZone::release(held[5]);
    EXPECT_EQ(z.acquire("key8", 10, s), LimitZone::Result::kCounted);
}

TEST(LimitZones, AReloadKeepsAZoneOfTheSameNameAndSize) {
    LimitZones zones;
    auto a = zones.get("addr", 1 << 20);
    std::atomic<uint64_t>* s = nullptr;
    ASSERT_EQ(a->acquire("x", 1, s), LimitZone::Result::kCounted);
    auto again = zones.get("addr", 1 << 20);
    EXPECT_EQ(again.get(), a.get());
    EXPECT_EQ(again->acquire("x", 1, s), LimitZone::Result::kLimited);  // counted before the "reload"
    auto resized = zones.get("addr", 2 << 20);
    EXPECT_NE(resized.get(), a.get());  // nginx: a zone whose size changed is a new zone
    EXPECT_EQ(resized->count("x"), 0u);
}

TEST(LimitZone, TwoThreadsGiveEverythingBack) {
    LimitZone z("race", 4096, kKey);
    constexpr int kRounds = 200000;
    auto worker = [&](int id) {
        std::atomic<uint64_t>* mine[4] = {};
        for (int r = 0; r < kRounds; ++r) {
            // A key both threads use, and one of each thread's own.
            const std::string shared = "shared" + std::to_string(r % 7);
            const std::string own = "own" + std::to_string(id) + "-" + std::to_string(r % 13);
            std::atomic<uint64_t>* s = nullptr;
            ASSERT_NE(z.acquire(shared, 1000, s), LimitZone::Result::kFull);
            mine[0] = s;
            ASSERT_EQ(z.acquire(own, 1000, s), LimitZone::Result::kCounted);
            mine[1] = s;
            LimitZone::release(mine[1]);
            LimitZone::release(mine[0]);
        }
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    for (int k = 0; k < 7; ++k) EXPECT_EQ(z.count("shared" + std::to_string(k)), 0u);
    for (int id = 0; id < 2; ++id) {
        for (int k = 0; k < 13; ++k) EXPECT_EQ(z.count("own" + std::to_string(id) + "-" + std::to_string(k)), 0u);
    }
}

}  // namespace
}  // namespace terminus::dataplane::proxy
