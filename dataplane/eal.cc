// EAL command line from dataplane{}: lcores, devices, memory mode, file
// prefix, and the operator's eal_args last so that they win.
#include "dataplane/eal.h"

#include <fstream>
#include <sstream>

namespace terminus::dataplane {

unsigned free_hugepages() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    unsigned long value = 0;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        ls >> key >> value;
        if (key == "HugePages_Free:") return static_cast<unsigned>(value);
    }
    return 0;
}

EalPlan plan_eal(const config::DataplaneConfig& dp, const std::string& instance,
                 unsigned hugepages_free) {
    EalPlan plan;
    auto& a = plan.args;
    a.push_back("terminusd");

    std::string lcores;
    for (unsigned c : dp.lcores) {
        if (!lcores.empty()) lcores += ',';
        lcores += std::to_string(c);
    }
    a.push_back("-l");
    a.push_back(lcores);
    a.push_back("--file-prefix=terminus-" + instance);

    // Packet buffers (2 KiB data + headroom + mbuf header), the mempool
    // caches, rings and the connection tables; 64 MiB of slack for the EAL
    // and the drivers.
    const unsigned long mbuf_bytes = static_cast<unsigned long>(dp.mbufs) * 2560UL;
    const unsigned long conn_bytes = static_cast<unsigned long>(dp.max_connections) * 4096UL;
    plan.memory_mb = static_cast<unsigned>((mbuf_bytes + conn_bytes) / (1024 * 1024)) + 128;

    // 2 MiB pages: enough of them, or none at all.
    if (hugepages_free * 2 < plan.memory_mb) {
        plan.no_huge = true;
        a.push_back("--no-huge");
        a.push_back("-m");
        a.push_back(std::to_string(plan.memory_mb));
    }

    bool any_pci = false;
    for (const auto& p : dp.ports) {
        if (p.is_pci) {
            any_pci = true;
            std::string allow = p.device;
            for (const auto& [k, v] : p.devargs) allow += "," + k + "=" + v;
            a.push_back("-a");
            a.push_back(allow);
        } else {
            a.push_back("--vdev=" + p.devargs_string());
        }
    }
    if (!any_pci) a.push_back("--no-pci");
    // Telemetry and multi-process are not used; keep /var/run quiet.
    a.push_back("--no-telemetry");
    for (const auto& e : dp.eal_args) a.push_back(e);
    return plan;
}

}  // namespace terminus::dataplane
