// The EAL command line terminusd derives from dataplane{}.
#include <gtest/gtest.h>

#include <algorithm>

#include "dataplane/eal.h"

namespace terminus::dataplane {
namespace {

bool has(const EalPlan& p, const std::string& a) {
    return std::find(p.args.begin(), p.args.end(), a) != p.args.end();
}

config::DataplaneConfig tap_config() {
    config::DataplaneConfig dp;
    config::PortConfig port;
    port.device = "net_tap0";
    port.devargs = {{"iface", "tm0"}};
    dp.ports.push_back(port);
    dp.lcores = {0, 1};
    return dp;
}

TEST(EalPlan, NoHugepagesMeansAnonymousMemory) {
    EalPlan p = plan_eal(tap_config(), "t", 0);
    EXPECT_TRUE(p.no_huge);
    EXPECT_TRUE(has(p, "--no-huge"));
    EXPECT_TRUE(has(p, "-m"));
}

TEST(EalPlan, EnoughHugepagesAreUsed) {
    EalPlan p = plan_eal(tap_config(), "t", 4096);
    EXPECT_FALSE(p.no_huge);
    EXPECT_FALSE(has(p, "--no-huge"));
}

TEST(EalPlan, VirtualDevicesCarryTheirArgumentsAndSkipPci) {
    EalPlan p = plan_eal(tap_config(), "t", 0);
    EXPECT_TRUE(has(p, "--vdev=net_tap0,iface=tm0"));
    EXPECT_TRUE(has(p, "--no-pci"));
}

TEST(EalPlan, PciPortsAreAllowListed) {
    config::DataplaneConfig dp;
    config::PortConfig port;
    port.device = "0000:03:00.0";
    port.is_pci = true;
    dp.ports.push_back(port);
    EalPlan p = plan_eal(dp, "t", 0);
    auto it = std::find(p.args.begin(), p.args.end(), "-a");
    ASSERT_NE(it, p.args.end());
    EXPECT_EQ(*(it + 1), "0000:03:00.0");
    EXPECT_FALSE(has(p, "--no-pci"));
}

TEST(EalPlan, LcoresAndFilePrefixComeFromConfigAndInstance) {
    EalPlan p = plan_eal(tap_config(), "lab7", 0);
    auto it = std::find(p.args.begin(), p.args.end(), "-l");
    ASSERT_NE(it, p.args.end());
    EXPECT_EQ(*(it + 1), "0,1");
    EXPECT_TRUE(has(p, "--file-prefix=terminus-lab7"));
}

TEST(EalPlan, OperatorArgumentsComeLast) {
    config::DataplaneConfig dp = tap_config();
    dp.eal_args = {"--log-level=lib.eal:debug"};
    EalPlan p = plan_eal(dp, "t", 0);
    EXPECT_EQ(p.args.back(), "--log-level=lib.eal:debug");
}

TEST(EalPlan, MemoryGrowsWithMbufsAndConnections) {
    config::DataplaneConfig small = tap_config();
    small.mbufs = 4095;
    small.max_connections = 1024;
    config::DataplaneConfig big = tap_config();
    big.mbufs = 262143;
    big.max_connections = 1u << 20;
    EXPECT_LT(plan_eal(small, "t", 0).memory_mb, plan_eal(big, "t", 0).memory_mb);
}

}  // namespace
}  // namespace terminus::dataplane
