// EAL arguments from the dataplane{} block. Private to dataplane/.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace terminus::dataplane {

struct EalPlan {
    std::vector<std::string> args;  // argv for rte_eal_init, argv[0] included
    bool no_huge = false;           // no free hugepages: anonymous memory
    unsigned memory_mb = 0;
};

// Hugepages the kernel can give now (HugePages_Free in /proc/meminfo).
unsigned free_hugepages();

// A pure function of the configuration and the machine's hugepages, so that
// it can be tested without starting DPDK.
EalPlan plan_eal(const config::DataplaneConfig& dp, const std::string& instance,
                 unsigned hugepages_free);

}  // namespace terminus::dataplane
