// Choosing upstream servers as nginx does.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

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
        int p = b.pick(now, FlowKey{1}, 0);
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
    const int first = b.pick(0, FlowKey{1}, 0);
    const int second = b.pick(0, FlowKey{1}, uint64_t{1} << first);
    EXPECT_NE(first, second);
    EXPECT_EQ(b.pick(0, FlowKey{1}, 3), -1);
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
    const int x = b.pick(0, FlowKey{1}, 0);
    const int y = b.pick(0, FlowKey{1}, 0);
    EXPECT_NE(x, y);
    EXPECT_EQ(b.pick(0, FlowKey{1}, 0), -1);
    b.release(x);
    EXPECT_EQ(b.pick(0, FlowKey{1}, 0), x);
}

TEST(Balancer, LeastConnPrefersTheLeastLoaded) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}});
    u.method = config::BalanceMethod::kLeastConn;
    Balancer b(u);
    const int a = b.pick(0, FlowKey{1}, 0);
    const int c = b.pick(0, FlowKey{1}, 0);
    const int d = b.pick(0, FlowKey{1}, 0);
    EXPECT_NE(a, c);
    EXPECT_NE(c, d);
    EXPECT_NE(a, d);
    b.release(c);
    EXPECT_EQ(b.pick(0, FlowKey{1}, 0), c);  // the only one with no connection
}

TEST(Balancer, HashKeepsAClientOnOneServer) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}, {4, 1}});
    u.method = config::BalanceMethod::kHash;
    u.hash_key = "$remote_addr";
    Balancer b(u);
    for (uint32_t client = 1; client < 50; ++client) {
        const int first = b.pick(0, FlowKey{client}, 0);
        b.release(first);
        for (int i = 0; i < 5; ++i) {
            const int again = b.pick(0, FlowKey{client}, 0);
            EXPECT_EQ(again, first) << client;
            b.release(again);
        }
    }
}

TEST(Balancer, HashSpreadsClients) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}, {4, 1}});
    u.method = config::BalanceMethod::kHash;
    u.hash_key = "$remote_addr";
    Balancer b(u);
    int seen[4] = {};
    for (uint32_t client = 0; client < 4000; ++client) {
        const int p = b.pick(0, FlowKey{0xc6120000u + client}, 0);
        ++seen[p];
        b.release(p);
    }
    for (int n : seen) EXPECT_GT(n, 700);
}

// Where each of N clients goes.
std::vector<int> placement(Balancer& b, uint32_t n) {
    std::vector<int> out;
    for (uint32_t client = 0; client < n; ++client) {
        const int p = b.pick(0, FlowKey{0xc6120000u + client, 40000}, 0);
        out.push_back(p);
        if (p >= 0) b.release(p);
    }
    return out;
}

config::Upstream consistent(int servers) {
    std::initializer_list<std::pair<uint32_t, uint32_t>> none = {};
    config::Upstream u = upstream(none);
    for (int i = 0; i < servers; ++i) {
        config::UpstreamServer s;
        s.address = 0xc6130000u + static_cast<uint32_t>(i);
        s.port = 8080;
        u.servers.push_back(s);
    }
    u.method = config::BalanceMethod::kHash;
    u.hash_key = "$remote_addr";
    u.hash_consistent = true;
    return u;
}

TEST(Balancer, ConsistentHashSpreadsClientsEvenly) {
    Balancer b(consistent(4));
    int seen[4] = {};
    for (int p : placement(b, 8000)) ++seen[p];
    // 160 points per server keep every share within about 20% of 2000.
    for (int n : seen) {
        EXPECT_GT(n, 1600);
        EXPECT_LT(n, 2400);
    }
}

TEST(Balancer, ConsistentHashMovesOnlyTheClientsOfALostServer) {
    Balancer all(consistent(4));
    const std::vector<int> before = placement(all, 4000);
    config::Upstream u = consistent(4);
    u.servers[2].down = true;
    Balancer without(u);
    const std::vector<int> after = placement(without, 4000);
    int moved = 0;
    for (size_t i = 0; i < before.size(); ++i) {
        if (before[i] == 2) {
            EXPECT_NE(after[i], 2);
            ++moved;
        } else {
            EXPECT_EQ(after[i], before[i]) << "client " << i << " moved though its server stayed";
        }
    }
    EXPECT_GT(moved, 0);
}

TEST(Balancer, ConsistentRingIsTheSameOnEveryCore) {
    Balancer a(consistent(5)), b(consistent(5));
    EXPECT_EQ(placement(a, 1000), placement(b, 1000));
}

TEST(Balancer, HashKeyCanUseThePort) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}, {4, 1}});
    u.method = config::BalanceMethod::kHash;
    u.hash_key = "$remote_addr:$remote_port";
    Balancer b(u);
    bool seen[4] = {};
    for (uint16_t port = 1024; port < 1100; ++port) {
        const int p = b.pick(0, FlowKey{0xc6120001u, port}, 0);
        seen[p] = true;
        b.release(p);
    }
    for (bool s : seen) EXPECT_TRUE(s);
}

TEST(Balancer, HashKeysNameTheVariablesTheyNeed) {
    std::string bad;
    EXPECT_TRUE(Balancer::key_supported("$remote_addr", bad));
    EXPECT_TRUE(Balancer::key_supported("${remote_addr}-$server_port x", bad));
    EXPECT_FALSE(Balancer::key_supported("$ssl_preread_server_name", bad));
    EXPECT_EQ(bad, "$ssl_preread_server_name");
}

TEST(Balancer, RandomFollowsTheWeights) {
    config::Upstream u = upstream({{1, 3}, {2, 1}});
    u.method = config::BalanceMethod::kRandom;
    Balancer b(u);
    int a = 0;
    const std::string got = picks(b, 8000);
    for (char c : got) a += c == 'a';
    EXPECT_GT(a, 5600);  // 6000 expected
    EXPECT_LT(a, 6400);
}

TEST(Balancer, RandomTwoTakesTheLessLoadedOfTwo) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.method = config::BalanceMethod::kRandom;
    u.random_two = u.random_two_least_conn = true;
    Balancer b(u);
    int held[2] = {};
    for (int i = 0; i < 10; ++i) ++held[b.pick(0, FlowKey{}, 0)];  // never released
    EXPECT_EQ(held[0], 5);
    EXPECT_EQ(held[1], 5);
}

TEST(Balancer, RandomSkipsUnavailableServers) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}});
    u.method = config::BalanceMethod::kRandom;
    u.servers[1].down = true;
    Balancer b(u);
    EXPECT_EQ(picks(b, 200).find('b'), std::string::npos);
}

TEST(Balancer, CoresShareConnectionCountsAndMaxConns) {
    // Two cores' Balancers over one upstream: max_conns holds for both.
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[0].max_conns = 1;
    u.servers[1].max_conns = 1;
    auto shared = std::make_unique<SharedPeer[]>(2);
    Balancer core0(u, shared.get()), core1(u, shared.get());
    const int x = core0.pick(0, FlowKey{}, 0);
    const int y = core1.pick(0, FlowKey{}, 0);
    EXPECT_NE(x, y);
    EXPECT_EQ(core0.pick(0, FlowKey{}, 0), -1);
    EXPECT_EQ(core1.pick(0, FlowKey{}, 0), -1);
    core1.release(y);
    EXPECT_EQ(core0.pick(0, FlowKey{}, 0), y);
}

TEST(Balancer, FailuresSeenOnOneCoreTakeTheServerOutOnAll) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[0].max_fails = 2;
    auto shared = std::make_unique<SharedPeer[]>(2);
    Balancer core0(u, shared.get()), core1(u, shared.get());
    core0.on_failure(0, 1'000'000);
    core1.on_failure(0, 1'000'000);
    EXPECT_EQ(picks(core0, 4, 2'000'000), "bbbb");
    EXPECT_EQ(picks(core1, 4, 2'000'000), "bbbb");
    core1.on_success(0);  // a connection that worked clears the count
    EXPECT_NE(picks(core0, 4, 2'000'000).find('a'), std::string::npos);
}

TEST(Balancer, LeastConnCountsEveryCoresConnections) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.method = config::BalanceMethod::kLeastConn;
    auto shared = std::make_unique<SharedPeer[]>(2);
    Balancer core0(u, shared.get()), core1(u, shared.get());
    const int busy = core0.pick(0, FlowKey{}, 0);  // held on core 0
    for (int i = 0; i < 3; ++i) {
        const int p = core1.pick(0, FlowKey{}, 0);
        EXPECT_NE(p, busy);
        core1.release(p);
    }
}

// Active health checks: what the checker on core 0 writes in SharedPeer
// every core's Balancer obeys.
TEST(Balancer, UnhealthyServersAreSkippedOnEveryCore) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}});
    auto shared = std::make_unique<SharedPeer[]>(3);
    Balancer core0(u, shared.get()), core1(u, shared.get());
    shared[1].health.store(Health::kUnhealthy);
    EXPECT_EQ(picks(core0, 6), "acacac");
    EXPECT_EQ(picks(core1, 6), "acacac");
    shared[1].health.store(Health::kHealthy);  // passes= passes later
    EXPECT_NE(picks(core0, 6).find('b'), std::string::npos);
}

TEST(Balancer, ServersStillCheckingTakeNoConnection) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    auto shared = std::make_unique<SharedPeer[]>(2);
    shared[0].health.store(Health::kChecking);  // "mandatory", first check not done
    Balancer b(u, shared.get());
    EXPECT_EQ(picks(b, 4), "bbbb");
}

TEST(Balancer, AnUnhealthySingleServerTakesNothing) {
    // Unlike max_fails, a health check takes even the only server out.
    config::Upstream u = upstream({{1, 1}});
    auto shared = std::make_unique<SharedPeer[]>(1);
    Balancer b(u, shared.get());
    EXPECT_EQ(picks(b, 2), "aa");
    shared[0].health.store(Health::kUnhealthy);
    EXPECT_EQ(picks(b, 2), "--");
}

TEST(Balancer, BackupServesWhenEveryPrimaryIsUnhealthy) {
    config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}});
    u.servers[2].backup = true;
    auto shared = std::make_unique<SharedPeer[]>(3);
    Balancer b(u, shared.get());
    shared[0].health.store(Health::kUnhealthy);
    EXPECT_EQ(picks(b, 3), "bbb");
    shared[1].health.store(Health::kUnhealthy);
    EXPECT_EQ(picks(b, 3), "ccc");
}

TEST(Balancer, LeastConnAndRandomSkipUnhealthyServers) {
    for (auto method : {config::BalanceMethod::kLeastConn, config::BalanceMethod::kRandom}) {
        config::Upstream u = upstream({{1, 1}, {2, 1}, {3, 1}});
        u.method = method;
        auto shared = std::make_unique<SharedPeer[]>(3);
        shared[0].health.store(Health::kUnhealthy);
        Balancer b(u, shared.get());
        const std::string p = picks(b, 60);
        EXPECT_EQ(p.find('a'), std::string::npos) << config::to_string(method);
        EXPECT_NE(p.find('b'), std::string::npos) << config::to_string(method);
        EXPECT_NE(p.find('c'), std::string::npos) << config::to_string(method);
    }
}

TEST(Balancer, ConsistentHashMovesOnlyTheClientsOfAnUnhealthyServer) {
    config::Upstream u = consistent(4);
    auto shared = std::make_unique<SharedPeer[]>(4);
    Balancer b(u, shared.get());
    const std::vector<int> before = placement(b, 4000);
    shared[2].health.store(Health::kUnhealthy);
    const std::vector<int> after = placement(b, 4000);
    int moved = 0;
    for (size_t i = 0; i < before.size(); ++i) {
        if (before[i] == 2) {
            EXPECT_NE(after[i], 2);
            ++moved;
        } else {
            EXPECT_EQ(after[i], before[i]) << "client " << i << " moved though its server stayed healthy";
        }
    }
    EXPECT_GT(moved, 0);
}

TEST(Balancer, PeerStateSaysWhyAServerIsOut) {
    config::Upstream u = upstream({{1, 1}, {2, 1}});
    u.servers[0].max_fails = 1;
    u.servers[0].fail_timeout = std::chrono::seconds(10);
    auto shared = std::make_unique<SharedPeer[]>(2);
    Balancer b(u, shared.get());
    EXPECT_EQ(peer_state(u, 0, shared[0], 0), PeerState::kUp);
    b.on_failure(0, 1'000'000);
    EXPECT_EQ(peer_state(u, 0, shared[0], 2'000'000), PeerState::kUnavailable);
    EXPECT_EQ(peer_state(u, 0, shared[0], 11'000'000), PeerState::kUp);  // fail_timeout passed
    shared[0].health.store(Health::kChecking);
    EXPECT_EQ(peer_state(u, 0, shared[0], 11'000'000), PeerState::kChecking);
    shared[0].health.store(Health::kUnhealthy);
    EXPECT_EQ(peer_state(u, 0, shared[0], 2'000'000), PeerState::kUnhealthy);  // before unavail
    u.servers[0].down = true;
    EXPECT_EQ(peer_state(u, 0, shared[0], 2'000'000), PeerState::kDown);  // before everything
    EXPECT_STREQ(to_string(PeerState::kUnavailable), "unavail");
    EXPECT_STREQ(to_string(PeerState::kUnhealthy), "unhealthy");
}

}  // namespace
}  // namespace terminus::dataplane::proxy
