// Active health checks: how verdicts add up to a server's health (NGINX
// Plus's fails=, passes=, mandatory) and what a match{} expects.
#include <gtest/gtest.h>

#include <string>

#include "dataplane/proxy/health.h"

namespace terminus::dataplane::proxy {
namespace {

// Feeds VERDICTS ('p' passed, 'f' failed) and writes the health after
// each: 'H' healthy, 'U' unhealthy, 'C' checking.
std::string run(HealthCounter& c, const std::string& verdicts) {
    std::string out;
    for (char v : verdicts) {
        c.record(v == 'p');
        out += c.health() == Health::kHealthy ? 'H' : c.health() == Health::kUnhealthy ? 'U' : 'C';
    }
    return out;
}

TEST(HealthCounter, FailsConsecutiveFailuresMakeAServerUnhealthy) {
    HealthCounter c(2, 1, false);
    EXPECT_EQ(c.health(), Health::kHealthy);
    EXPECT_EQ(run(c, "fpfpff"), "HHHHHU");  // a pass in between starts the count again
}

TEST(HealthCounter, PassesConsecutivePassesMakeItHealthyAgain) {
    HealthCounter c(1, 3, false);
    EXPECT_EQ(run(c, "f"), "U");
    EXPECT_EQ(run(c, "ppfppp"), "UUUUUH");
    EXPECT_EQ(run(c, "f"), "U");  // fails=1: one failure takes it out again
}

TEST(HealthCounter, RecordSaysWhenTheHealthChanged) {
    HealthCounter c(2, 2, false);
    EXPECT_FALSE(c.record(false));
    EXPECT_TRUE(c.record(false));
    EXPECT_FALSE(c.record(false));
    EXPECT_FALSE(c.record(true));
    EXPECT_TRUE(c.record(true));
}

TEST(HealthCounter, MandatoryChecksBeforeTheFirstVerdict) {
    HealthCounter passed(3, 3, true);
    EXPECT_EQ(passed.health(), Health::kChecking);
    // The first check decides, whatever fails= and passes= ask.
    EXPECT_EQ(run(passed, "p"), "H");
    EXPECT_EQ(run(passed, "ff"), "HH");  // and from then on they count

    HealthCounter failed(3, 2, true);
    EXPECT_EQ(run(failed, "f"), "U");
    EXPECT_EQ(run(failed, "pp"), "UH");
}

config::Match literal(std::string send, std::string expect) {
    config::Match m;
    m.name = "m";
    m.send = std::move(send);
    m.expect = std::move(expect);
    return m;
}

bool matches(const Expect& e, const std::string& data) {
    return e.matches(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

TEST(Expect, LiteralIsASubstringAnywhereInTheReply) {
    auto e = Expect::compile(literal("PING\r\n", "PONG"));
    ASSERT_TRUE(e.ok()) << e.error();
    EXPECT_FALSE(e->empty());
    EXPECT_TRUE(matches(*e, "PONG"));
    EXPECT_TRUE(matches(*e, "+OK PONG\r\n"));
    EXPECT_FALSE(matches(*e, "PON"));  // half of it: not yet
    EXPECT_FALSE(matches(*e, "pong"));
}

TEST(Expect, LiteralMayHoldAnyByte) {
    auto e = Expect::compile(literal("", std::string("\x00\x80\xff", 3)));
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(matches(*e, std::string("ab\x00\x80\xff", 5)));
    EXPECT_FALSE(matches(*e, std::string("ab\x00\x80", 4)));
}

TEST(Expect, RegexIsSearchedInTheBytesSoFar) {
    config::Match m = literal("GET / HTTP/1.0\r\n\r\n", "^HTTP/1\\.[01] [23]\\d\\d");
    m.expect_regex = true;
    auto e = Expect::compile(m);
    ASSERT_TRUE(e.ok()) << e.error();
    EXPECT_TRUE(matches(*e, "HTTP/1.1 200 OK\r\n"));
    EXPECT_TRUE(matches(*e, "HTTP/1.0 302 Found\r\n"));
    EXPECT_FALSE(matches(*e, "HTTP/1.1 503 Unavailable\r\n"));
    EXPECT_FALSE(matches(*e, "HTTP/1.1 2"));  // not all of it yet
}

TEST(Expect, ABadRegexIsAnErrorWithItsPlace) {
    config::Match m = literal("", "(unclosed");
    m.expect_regex = true;
    m.loc.file = "/etc/t.conf";
    m.loc.line = 7;
    auto e = Expect::compile(m);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().rfind("/etc/t.conf:7: match \"m\": expect ~ \"(unclosed\": ", 0), 0u) << e.error();
}

TEST(Expect, SendOnlyExpectsNothing) {
    auto e = Expect::compile(literal("QUIT\r\n", ""));
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(e->empty());
    EXPECT_TRUE(Expect().empty());
}

TEST(CheckResult, NamesAreWhatTerminusctlShows) {
    EXPECT_STREQ(to_string(CheckResult::kNone), "none");
    EXPECT_STREQ(to_string(CheckResult::kPassed), "passed");
    EXPECT_STREQ(to_string(CheckResult::kMismatch), "mismatch");
    EXPECT_STREQ(to_string(CheckResult::kNoConnection), "no_connection");
}

}  // namespace
}  // namespace terminus::dataplane::proxy
