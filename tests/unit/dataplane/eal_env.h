// A DPDK EAL for unit tests that need mbufs: anonymous memory, no devices,
// its own file prefix so that tests run side by side. Register it once per
// test executable with ::testing::AddGlobalTestEnvironment.
#pragma once

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace terminus::testing {

class EalEnvironment : public ::testing::Environment {
  public:
    void SetUp() override {
        std::vector<std::string> args = {"unit", "--no-huge", "-m", "128", "--no-pci",
                                         "--no-telemetry", "-l", "0",
                                         "--file-prefix=unit-" + std::to_string(getpid()),
                                         "--log-level=*:error"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0)
            << "the EAL did not start (are you root?)";
        pool_ = rte_pktmbuf_pool_create("unit_mbufs", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        ASSERT_NE(pool_, nullptr);
    }
    void TearDown() override {
        const std::string runtime_dir = rte_eal_get_runtime_dir();
        rte_eal_cleanup();
        std::error_code ec;
        std::filesystem::remove_all(runtime_dir, ec);  // the EAL leaves its run directory behind
    }

    static rte_mempool* pool() { return pool_; }

  private:
    static inline rte_mempool* pool_ = nullptr;
};

}  // namespace terminus::testing
