// Initial sequence numbers (RFC 6528) and SYN cookies.
#include <gtest/gtest.h>

#include "dataplane/tcp/tcp_isn.h"

namespace terminus::tcp {
namespace {

const SipKey kSecret{0x1234, 0x5678};
const FourTuple kTuple{0xc6120002, 0xc6120001, 443, 40000};

TEST(TcpIsn, AdvancesWithTheFourMicrosecondClock) {
    uint32_t a = initial_sequence(kSecret, kTuple, 1000);
    uint32_t b = initial_sequence(kSecret, kTuple, 1000 + 4 * 250);
    EXPECT_EQ(b - a, 250u);
}

TEST(TcpIsn, DiffersBetweenConnections) {
    FourTuple other = kTuple;
    other.remote_port = 40001;
    EXPECT_NE(initial_sequence(kSecret, kTuple, 0), initial_sequence(kSecret, other, 0));
}

TEST(TcpIsn, DependsOnTheSecret) {
    EXPECT_NE(initial_sequence(kSecret, kTuple, 0), initial_sequence(SipKey{1, 2}, kTuple, 0));
}

TEST(SynCookie, ValidCookieReturnsTheMss) {
    const uint64_t now = 10'000'000;
    uint32_t cookie = make_cookie(kSecret, kTuple, 1000, 1460, now);
    auto d = check_cookie(kSecret, kTuple, cookie + 1, 1001, false, 0, now + 1'000'000);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->mss, 1460);
    EXPECT_FALSE(d->wscale_ok);
}

TEST(SynCookie, MssIsRoundedDownToTheTable) {
    uint32_t cookie = make_cookie(kSecret, kTuple, 1000, 1450, 0);
    auto d = check_cookie(kSecret, kTuple, cookie + 1, 1001, false, 0, 0);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->mss, 1440);
}

TEST(SynCookie, WrongTupleOrSequenceOrSecretFails) {
    uint32_t cookie = make_cookie(kSecret, kTuple, 1000, 1460, 0);
    FourTuple other = kTuple;
    other.remote_port = 40001;
    EXPECT_FALSE(check_cookie(kSecret, other, cookie + 1, 1001, false, 0, 0));
    EXPECT_FALSE(check_cookie(kSecret, kTuple, cookie + 1, 1002, false, 0, 0));
    EXPECT_FALSE(check_cookie(SipKey{9, 9}, kTuple, cookie + 1, 1001, false, 0, 0));
    EXPECT_FALSE(check_cookie(kSecret, kTuple, cookie + 2, 1001, false, 0, 0));
}

TEST(SynCookie, ExpiresAfterTwoPeriods) {
    uint32_t cookie = make_cookie(kSecret, kTuple, 1000, 1460, 0);
    EXPECT_TRUE(check_cookie(kSecret, kTuple, cookie + 1, 1001, false, 0, kCookiePeriodUs + 5));
    EXPECT_FALSE(check_cookie(kSecret, kTuple, cookie + 1, 1001, false, 0, 2 * kCookiePeriodUs + 5));
}

TEST(SynCookie, OptionsTravelInTheEchoedTimestamp) {
    CookieData want;
    want.wscale_ok = true;
    want.wscale = 7;
    want.sack_ok = true;
    const uint32_t ts = cookie_timestamp(123456789, want);
    EXPECT_GE(ts, 123456789u);
    uint32_t cookie = make_cookie(kSecret, kTuple, 1000, 1460, 0);
    auto d = check_cookie(kSecret, kTuple, cookie + 1, 1001, true, ts, 0);
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(d->wscale_ok);
    EXPECT_EQ(d->wscale, 7);
    EXPECT_TRUE(d->sack_ok);
}

TEST(SynCookie, ForgedCookiesAlmostNeverValidate) {
    // 24 bits of MAC: out of 100000 guesses, expect none to pass.
    int passed = 0;
    for (uint32_t guess = 0; guess < 100000; ++guess) {
        passed += check_cookie(kSecret, kTuple, guess * 2654435761u, 1001, false, 0, 0).has_value();
    }
    EXPECT_LE(passed, 1);
}

}  // namespace
}  // namespace terminus::tcp
