// Start-up shared by the programs on the dataplane: EAL, pool, ports,
// per-core contexts and the rings between them.
#include "dataplane/runtime.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdarg>
#include <cstdio>

#include "dataplane/eal.h"

namespace terminus::dataplane {

void log_as(const char* program, const char* fmt, ...) {
    std::fprintf(stderr, "%s: ", program);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

namespace {

std::string mac_string(const rte_ether_addr& a) {
    char buf[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(buf, sizeof buf, &a);
    return buf;
}

}  // namespace

int setup_port(const char* program, const config::PortConfig& pc, unsigned n_queues, rte_mempool* pool,
               PortInfo& out) {
#define log(...) log_as(program, __VA_ARGS__)
    uint16_t port_id = 0;
    if (rte_eth_dev_get_port_by_name(pc.device.c_str(), &port_id) != 0) {
        log("port %s: DPDK has no such device (is its driver loaded?)", pc.device.c_str());
        return -1;
    }
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
        log("port %s: cannot read device info: %s", pc.device.c_str(), rte_strerror(-rc));
        return -1;
    }
    if (info.max_rx_queues < n_queues || info.max_tx_queues < n_queues) {
        log("port %s: %u lcores need %u RX/TX queues, the device has %u/%u", pc.device.c_str(),
            n_queues, n_queues, info.max_rx_queues, info.max_tx_queues);
        return -1;
    }
    rte_eth_conf conf{};
    const uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP);
    const bool use_rss = n_queues > 1 && rss != 0;
    if (use_rss) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss;
    }
    const uint64_t tx_ck = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    const bool tx_ip_cksum = (info.tx_offload_capa & tx_ck) == tx_ck;
    if (tx_ip_cksum) conf.txmode.offloads |= tx_ck;
    const uint64_t rx_ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    if ((info.rx_offload_capa & rx_ck) == rx_ck) conf.rxmode.offloads |= rx_ck;

    if (int rc = rte_eth_dev_configure(port_id, static_cast<uint16_t>(n_queues),
                                       static_cast<uint16_t>(n_queues), &conf);
        rc != 0) {
        log("port %s: configure failed: %s", pc.device.c_str(), rte_strerror(-rc));
        return -1;
    }
    uint16_t rxd = 1024, txd = 1024;
    rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rxd, &txd);
    const int socket = rte_eth_dev_socket_id(port_id);
    for (unsigned q = 0; q < n_queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(port_id, static_cast<uint16_t>(q), rxd,
                                            static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                            nullptr, pool);
            rc != 0) {
            log("port %s: RX queue %u: %s", pc.device.c_str(), q, rte_strerror(-rc));
            return -1;
        }
        if (int rc = rte_eth_tx_queue_setup(port_id, static_cast<uint16_t>(q), txd,
                                            static_cast<unsigned>(socket < 0 ? SOCKET_ID_ANY : socket),
                                            nullptr);
            rc != 0) {
            log("port %s: TX queue %u: %s", pc.device.c_str(), q, rte_strerror(-rc));
            return -1;
        }
    }
    if (pc.mtu != 1500) {
        if (int rc = rte_eth_dev_set_mtu(port_id, pc.mtu); rc != 0) {
            log("port %s: cannot set MTU %u: %s", pc.device.c_str(), pc.mtu, rte_strerror(-rc));
            return -1;
        }
    }
    if (int rc = rte_eth_dev_start(port_id); rc != 0) {
        log("port %s: start failed: %s", pc.device.c_str(), rte_strerror(-rc));
        return -1;
    }
    rte_eth_promiscuous_disable(port_id);

    out.port_id = port_id;
    rte_eth_macaddr_get(port_id, &out.mac);
    out.ip = pc.address.addr;
    out.prefix_len = pc.address.len;
    out.gateway = pc.gateway.value_or(0);
    out.mtu = pc.mtu;
    out.tx_ip_cksum = tx_ip_cksum;
    log("port %s: DPDK port %u (%s), MAC %s, %s/%u%s%s, MTU %u, %u RX/TX queues of %u/%u, "
        "RSS %s, IPv4 checksum offload rx %s tx %s",
        pc.device.c_str(), port_id, info.driver_name, mac_string(out.mac).c_str(),
        config::ipv4_to_string(out.ip).c_str(), out.prefix_len, out.gateway ? " gateway " : "",
        out.gateway ? config::ipv4_to_string(out.gateway).c_str() : "", out.mtu, n_queues, rxd,
        txd, use_rss ? "on" : "off (cores hand flows to their owner)",
        (conf.rxmode.offloads & rx_ck) ? "on" : "off", tx_ip_cksum ? "on" : "off");
    return 0;
}
#undef log

Runtime::~Runtime() {
    outputs.clear();
    for (const auto& p : ports) {
        rte_eth_dev_stop(p.port_id);
        rte_eth_dev_close(p.port_id);
    }
    if (eal_up_) rte_eal_cleanup();
}

#define log(...) log_as(program_, __VA_ARGS__)
int Runtime::start(const config::DataplaneConfig& dp, const std::string& instance) {
    EalPlan plan = plan_eal(dp, instance, free_hugepages());
    if (plan.no_huge) {
        log("no free hugepages: running on anonymous memory (--no-huge, %u MB)", plan.memory_mb);
    }
    std::string cmdline;
    for (const auto& a : plan.args) cmdline += (cmdline.empty() ? "" : " ") + a;
    log("EAL: %s", cmdline.c_str());
    std::vector<char*> argv;
    for (auto& a : plan.args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) < 0) {
        log("EAL initialisation failed: %s", rte_strerror(rte_errno));
        return 1;
    }

    eal_up_ = true;
    n_cores = rte_lcore_count();
    if (n_cores > kMaxCores || dp.ports.size() > kMaxPorts) {
        log("at most %u lcores and %u ports", kMaxCores, kMaxPorts);
        return 1;
    }
    pool = rte_pktmbuf_pool_create("terminus_mbufs", dp.mbufs, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE,
                                                static_cast<int>(rte_socket_id()));
    if (!pool) {
        log("cannot create a pool of %u mbufs: %s", dp.mbufs, rte_strerror(rte_errno));
        return 1;
    }

    ports.resize(dp.ports.size());
    for (size_t i = 0; i < dp.ports.size(); ++i) {
        if (setup_port(program_, dp.ports[i], n_cores, pool, ports[i]) != 0) {
            ports.resize(i);  // the ones started are stopped by the destructor
            return 1;
        }
    }

    // One context per lcore, in lcore order; rings for every ordered pair.
    lcores.reset(new Lcore[n_cores]);
    unsigned idx = 0;
    unsigned lcore_id;
    RTE_LCORE_FOREACH(lcore_id) {
        Lcore& lc = lcores[idx];
        lc.index = idx;
        lc.lcore_id = lcore_id;
        lc.queue = static_cast<uint16_t>(idx);
        lc.n_cores = n_cores;
        lc.n_ports = static_cast<unsigned>(ports.size());
        lc.ports = ports.data();
        lc.pool = pool;
        lc.tsc_hz = rte_get_tsc_hz();
        lc.arp.set_timing({300 * lc.tsc_hz, lc.tsc_hz});
        ++idx;
    }
    for (unsigned i = 0; i < n_cores; ++i) {
        for (unsigned j = 0; j < n_cores; ++j) {
            if (i == j) continue;
            const std::string name = "tm_ring_" + std::to_string(i) + "_" + std::to_string(j);
            rte_ring* r = rte_ring_create(name.c_str(), 1024, static_cast<int>(rte_socket_id()),
                                          RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (!r) {
                log("cannot create ring %s: %s", name.c_str(), rte_strerror(rte_errno));
                return 1;
            }
            lcores[i].to[j] = r;
            lcores[j].from[i] = r;
        }
    }
    log("%u lcores (main %u), %u mbufs, %zu port%s; flows are owned by the core their hash "
        "selects, others hand them over through %u rings",
        n_cores, rte_get_main_lcore(), dp.mbufs, ports.size(), ports.size() == 1 ? "" : "s",
        n_cores * (n_cores - 1));

    for (unsigned i = 0; i < n_cores; ++i) outputs.push_back(std::make_unique<LcoreOutput>(lcores[i]));
    return 0;
}
#undef log

void Runtime::run(int (*fn)(void*)) {
    for (unsigned i = 1; i < n_cores; ++i) rte_eal_remote_launch(fn, &lcores[i], lcores[i].lcore_id);
    fn(&lcores[0]);
    rte_eal_mp_wait_lcore();
}

}  // namespace terminus::dataplane
