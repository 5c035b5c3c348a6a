// Port set-up against DPDK's net_null, the one virtual device here whose
// driver takes and reports an RSS key and redirection table (it hashes no
// packet: this checks what we program and read back, not where packets
// land). net_tap, which reports RSS but can neither take a key nor has a
// table, keeps software steering.
#include "dataplane/runtime.h"

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <cstring>
#include <string>
#include <vector>

namespace terminus::dataplane {
namespace {

rte_mempool* g_pool = nullptr;
std::string g_tap;  // net_tap device name, its interface named after our pid

uint16_t port_of(const char* name) {
    uint16_t id = 0;
    EXPECT_EQ(rte_eth_dev_get_port_by_name(name, &id), 0) << name;
    return id;
}

config::PortConfig port_config(const char* device) {
    config::PortConfig pc;
    pc.device = device;
    pc.address.addr = 198u << 24 | 19u << 16 | 77u << 8 | 2;
    pc.address.len = 24;
    return pc;
}

TEST(ProgramRss, NullDeviceTakesOurKeyAndRoundRobinTable) {
    for (const unsigned n : {2u, 4u}) {
        const uint16_t id = port_of("net_null0");
        PortInfo info;
        FlowSteering s;
        ASSERT_EQ(setup_port("unit", port_config("net_null0"), n, g_pool, info, s), 0);
        ASSERT_TRUE(s.toeplitz()) << s.describe();
        EXPECT_EQ(s.n_queues(), n);
        rte_eth_dev_info dev{};
        ASSERT_EQ(rte_eth_dev_info_get(id, &dev), 0);
        ASSERT_EQ(s.reta_size(), dev.reta_size);
        for (unsigned i = 0; i < s.reta_size(); ++i) ASSERT_EQ(s.reta(i), i % n) << i;
        // The key read back is ours: the verification suite's first vector.
        const tcp::FourTuple t{161u << 24 | 142u << 16 | 100u << 8 | 80, 66u << 24 | 9u << 16 | 149u << 8 | 187,
                               1766, 2794};
        EXPECT_EQ(s.hash(t), 0x51ccc178u);
        // What the device reports, independently of us.
        uint8_t key[64] = {};
        rte_eth_rss_conf conf{};
        conf.rss_key = key;
        conf.rss_key_len = sizeof key;
        ASSERT_EQ(rte_eth_dev_rss_hash_conf_get(id, &conf), 0);
        EXPECT_EQ(0, memcmp(key, FlowSteering::kDefaultKey, sizeof FlowSteering::kDefaultKey));
        EXPECT_NE(conf.rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP, 0u);
        rte_eth_dev_stop(id);
    }
}

TEST(ProgramRss, OneQueueKeepsSoftwareSteering) {
    PortInfo info;
    FlowSteering s;
    ASSERT_EQ(setup_port("unit", port_config("net_null0"), 1, g_pool, info, s), 0);
    EXPECT_FALSE(s.toeplitz());
    rte_eth_dev_stop(port_of("net_null0"));
}

TEST(ProgramRss, TapKeepsSoftwareSteeringAndSaysWhy) {
    // net_tap offers RSS offloads but takes no key and has no table.
    const uint16_t id = port_of(g_tap.c_str());
    PortInfo info;
    FlowSteering s;
    ASSERT_EQ(setup_port("unit", port_config(g_tap.c_str()), 2, g_pool, info, s), 0);
    EXPECT_FALSE(s.toeplitz());
    FlowSteering again;
    std::string why;
    EXPECT_FALSE(program_rss(id, 2, RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP, again, why));
    EXPECT_NE(why.find("the key can be neither set"), std::string::npos) << why;
    EXPECT_FALSE(again.toeplitz());
    rte_eth_dev_stop(id);
}

}  // namespace
}  // namespace terminus::dataplane

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    std::vector<std::string> args = {"unit", "--no-huge", "-m", "128", "--no-pci", "--no-telemetry", "-l", "0",
                                     "--file-prefix=unit-rss-" + std::to_string(getpid()), "--log-level=*:error",
                                     "--vdev=net_null0"};
    terminus::dataplane::g_tap = "net_tap" + std::to_string(getpid() % 100000);
    args.push_back("--vdev=" + terminus::dataplane::g_tap + ",iface=tmrss" + std::to_string(getpid() % 100000));
    std::vector<char*> eal_argv;
    for (auto& a : args) eal_argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
        std::fprintf(stderr, "the EAL did not start (are you root?)\n");
        return 1;
    }
    terminus::dataplane::g_pool = rte_pktmbuf_pool_create("unit_mbufs", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    if (!terminus::dataplane::g_pool) return 1;
    const int rc = RUN_ALL_TESTS();
    uint16_t id = 0;
    RTE_ETH_FOREACH_DEV(id) rte_eth_dev_close(id);
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir, ec);  // the EAL leaves its run directory behind
    return rc;
}
