// allow/deny as nginx's stream access module: first match wins, no match allows.
#include <gtest/gtest.h>

#include "dataplane/proxy/access.h"

namespace terminus::dataplane::proxy {
namespace {

config::AccessRule rule(bool allow, uint32_t addr, uint8_t len) {
    config::AccessRule r;
    r.allow = allow;
    r.prefix = config::Ipv4Prefix{addr, len};
    return r;
}

constexpr uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}

TEST(Access, NoRulesAllowEveryone) { EXPECT_TRUE(access_allowed({}, ip(198, 18, 0, 1))); }

TEST(Access, TheFirstMatchingRuleDecides) {
    // nginx's example: deny 192.168.1.1; allow 192.168.1.0/24; allow 10.1.1.0/16; deny all;
    const std::vector<config::AccessRule> rules = {
        rule(false, ip(192, 168, 1, 1), 32), rule(true, ip(192, 168, 1, 0), 24),
        rule(true, ip(10, 1, 0, 0), 16), rule(false, 0, 0)};
    EXPECT_FALSE(access_allowed(rules, ip(192, 168, 1, 1)));
    EXPECT_TRUE(access_allowed(rules, ip(192, 168, 1, 2)));
    EXPECT_TRUE(access_allowed(rules, ip(10, 1, 200, 3)));
    EXPECT_FALSE(access_allowed(rules, ip(10, 2, 0, 1)));
    EXPECT_FALSE(access_allowed(rules, ip(198, 18, 0, 1)));
}

TEST(Access, AClientNoRuleMatchesIsAllowed) {
    const std::vector<config::AccessRule> rules = {rule(false, ip(198, 18, 0, 0), 24)};
    EXPECT_FALSE(access_allowed(rules, ip(198, 18, 0, 9)));
    EXPECT_TRUE(access_allowed(rules, ip(198, 18, 1, 9)));
}

}  // namespace
}  // namespace terminus::dataplane::proxy
