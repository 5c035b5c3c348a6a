// TCP option parsing (untrusted input) and writing.
#include <gtest/gtest.h>

#include <vector>

#include "dataplane/tcp/tcp_options.h"

namespace terminus::tcp {
namespace {

OptionsResult parse(const std::vector<uint8_t>& b, TcpOptions& o) {
    return parse_options(b.data(), b.size(), o);
}

TEST(TcpOptions, LinuxSynOptionsParse) {
    // MSS 1460, SACKOK, TS 1/0, NOP, WS 7 — what Linux sends in a SYN.
    std::vector<uint8_t> b = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
    TcpOptions o;
    ASSERT_EQ(parse(b, o), OptionsResult::kOk);
    EXPECT_TRUE(o.has_mss);
    EXPECT_EQ(o.mss, 1460);
    EXPECT_TRUE(o.sack_permitted);
    EXPECT_TRUE(o.has_timestamps);
    EXPECT_EQ(o.ts_val, 1u);
    EXPECT_EQ(o.ts_ecr, 0u);
    EXPECT_TRUE(o.has_wscale);
    EXPECT_EQ(o.wscale, 7);
}

TEST(TcpOptions, WindowShiftAbove14IsUsedAs14) {
    std::vector<uint8_t> b = {3, 3, 15, 0};
    TcpOptions o;
    ASSERT_EQ(parse(b, o), OptionsResult::kOk);
    EXPECT_EQ(o.wscale, 14);
}

TEST(TcpOptions, EndOfListStopsParsing) {
    std::vector<uint8_t> b = {0, 2, 4, 0x05, 0xb4};
    TcpOptions o;
    ASSERT_EQ(parse(b, o), OptionsResult::kOk);
    EXPECT_FALSE(o.has_mss);
}

TEST(TcpOptions, UnknownOptionIsSkippedByItsLength) {
    std::vector<uint8_t> b = {30, 4, 0xaa, 0xbb, 2, 4, 0x02, 0x18};
    TcpOptions o;
    ASSERT_EQ(parse(b, o), OptionsResult::kOk);
    EXPECT_EQ(o.mss, 536);
}

TEST(TcpOptions, LengthPastTheEndIsMalformed) {
    std::vector<uint8_t> b = {2, 8, 0x05, 0xb4};
    TcpOptions o;
    EXPECT_EQ(parse(b, o), OptionsResult::kMalformed);
}

TEST(TcpOptions, LengthBelowTwoIsMalformed) {
    std::vector<uint8_t> b = {30, 1, 1, 1};
    TcpOptions o;
    EXPECT_EQ(parse(b, o), OptionsResult::kMalformed);
    std::vector<uint8_t> c = {30, 0};
    EXPECT_EQ(parse(c, o), OptionsResult::kMalformed);
}

TEST(TcpOptions, KindWithoutLengthByteIsMalformed) {
    std::vector<uint8_t> b = {1, 1, 1, 2};
    TcpOptions o;
    EXPECT_EQ(parse(b, o), OptionsResult::kMalformed);
}

TEST(TcpOptions, WrongFixedLengthsAreMalformed) {
    TcpOptions o;
    EXPECT_EQ(parse({2, 3, 5, 0}, o), OptionsResult::kMalformed);
    EXPECT_EQ(parse({3, 4, 7, 0}, o), OptionsResult::kMalformed);
    EXPECT_EQ(parse({4, 3, 0, 0}, o), OptionsResult::kMalformed);
    EXPECT_EQ(parse({8, 9, 0, 0, 0, 0, 0, 0, 0, 0}, o), OptionsResult::kMalformed);
}

TEST(TcpOptions, SackBlocksAreRead) {
    std::vector<uint8_t> b = {1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40};
    TcpOptions o;
    ASSERT_EQ(parse(b, o), OptionsResult::kOk);
    ASSERT_EQ(o.n_sack, 2);
    EXPECT_EQ(o.sack[0].left, 10u);
    EXPECT_EQ(o.sack[0].right, 20u);
    EXPECT_EQ(o.sack[1].left, 30u);
    EXPECT_EQ(o.sack[1].right, 40u);
}

TEST(TcpOptions, SackWithPartialBlockIsMalformed) {
    std::vector<uint8_t> b = {5, 6, 0, 0, 0, 1};
    TcpOptions o;
    EXPECT_EQ(parse(b, o), OptionsResult::kMalformed);
}

TEST(TcpOptions, SynOptionsRoundTrip) {
    SynOptions s;
    s.mss = 1400;
    s.wscale = true;
    s.shift = 9;
    s.sack_permitted = true;
    s.timestamps = true;
    s.ts_val = 0x01020304;
    s.ts_ecr = 0x0a0b0c0d;
    uint8_t buf[kMaxSynOptionsLen];
    size_t n = write_syn_options(buf, s);
    EXPECT_EQ(n % 4, 0u);
    EXPECT_LE(n, kMaxSynOptionsLen);
    TcpOptions o;
    ASSERT_EQ(parse_options(buf, n, o), OptionsResult::kOk);
    EXPECT_EQ(o.mss, 1400);
    EXPECT_EQ(o.wscale, 9);
    EXPECT_TRUE(o.sack_permitted);
    EXPECT_EQ(o.ts_val, 0x01020304u);
    EXPECT_EQ(o.ts_ecr, 0x0a0b0c0du);
}

TEST(TcpOptions, EverySynOptionCombinationIsAlignedAndParses) {
    for (int mask = 0; mask < 8; ++mask) {
        SynOptions s;
        s.wscale = mask & 1;
        s.sack_permitted = mask & 2;
        s.timestamps = mask & 4;
        uint8_t buf[kMaxSynOptionsLen];
        size_t n = write_syn_options(buf, s);
        EXPECT_EQ(n % 4, 0u) << mask;
        TcpOptions o;
        ASSERT_EQ(parse_options(buf, n, o), OptionsResult::kOk) << mask;
        EXPECT_EQ(o.has_wscale, s.wscale);
        EXPECT_EQ(o.sack_permitted, s.sack_permitted);
        EXPECT_EQ(o.has_timestamps, s.timestamps);
    }
}

TEST(TcpOptions, ThreeSackBlocksFitBesideTimestamps) {
    SackBlock blocks[4] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}};
    uint8_t buf[40];
    size_t n = write_options(buf, true, 5, 6, blocks, 4);
    EXPECT_LE(n, 40u);
    EXPECT_EQ(n % 4, 0u);
    TcpOptions o;
    ASSERT_EQ(parse_options(buf, n, o), OptionsResult::kOk);
    EXPECT_EQ(o.n_sack, 3);
    EXPECT_EQ(o.ts_val, 5u);
    n = write_options(buf, false, 0, 0, blocks, 4);
    ASSERT_EQ(parse_options(buf, n, o), OptionsResult::kOk);
    EXPECT_EQ(o.n_sack, 4);
    EXPECT_LE(n, 40u);
}

}  // namespace
}  // namespace terminus::tcp
