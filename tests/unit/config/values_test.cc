// Tests for config/values.cc: nginx's size and time syntax (ngx_parse_size,
// ngx_parse_time), IPv4 literals and printable names.
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "config/config.h"

namespace terminus::config {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::string size_error(const std::string& text) {
    return "invalid size \"" + text +
           "\": expected a number optionally followed by k, m or g, such as \"16k\"";
}

std::string time_error(const std::string& text) {
    return "invalid time \"" + text +
           "\": expected a number with units w d h m s ms in that order, such as \"1h30m\"";
}

std::string seconds_error(const std::string& text) {
    return "invalid time \"" + text +
           "\": expected a number with units y M w d h m s in that order, such as \"1h30m\"";
}

// ---------------------------------------------------------------------------
// parse_size

TEST(ParseSize, BareNumberIsBytes) {
    EXPECT_EQ(parse_size("0").value(), 0u);
    EXPECT_EQ(parse_size("1").value(), 1u);
    EXPECT_EQ(parse_size("16384").value(), 16384u);
}

TEST(ParseSize, UnitsArePowersOf1024InEitherCase) {
    EXPECT_EQ(parse_size("16k").value(), 16u * 1024);
    EXPECT_EQ(parse_size("16K").value(), 16u * 1024);
    EXPECT_EQ(parse_size("20m").value(), 20u * 1024 * 1024);
    EXPECT_EQ(parse_size("20M").value(), 20u * 1024 * 1024);
    EXPECT_EQ(parse_size("2g").value(), 2ull * 1024 * 1024 * 1024);
    EXPECT_EQ(parse_size("2G").value(), 2ull * 1024 * 1024 * 1024);
    EXPECT_EQ(parse_size("0k").value(), 0u);
}

TEST(ParseSize, LeadingZerosAreDecimal) {
    EXPECT_EQ(parse_size("010").value(), 10u);
    EXPECT_EQ(parse_size("008k").value(), 8u * 1024);
}

TEST(ParseSize, EmptyIsRefused) {
    auto r = parse_size("");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), size_error(""));
}

TEST(ParseSize, UnitWithoutNumberIsRefused) {
    for (const char* text : {"k", "m", "g", "K"}) {
        auto r = parse_size(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), size_error(text));
    }
}

TEST(ParseSize, AnythingElseIsRefused) {
    for (const char* text :
         {"1.5k", "-1", "+1", " 1", "1 ", "1kb", "1kk", "1b", "1t", "k1", "1 k", "0x10", "1e3"}) {
        auto r = parse_size(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), size_error(text));
    }
}

TEST(ParseSize, LargestValuesForEachUnit) {
    EXPECT_EQ(parse_size("9007199254740991k").value(), 9007199254740991ull * 1024);
    EXPECT_EQ(parse_size("8796093022207m").value(), 8796093022207ull * 1024 * 1024);
    EXPECT_EQ(parse_size("8589934591g").value(), 8589934591ull * 1024 * 1024 * 1024);
}

TEST(ParseSize, OverflowIsRefused) {
    for (const char* text : {"9007199254740992k", "8796093022208m", "8589934592g",
                             "9223372036854775808", "92233720368547758070",
                             "99999999999999999999999999"}) {
        auto r = parse_size(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), size_error(text));
    }
}

TEST(ParseSize, NumbersJustBelowTheDigitCutoffAreAccepted) {
    EXPECT_EQ(parse_size("9223372036854775799").value(), 9223372036854775799ull);
}

// Suspected bug: the digit loop refuses once value > (INT64_MAX - 9) / 10,
// whatever the next digit is, so 9223372036854775800 ... 9223372036854775807
// are refused. nginx's ngx_atosz() compares with cutoff/cutlim and accepts
// every value up to NGX_MAX_SIZE_T_VALUE (INT64_MAX on 64-bit).
TEST(ParseSize, Int64MaxIsAccepted) {
    auto r = parse_size("9223372036854775807");
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.value(), kInt64Max);
}

// ---------------------------------------------------------------------------
// parse_time (ngx_parse_time, msec mode)

TEST(ParseTime, BareNumberIsSeconds) {
    EXPECT_EQ(parse_time("0").value(), milliseconds(0));
    EXPECT_EQ(parse_time("5").value(), milliseconds(5000));
    EXPECT_EQ(parse_time("600").value(), milliseconds(600000));
}

TEST(ParseTime, EveryUnit) {
    EXPECT_EQ(parse_time("2w").value(), milliseconds(2ll * 7 * 86400 * 1000));
    EXPECT_EQ(parse_time("3d").value(), milliseconds(3ll * 86400 * 1000));
    EXPECT_EQ(parse_time("4h").value(), milliseconds(4ll * 3600 * 1000));
    EXPECT_EQ(parse_time("10m").value(), milliseconds(600000));
    EXPECT_EQ(parse_time("30s").value(), milliseconds(30000));
    EXPECT_EQ(parse_time("250ms").value(), milliseconds(250));
    EXPECT_EQ(parse_time("0ms").value(), milliseconds(0));
}

TEST(ParseTime, UnitsCombineInDescendingOrder) {
    EXPECT_EQ(parse_time("1h30m").value(), milliseconds(5400000));
    EXPECT_EQ(parse_time("1d2h3m4s").value(), milliseconds(93784000));
    EXPECT_EQ(parse_time("1s500ms").value(), milliseconds(1500));
    EXPECT_EQ(parse_time("1w2d3h4m5s6ms").value(), milliseconds(788645006));
    // Units may be skipped.
    EXPECT_EQ(parse_time("1d30s").value(), milliseconds(86430000));
}

TEST(ParseTime, TrailingBareNumberIsSeconds) {
    EXPECT_EQ(parse_time("1m30").value(), milliseconds(90000));
    EXPECT_EQ(parse_time("1h5").value(), milliseconds(3605000));
}

TEST(ParseTime, BlanksMayFollowAUnit) {
    EXPECT_EQ(parse_time("1h 30m").value(), milliseconds(5400000));
    EXPECT_EQ(parse_time("1m  30s ").value(), milliseconds(90000));
}

TEST(ParseTime, NumberFollowedByBlankIsSeconds) {
    EXPECT_EQ(parse_time("5 ").value(), milliseconds(5000));
    EXPECT_EQ(parse_time("1h 5 ").value(), milliseconds(3605000));
}

TEST(ParseTime, NothingWithAUnitMayFollowNumberAndBlank) {
    for (const char* text : {"5 s", "5 ms", "1 30m", "1m 5 1s", "1s 5 "}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), time_error(text));
    }
}

TEST(ParseTime, UnitsOutOfOrderAreRefused) {
    for (const char* text : {"30m1h", "1s1m", "500ms1s", "1h1d", "1d1w", "5s1h"}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), time_error(text));
    }
}

TEST(ParseTime, RepeatedUnitIsRefused) {
    for (const char* text : {"1h1h", "1m1m", "1s1s", "1ms1ms"}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), time_error(text));
    }
}

TEST(ParseTime, YearsAndMonthsAreRefusedInMillisecondMode) {
    // ngx_parse_time() starts at "month" when is_sec is 0.
    for (const char* text : {"1y", "1M", "1M1d"}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), time_error(text));
    }
}

TEST(ParseTime, EmptyOrWithoutDigitsIsRefused) {
    for (const char* text : {"", "s", "ms", "h", " "}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << '"' << text << '"';
        EXPECT_EQ(r.error(), time_error(text));
    }
}

TEST(ParseTime, OtherCharactersAreRefused) {
    for (const char* text : {"-1", "+1", "1.5s", "1x", "1S", "1H", "1 h", "1\ts", "1sec", "10min"}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), time_error(text));
    }
}

TEST(ParseTime, LargestValuesAreAccepted) {
    // INT64_MAX milliseconds is 106751991167 days 7:12:55.807.
    EXPECT_EQ(parse_time("106751991167d7h").value().count(), 9223372036854000000ll);
    EXPECT_EQ(parse_time("9223372036854775").value().count(), 9223372036854775000ll);
    EXPECT_EQ(parse_time("9223372036854775s").value().count(), 9223372036854775000ll);
    EXPECT_EQ(parse_time("9223372036854775799ms").value().count(), 9223372036854775799ll);
}

TEST(ParseTime, OverflowIsRefused) {
    for (const char* text : {"106751991168d", "106751991167d8h", "15250284452472w",
                             "9223372036854776", "9223372036854776s", "153722867280913m",
                             "9223372036854775s1000ms", "99999999999999999999999ms"}) {
        auto r = parse_time(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), time_error(text));
    }
}

// Suspected bug: as in parse_size, the digit loop refuses once
// value > (INT64_MAX - 9) / 10. nginx's ngx_parse_time() uses cutoff/cutlim
// and accepts "9223372036854775807ms" (NGX_MAX_INT_T_VALUE milliseconds).
TEST(ParseTime, Int64MaxMillisecondsIsAccepted) {
    auto r = parse_time("9223372036854775807ms");
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(static_cast<uint64_t>(r.value().count()), kInt64Max);
}

// ---------------------------------------------------------------------------
// parse_seconds (ngx_parse_time, sec mode)

TEST(ParseSeconds, BareNumberIsSeconds) {
    EXPECT_EQ(parse_seconds("0").value(), milliseconds(0));
    EXPECT_EQ(parse_seconds("300").value(), milliseconds(300000));
}

TEST(ParseSeconds, EveryUnitIncludingYearsAndMonths) {
    EXPECT_EQ(parse_seconds("1y").value(), milliseconds(365ll * 86400 * 1000));
    EXPECT_EQ(parse_seconds("1M").value(), milliseconds(30ll * 86400 * 1000));
    EXPECT_EQ(parse_seconds("1w").value(), milliseconds(7ll * 86400 * 1000));
    EXPECT_EQ(parse_seconds("1d").value(), milliseconds(86400ll * 1000));
    EXPECT_EQ(parse_seconds("4h").value(), milliseconds(4ll * 3600 * 1000));
    EXPECT_EQ(parse_seconds("5m").value(), milliseconds(300000));
    EXPECT_EQ(parse_seconds("45s").value(), milliseconds(45000));
}

TEST(ParseSeconds, UnitsCombineInDescendingOrder) {
    EXPECT_EQ(parse_seconds("1h30m").value(), milliseconds(5400000));
    EXPECT_EQ(parse_seconds("1d2h3m4s").value(), milliseconds(93784000));
    EXPECT_EQ(parse_seconds("1y1M1w1d1h1m1s").value(), milliseconds(34822861000ll));
    EXPECT_EQ(parse_seconds("2m30").value(), milliseconds(150000));
}

TEST(ParseSeconds, MillisecondsAreRefused) {
    for (const char* text : {"1ms", "500ms", "1s500ms", "1m1ms"}) {
        auto r = parse_seconds(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), seconds_error(text));
    }
}

TEST(ParseSeconds, UnitsOutOfOrderAreRefused) {
    for (const char* text : {"30m1h", "1M1y", "1d1M", "1s1s", "5 1s"}) {
        auto r = parse_seconds(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), seconds_error(text));
    }
}

TEST(ParseSeconds, EmptyIsRefused) {
    auto r = parse_seconds("");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), seconds_error(""));
}

TEST(ParseSeconds, OverflowIsRefused) {
    // Values are kept in milliseconds, so the limit is INT64_MAX / 1000 s.
    for (const char* text : {"292471209y", "9223372036854776", "9223372036854775s1"}) {
        auto r = parse_seconds(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), seconds_error(text));
    }
    EXPECT_EQ(parse_seconds("292471208y").value().count(),
              292471208ll * 365 * 86400 * 1000);
}

// ---------------------------------------------------------------------------
// IPv4

TEST(ParseIpv4, DottedQuadInHostByteOrder) {
    EXPECT_EQ(parse_ipv4("198.18.0.1").value(), 0xC6120001u);
    EXPECT_EQ(parse_ipv4("0.0.0.0").value(), 0u);
    EXPECT_EQ(parse_ipv4("255.255.255.255").value(), 0xFFFFFFFFu);
    EXPECT_EQ(parse_ipv4("10.0.0.255").value(), 0x0A0000FFu);
    EXPECT_EQ(parse_ipv4("1.20.199.0").value(), 0x0114C700u);
}

TEST(ParseIpv4, LeadingZerosAreRefused) {
    // "010" would be octal to inet_aton(): refuse rather than guess.
    for (const char* text : {"010.0.0.1", "10.00.0.1", "10.0.0.01", "1.2.3.001", "00.0.0.0"}) {
        auto r = parse_ipv4(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), std::string("invalid IPv4 address \"") + text + "\"");
    }
}

TEST(ParseIpv4, OctetAbove255IsRefused) {
    for (const char* text : {"256.0.0.1", "1.2.3.256", "1.2.300.4", "1.2.3.999", "1234.1.1.1"}) {
        auto r = parse_ipv4(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), std::string("invalid IPv4 address \"") + text + "\"");
    }
}

TEST(ParseIpv4, WrongShapeIsRefused) {
    for (const char* text : {"", "1", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3",
                             "1.2.3.4 ", " 1.2.3.4", "1.2.3.4:80", "1.2.3.4/24", "a.b.c.d",
                             "-1.2.3.4", "1.2.3.+4", "::1", "localhost"}) {
        auto r = parse_ipv4(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error(), std::string("invalid IPv4 address \"") + text + "\"");
    }
}

TEST(Ipv4ToString, PrintsDottedQuad) {
    EXPECT_EQ(ipv4_to_string(0), "0.0.0.0");
    EXPECT_EQ(ipv4_to_string(0xFFFFFFFFu), "255.255.255.255");
    EXPECT_EQ(ipv4_to_string(0xC6120001u), "198.18.0.1");
    EXPECT_EQ(ipv4_to_string(0x0A0000FFu), "10.0.0.255");
}

TEST(Ipv4ToString, RoundTripsThroughParse) {
    for (const char* text : {"198.18.0.2", "127.0.0.1", "172.16.254.3", "0.0.0.0"}) {
        auto r = parse_ipv4(text);
        ASSERT_TRUE(r.ok()) << text;
        EXPECT_EQ(ipv4_to_string(r.value()), text);
    }
}

// ---------------------------------------------------------------------------
// Printable names

TEST(TlsProtocolsToString, ListsVersionsOldestFirst) {
    EXPECT_EQ(tls_protocols_to_string(kTlsDefaultProtocols), "TLSv1.2 TLSv1.3");
    EXPECT_EQ(tls_protocols_to_string(0x0F), "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3");
    EXPECT_EQ(tls_protocols_to_string(static_cast<uint8_t>(TlsVersion::kTls1)), "TLSv1");
    EXPECT_EQ(tls_protocols_to_string(static_cast<uint8_t>(TlsVersion::kTls11)), "TLSv1.1");
    EXPECT_EQ(tls_protocols_to_string(static_cast<uint8_t>(TlsVersion::kTls12)), "TLSv1.2");
    EXPECT_EQ(tls_protocols_to_string(static_cast<uint8_t>(TlsVersion::kTls13)), "TLSv1.3");
    EXPECT_EQ(tls_protocols_to_string(static_cast<uint8_t>(TlsVersion::kTls1) |
                                      static_cast<uint8_t>(TlsVersion::kTls13)),
              "TLSv1 TLSv1.3");
}

TEST(TlsProtocolsToString, EmptyMaskIsEmptyString) {
    EXPECT_EQ(tls_protocols_to_string(0), "");
    // Bits above TLSv1.3 name nothing.
    EXPECT_EQ(tls_protocols_to_string(0xF0), "");
}

TEST(EnumNames, AreTheDirectiveValues) {
    EXPECT_STREQ(to_string(BalanceMethod::kRoundRobin), "round_robin");
    EXPECT_STREQ(to_string(BalanceMethod::kLeastConn), "least_conn");
    EXPECT_STREQ(to_string(BalanceMethod::kHash), "hash");
    EXPECT_STREQ(to_string(BalanceMethod::kRandom), "random");
    EXPECT_STREQ(to_string(CryptoBackend::kIpsecMb), "ipsec_mb");
    EXPECT_STREQ(to_string(CryptoBackend::kOpenssl), "openssl");
    EXPECT_STREQ(to_string(CryptoBackend::kCryptodev), "cryptodev");
    EXPECT_STREQ(to_string(CongestionControl::kNewReno), "newreno");
    EXPECT_STREQ(to_string(CongestionControl::kCubic), "cubic");
    EXPECT_STREQ(to_string(LogLevel::kDebug), "debug");
    EXPECT_STREQ(to_string(LogLevel::kWarn), "warn");
    EXPECT_STREQ(to_string(LogLevel::kEmerg), "emerg");
}

TEST(DiagnosticToString, FileLineColumnSeverityMessage) {
    Diagnostic error{Severity::kError, Location{"/etc/t.conf", 12, 5}, "bad"};
    Diagnostic warning{Severity::kWarning, Location{"t.conf", 1, 1}, "meh"};
    EXPECT_EQ(error.to_string(), "/etc/t.conf:12:5: error: bad");
    EXPECT_EQ(warning.to_string(), "t.conf:1:1: warning: meh");
}

}  // namespace
}  // namespace terminus::config
