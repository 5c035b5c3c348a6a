// Flow steering: the Toeplitz hash against Microsoft's RSS verification
// suite, owners from the redirection table, local ports that hash home.
#include "dataplane/flow.h"

#include <gtest/gtest.h>
#include <rte_thash.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace terminus::dataplane {
namespace {

constexpr uint32_t ip(unsigned a, unsigned b, unsigned c, unsigned d) { return a << 24 | b << 16 | c << 8 | d; }

std::vector<uint16_t> round_robin(unsigned size, unsigned n_queues) {
    std::vector<uint16_t> t(size);
    for (unsigned i = 0; i < size; ++i) t[i] = static_cast<uint16_t>(i % n_queues);
    return t;
}

FlowSteering toeplitz(const std::vector<uint16_t>& reta, unsigned n_queues,
                      const uint8_t* key = FlowSteering::kDefaultKey, size_t key_len = FlowSteering::kKeyBytes) {
    FlowSteering s;
    std::string why;
    EXPECT_TRUE(s.set_toeplitz(key, key_len, reta.data(), static_cast<unsigned>(reta.size()), n_queues, &why)) << why;
    return s;
}

// "Verifying the RSS Hash Calculation" (Microsoft, NDIS RSS documentation):
// the default key over IPv4 with TCP, source -> destination.
struct Vector {
    uint32_t src_ip;
    uint16_t src_port;
    uint32_t dst_ip;
    uint16_t dst_port;
    uint32_t hash;
};
constexpr Vector kMicrosoftTcp4[] = {
    {ip(66, 9, 149, 187), 2794, ip(161, 142, 100, 80), 1766, 0x51ccc178},
    {ip(199, 92, 111, 2), 14230, ip(65, 69, 140, 83), 4739, 0xc626b0ea},
    {ip(24, 19, 198, 95), 12898, ip(12, 22, 207, 184), 38024, 0x5c2b394a},
    {ip(38, 27, 205, 30), 48228, ip(209, 142, 163, 6), 2217, 0xafc7327f},
    {ip(153, 39, 163, 191), 44251, ip(202, 188, 127, 2), 1303, 0x10e828a2},
};

// An incoming packet's flow as our side names it: the source is remote.
tcp::FourTuple incoming(const Vector& v) { return tcp::FourTuple{v.dst_ip, v.src_ip, v.dst_port, v.src_port}; }

TEST(FlowSteering, ToeplitzGivesTheMicrosoftVerificationSuiteHashes) {
    const FlowSteering s = toeplitz(round_robin(128, 2), 2);
    for (const Vector& v : kMicrosoftTcp4) {
        EXPECT_EQ(s.hash(incoming(v)), v.hash) << std::hex << v.src_ip << ":" << std::dec << v.src_port;
        EXPECT_EQ(s.softrss(incoming(v)), v.hash) << std::hex << v.src_ip << ":" << std::dec << v.src_port;
    }
}

TEST(FlowSteering, TabulatedHashEqualsRteSoftrssOverEitherFormOfTheKey) {
    // The hot path's byte tables, rte_softrss_be over the converted key and
    // rte_softrss over the original one agree, for any key.
    std::mt19937 rng(7);
    for (int k = 0; k < 4; ++k) {
        uint8_t key[40];
        for (uint8_t& b : key) b = static_cast<uint8_t>(k == 0 ? 0 : rng());
        if (k == 0) std::copy(std::begin(FlowSteering::kDefaultKey), std::end(FlowSteering::kDefaultKey), key);
        const FlowSteering s = toeplitz(round_robin(128, 2), 2, key, sizeof key);
        for (int i = 0; i < 1000; ++i) {
            const tcp::FourTuple t{static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                                   static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng())};
            uint32_t in[RTE_THASH_V4_L4_LEN] = {t.remote_ip, t.local_ip,
                                                static_cast<uint32_t>(t.remote_port) << 16 | t.local_port};
            const uint32_t generic = rte_softrss(in, RTE_THASH_V4_L4_LEN, key);
            ASSERT_EQ(s.softrss(t), generic);
            ASSERT_EQ(s.hash(t), generic);
        }
    }
}

TEST(FlowSteering, AKeyLongerThanFortyBytesHashesByItsFirstBytes) {
    // i40e and ice hold 52-byte keys; a TCP/IPv4 hash reads 16 bytes.
    std::array<uint8_t, 52> key{};
    for (size_t i = 0; i < key.size(); ++i) key[i] = FlowSteering::kDefaultKey[i % 40];
    const FlowSteering s = toeplitz(round_robin(512, 4), 4, key.data(), key.size());
    EXPECT_EQ(s.hash(incoming(kMicrosoftTcp4[0])), 0x51ccc178u);
}

TEST(FlowSteering, OwnerIsTheTableEntryOfTheHash) {
    // A table that is not round robin: the owner must come from it.
    std::mt19937 rng(11);
    for (const unsigned n : {2u, 3u, 4u, 8u}) {
        for (const unsigned size : {64u, 128u, 512u, 2048u}) {
            std::vector<uint16_t> reta = round_robin(size, n);
            std::shuffle(reta.begin(), reta.end(), rng);
            const FlowSteering s = toeplitz(reta, n);
            ASSERT_EQ(s.reta_size(), size);
            for (int i = 0; i < 2000; ++i) {
                const tcp::FourTuple t{static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                                       static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng())};
                ASSERT_EQ(s.owner(t, n), reta[s.hash(t) % size]) << "n " << n << " size " << size;
            }
        }
    }
    const FlowSteering s = toeplitz(round_robin(128, 2), 2);
    for (const Vector& v : kMicrosoftTcp4) EXPECT_EQ(s.owner(incoming(v), 2), (v.hash % 128) % 2);
}

TEST(FlowSteering, PickLocalPortReturnsPortsTheCallingCoreOwns) {
    struct Range {
        uint16_t lo, hi;
    };
    // The proxy's (Linux's ephemeral range), the health checker's, the
    // load generator's.
    const Range ranges[] = {{32768, 60999}, {61000, 65535}, {1024, 65535}};
    const uint32_t local = ip(198, 18, 0, 2);
    const struct {
        uint32_t ip;
        uint16_t port;
    } remotes[] = {{ip(198, 18, 0, 1), 8080}, {ip(198, 18, 0, 1), 8081}, {ip(10, 1, 2, 3), 443}, {ip(255, 255, 255, 254), 1}};
    for (const unsigned n : {2u, 4u, 8u}) {
        const FlowSteering s = toeplitz(round_robin(128, n), n);
        for (const Range& r : ranges) {
            for (const auto& rem : remotes) {
                for (unsigned core = 0; core < n; ++core) {
                    uint16_t next = r.lo;
                    std::set<uint16_t> seen;
                    for (int k = 0; k < 200; ++k) {
                        const uint16_t p = s.pick_local_port(next, r.lo, r.hi, local, rem.ip, rem.port, core, n);
                        ASSERT_NE(p, 0) << "n " << n << " core " << core;
                        ASSERT_GE(p, r.lo);
                        ASSERT_LE(p, r.hi);
                        // The reply to this connect: remote -> local:p.
                        const tcp::FourTuple t{local, rem.ip, p, rem.port};
                        ASSERT_EQ(s.owner(t, n), core);
                        ASSERT_EQ(s.reta(s.hash(t) % s.reta_size()), core);
                        seen.insert(p);
                    }
                    EXPECT_EQ(seen.size(), 200u);
                }
            }
        }
    }
}

TEST(FlowSteering, SoftwareSteeringIsTheMixingHash) {
    const FlowSteering s;
    EXPECT_FALSE(s.toeplitz());
    std::mt19937 rng(3);
    for (const unsigned n : {1u, 2u, 4u, 8u}) {
        for (int i = 0; i < 1000; ++i) {
            const tcp::FourTuple t{static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                                   static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng())};
            ASSERT_EQ(s.owner(t, n), soft_flow_owner(t, n));
        }
        for (unsigned core = 0; core < n; ++core) {
            uint16_t next = 32768;
            for (int k = 0; k < 50; ++k) {
                const uint16_t p = s.pick_local_port(next, 32768, 60999, ip(198, 18, 0, 2), ip(198, 18, 0, 1), 8080,
                                                     core, n);
                ASSERT_NE(p, 0);
                ASSERT_EQ(soft_flow_owner(tcp::FourTuple{ip(198, 18, 0, 2), ip(198, 18, 0, 1), p, 8080}, n), core);
            }
        }
    }
}

TEST(FlowSteering, ToeplitzAppliesOnlyToTheCoresItWasSetUpFor) {
    const FlowSteering s = toeplitz(round_robin(128, 2), 2);
    const tcp::FourTuple t = incoming(kMicrosoftTcp4[1]);
    EXPECT_EQ(s.owner(t, 1), 0u);
    EXPECT_EQ(s.owner(t, 4), soft_flow_owner(t, 4));
}

TEST(FlowSteering, RefusesWhatCannotSteer) {
    FlowSteering s;
    std::string why;
    const std::vector<uint16_t> rr = round_robin(128, 2);
    EXPECT_FALSE(s.set_toeplitz(FlowSteering::kDefaultKey, 12, rr.data(), 128, 2, &why));
    EXPECT_NE(why.find("12 bytes"), std::string::npos) << why;
    EXPECT_FALSE(s.set_toeplitz(FlowSteering::kDefaultKey, 40, rr.data(), 96, 2, &why));
    EXPECT_NE(why.find("power of two"), std::string::npos) << why;
    const std::vector<uint16_t> past = round_robin(128, 3);
    EXPECT_FALSE(s.set_toeplitz(FlowSteering::kDefaultKey, 40, past.data(), 128, 2, &why));
    EXPECT_NE(why.find("past the 2 queues"), std::string::npos) << why;
    const std::vector<uint16_t> missing(128, 0);
    EXPECT_FALSE(s.set_toeplitz(FlowSteering::kDefaultKey, 40, missing.data(), 128, 2, &why));
    EXPECT_NE(why.find("queue 1"), std::string::npos) << why;
    // A key of zeros hashes every flow to bucket 0: ports cannot choose.
    const uint8_t zeros[40] = {};
    EXPECT_FALSE(s.set_toeplitz(zeros, 40, rr.data(), 128, 2, &why));
    EXPECT_NE(why.find("no local port"), std::string::npos) << why;
    EXPECT_FALSE(s.toeplitz());  // still software after each refusal
}

TEST(FlowSteering, SymmetricKeyAlsoSteersLocalPorts) {
    // The repeated 0x6d5a key, should a device hold it.
    uint8_t key[40];
    for (int i = 0; i < 40; i += 2) key[i] = 0x6d, key[i + 1] = 0x5a;
    const FlowSteering s = toeplitz(round_robin(128, 4), 4, key, sizeof key);
    for (unsigned core = 0; core < 4; ++core) {
        uint16_t next = 61000;
        const uint16_t p = s.pick_local_port(next, 61000, 65535, ip(198, 18, 0, 2), ip(198, 18, 0, 1), 443, core, 4);
        ASSERT_NE(p, 0);
        EXPECT_EQ(s.owner(tcp::FourTuple{ip(198, 18, 0, 2), ip(198, 18, 0, 1), p, 443}, 4), core);
    }
}

TEST(FlowSteering, TheProcessSteeringIsWhatFlowOwnerAndPickLocalPortUse) {
    const tcp::FourTuple t = incoming(kMicrosoftTcp4[2]);
    EXPECT_FALSE(FlowSteering::process().toeplitz());
    EXPECT_EQ(flow_owner(t, 4), soft_flow_owner(t, 4));
    std::vector<uint16_t> reta = round_robin(128, 4);
    std::reverse(reta.begin(), reta.end());
    const FlowSteering s = toeplitz(reta, 4);
    FlowSteering::set_process(s);
    EXPECT_EQ(flow_owner(t, 4), reta[0x5c2b394a % 128]);
    uint16_t next = 32768;
    const uint16_t p = pick_local_port(next, 32768, 60999, t.local_ip, t.remote_ip, t.remote_port, 3, 4);
    EXPECT_EQ(s.owner(tcp::FourTuple{t.local_ip, t.remote_ip, p, t.remote_port}, 4), 3u);
    FlowSteering::set_process(FlowSteering{});
    EXPECT_EQ(flow_owner(t, 4), soft_flow_owner(t, 4));
}

TEST(FlowSteering, DescribeNamesKeyAndTable) {
    EXPECT_EQ(FlowSteering{}.describe(), "software hash");
    EXPECT_EQ(toeplitz(round_robin(128, 2), 2).describe(),
              "Toeplitz, key 6d5a56da255b0ec2..., 128-entry redirection table over 2 queues");
    EXPECT_TRUE(toeplitz(round_robin(128, 2), 2).same_as(toeplitz(round_robin(128, 2), 2)));
    EXPECT_FALSE(toeplitz(round_robin(128, 2), 2).same_as(toeplitz(round_robin(256, 2), 2)));
    EXPECT_FALSE(toeplitz(round_robin(128, 2), 2).same_as(FlowSteering{}));
}

}  // namespace
}  // namespace terminus::dataplane
