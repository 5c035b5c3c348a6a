#include <gtest/gtest.h>

#include <cstdint>

#include "dataplane/tcp/siphash.h"

namespace terminus::tcp {
namespace {

SipKey paper_key() {
    // Key bytes 00 01 .. 0f, little-endian words, as in the paper.
    return SipKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
}

TEST(SipHash, MatchesThePapersTestVector) {
    // Appendix A: the 15-byte message 00 01 .. 0e hashes to a129ca6149be45e5.
    uint8_t msg[15];
    for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
    EXPECT_EQ(siphash24(paper_key(), msg, sizeof msg), 0xa129ca6149be45e5ULL);
}

TEST(SipHash, EmptyMessageMatchesTheReferenceVector) {
    // The reference implementation's vectors: the empty message.
    EXPECT_EQ(siphash24(paper_key(), nullptr, 0), 0x726fdb47dd0e0e31ULL);
}

TEST(SipHash, KeyChangesTheHash) {
    uint8_t msg[8] = {};
    SipKey other = paper_key();
    other.k1 ^= 1;
    EXPECT_NE(siphash24(paper_key(), msg, 8), siphash24(other, msg, 8));
}

}  // namespace
}  // namespace terminus::tcp
