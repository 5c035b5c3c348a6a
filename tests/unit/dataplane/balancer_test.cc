// Choosing upstream servers as nginx does.
#include <gtest/gtest.h>

#include <string>

#include "dataplane/proxy/balancer.h"

namespace terminus::dataplane::proxy {
namespace {

config::Upstream upstream(std::initializer_list<std::pair<uint32_t, uint32_t>> weights) {
    config::Upstream u;
    u.name = "u";
    uint16_t port = 8000;
    for (auto [addr, w] : weights) {
        config::UpstreamServer s;
        s.address = addr;
        s.port = port++;
        s.weight = w;
        u.servers.push_back(s);
    }
    return u;
}

std::string picks(Balancer& b, int n, uint64_t now = 0) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        int p = b.pick(now, 1, 0);
        out += p < 0 ? '-' : static_cast<char>('a' + p);
        if (p >= 0) b.release(p);
    }
    return out;
}

TEST(Balancer, SmoothWeightedRoundRobinMatchesNginx) {
    // nginx's documented example: weights 5, 1, 1 give { a, a, b, a, c, a, a }.
    Balancer b(upstream({{1, 5}, {2, 1}, {3, 1}}));
    EXPECT_EQ(picks(b, 7), "aabacaa");
    EXPECT_EQ(picks(b, 7), "aabacaa");
}

TEST(Balancer, TriedServersAreSkipped) {
    Balancer b(upstream({{1, 1}, {2, 1}}));
    const int first = b.pick(0, 1, 0);
    const int second = b.pick(0, 1, uint64_t{1} << first);
    EXPECT_NE(first, second);
    EXPECT_EQ(b.pick(0, 1, 3), -1);
}

TEST(Balancer, MaxFailsTakesAServerOutForFailTimeout) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[0].max_fails = 2;
    u.servers[0].fail_timeout = std::chrono::seconds(10);
    Balancer b(u);
    b.on_failure(0, 1'000'000);
    EXPECT_NE(picks(b, 4, 1'000'000).find('a'), std::string::npos);  // one failure: still in
    b.on_failure(0, 1'000'000);
    EXPECT_EQ(picks(b, 4, 2'000'000), "bbbb");                        // two: out
    EXPECT_NE(picks(b, 6, 11'500'000).find('a'), std::string::npos);  // fail_timeout later: back
}

TEST(Balancer, ASingleServerIsNeverMarkedDown) {
    Balancer b(upstream({{1, 1}}));
    for (int i = 0; i < 5; ++i) b.on_failure(0, 0);
    EXPECT_EQ(picks(b, 2), "aa");
}

TEST(Balancer, BackupServesOnlyWhenPrimariesCannot) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[1].backup = true;
    u.servers[0].max_fails = 1;
    Balancer b(u);
    EXPECT_EQ(picks(b, 3), "aaa");
    b.on_failure(0, 0);
    EXPECT_EQ(picks(b, 2, 1), "bb");
}

TEST(Balancer, DownServersAreNeverPicked) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[0].down = true;
    Balancer b(u);
    EXPECT_EQ(picks(b, 3), "bbb");
}

TEST(Balancer, MaxConnsCapsAServer) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[0].max_conns = 1;
    u.servers[1].max_conns = 1;
    Balancer b(u);
    const int x = b.pick(0, 1, 0);
    const int y = b.pick(0, 1, 0);
    EXPECT_NE(x, y);
    EXPECT_EQ(b.pick(0, 1, 0), -1);
    b.release(x);
    EXPECT_EQ(b.pick(0, 1, 0), x);
}

TEST(Balancer, LeastConnPrefersTheLeastLoaded) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}});
    u.method = config::BalanceMethod::kLeastConn;
    Balancer b(u);
    const int a = b.pick(0, 1, 0);
    const int c = b.pick(0, 1, 0);
    const int d = b.pick(0, 1, 0);
    EXPECT_NE(a, c);
    EXPECT_NE(c, d);
    EXPECT_NE(a, d);
    b.release(c);
    EXPECT_EQ(b.pick(0, 1, 0), c);  // the only one with no connection
}

TEST(Balancer, HashKeepsAClientOnOneServer) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}, {4, 1}});
    u.method = config::BalanceMethod::kHash;
    Balancer b(u);
    for (uint32_t client = 1; client < 50; ++client) {
        const int first = b.pick(0, client, 0);
        b.release(first);
        for (int i = 0; i < 5; ++i) {
            const int again = b.pick(0, client, 0);
            EXPECT_EQ(again, first) << client;
            b.release(again);
        }
    }
}

TEST(Balancer, HashSpreadsClients) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}, {4, 1}});
    u.method = config::BalanceMethod::kHash;
    Balancer b(u);
    int seen[4] = {};
    for (uint32_t client = 0; client < 4000; ++client) {
        const int p = b.pick(0, 0xc6120000u + client, 0);
        ++seen[p];
        b.release(p);
    }
    for (int n : seen) EXPECT_GT(n, 700);
}

}  // namespace
}  // namespace terminus::dataplane::proxy
