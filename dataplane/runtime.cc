// Start-up shared by the programs on the dataplane: EAL, pool, ports,
// per-core contexts and the message rings between them.
#include "dataplane/runtime.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "dataplane/eal.h"
#include "mgmt/error_log.h"

namespace terminus::dataplane {

void log_as(const char* program, const char* fmt, ...) {
    // The start-up and exit report: through the error log (mgmt/error_log.h).
    va_list ap;
    va_start(ap, fmt);
    errlog::report(program, fmt, ap);
    va_end(ap);
}

namespace {

std::string mac_string(const rte_ether_addr& a) {
    char buf[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(buf, sizeof buf, &a);
    return buf;
}

std::string errno_string(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

}  // namespace

bool program_rss(uint16_t port_id, unsigned n_queues, uint64_t rss_hf, FlowSteering& out, std::string& why) {
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
        why = "cannot read device info: " + errno_string(rc);
        return false;
    }
    // The key as long as the device's (i40e and ice take 52 bytes): ours,
    // repeated. A TCP/IPv4 hash reads only its first 16 bytes.
    constexpr unsigned kKeyBuf = 256;
    const unsigned key_len = info.hash_key_size ? std::min<unsigned>(info.hash_key_size, kKeyBuf)
                                                : FlowSteering::kKeyBytes;
    std::array<uint8_t, kKeyBuf> key{};
    for (unsigned i = 0; i < key_len; ++i) key[i] = FlowSteering::kDefaultKey[i % sizeof FlowSteering::kDefaultKey];
    rte_eth_rss_conf set{};
    set.rss_key = key.data();
    set.rss_key_len = static_cast<uint8_t>(key_len);
    set.rss_hf = rss_hf;
    const int set_key = rte_eth_dev_rss_hash_update(port_id, &set);

    std::array<uint8_t, kKeyBuf> got_key{};
    rte_eth_rss_conf got{};
    got.rss_key = got_key.data();
    got.rss_key_len = static_cast<uint8_t>(key_len);
    const int get_key = rte_eth_dev_rss_hash_conf_get(port_id, &got);
    const uint8_t* used_key = nullptr;
    uint64_t used_hf = 0;
    if (get_key == 0) {
        used_key = got_key.data();
        used_hf = got.rss_hf;
    } else if (set_key == 0) {
        used_key = key.data();  // it took ours and cannot say so
        used_hf = rss_hf;
    } else {
        why = "the key can be neither set (" + errno_string(set_key) + ") nor read (" + errno_string(get_key) + ")";
        return false;
    }
    // Without the ports in the hash, a local port could not choose a core.
    if ((used_hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) == 0) {
        why = "the device does not hash TCP/IPv4 ports";
        return false;
    }

    const unsigned reta_size = info.reta_size;
    if (reta_size == 0 || reta_size > FlowSteering::kMaxReta) {
        why = "no redirection table we can use (" + std::to_string(reta_size) + " entries)";
        return false;
    }
    std::array<rte_eth_rss_reta_entry64, FlowSteering::kMaxReta / RTE_ETH_RETA_GROUP_SIZE> conf{};
    std::array<uint16_t, FlowSteering::kMaxReta> table{};
    for (unsigned i = 0; i < reta_size; ++i) {
        table[i] = static_cast<uint16_t>(i % n_queues);
        conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
        conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = table[i];
    }
    const int set_reta = rte_eth_dev_rss_reta_update(port_id, conf.data(), static_cast<uint16_t>(reta_size));
    for (auto& c : conf) std::fill(std::begin(c.reta), std::end(c.reta), uint16_t{0});
    const int get_reta = rte_eth_dev_rss_reta_query(port_id, conf.data(), static_cast<uint16_t>(reta_size));
    if (get_reta == 0) {
        for (unsigned i = 0; i < reta_size; ++i) {
            table[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
        }
    } else if (set_reta != 0) {
        why = "the redirection table can be neither set (" + errno_string(set_reta) + ") nor read (" +
              errno_string(get_reta) + ")";
        return false;
    }
    return out.set_toeplitz(used_key, key_len, table.data(), reta_size, n_queues, &why);
}

int setup_port(const char* program, const config::PortConfig& pc, unsigned n_queues, rte_mempool* pool,
               PortInfo& out, FlowSteering& steering) {
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

    // How flows reach their core. Toeplitz steering only where the device
    // takes (or tells) a key and a redirection table and hashes TCP ports:
    // real NICs. None of the virtual devices the lab has does: net_tap takes
    // no key ("RSS key cannot be updated"), has no table (reta_size 0), and
    // its rte_flow RSS needs tc's multiq, flower, skbedit and act_bpf, which
    // the lab's kernel lacks; its queues are picked by the kernel's tun
    // (automq), not by Toeplitz. net_af_packet (kernel fanout), net_memif
    // (the peer picks the queue) and net_ring have no RSS at all; net_null
    // stores a key and table but hashes nothing. They keep software
    // steering and the hand-off between cores.
    steering = FlowSteering{};
    std::string steer_why;
    if (use_rss && !program_rss(port_id, n_queues, rss, steering, steer_why)) steering = FlowSteering{};
    std::string rss_state;
    if (steering.toeplitz()) {
        rss_state = "on, " + steering.describe() + ": flows arrive on their owner's queue";
    } else if (use_rss) {
        rss_state = "on, software steering (" + steer_why + "): cores hand flows to their owner";
    } else if (n_queues > 1) {
        rss_state = "off, software steering (the device has no RSS): cores hand flows to their owner";
    } else {
        rss_state = "off (one queue)";
    }

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
        txd, rss_state.c_str(),
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
    rings.free();
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

    FlowSteering::set_process(FlowSteering{});
    ports.resize(dp.ports.size());
    std::vector<FlowSteering> steering(dp.ports.size());
    for (size_t i = 0; i < dp.ports.size(); ++i) {
        if (setup_port(program_, dp.ports[i], n_cores, pool, ports[i], steering[i]) != 0) {
            ports.resize(i);  // the ones started are stopped by the destructor
            return 1;
        }
    }
    // One steering for the process: the first port that steers by Toeplitz
    // sets it (we program the same key and table everywhere, so ports
    // agree unless a device kept its own); a port that differs, or has no
    // RSS, still works through the hand-off.
    size_t steer = 0;
    while (steer < steering.size() && !steering[steer].toeplitz()) ++steer;
    if (steer < steering.size()) {
        FlowSteering::set_process(steering[steer]);
        for (size_t i = 0; i < steering.size(); ++i) {
            if (i == steer || !steering[i].toeplitz() || steering[i].same_as(steering[steer])) continue;
            log("port %s: its RSS key or redirection table differs from port %s's, which the cores follow: "
                "its flows are handed over",
                dp.ports[i].device.c_str(), dp.ports[steer].device.c_str());
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
    // Everything cores tell each other goes over these (messages.h).
    const unsigned entries = MessageRings::entries_for(dp.mbufs, n_cores);
    if (std::string why; rings.create("tm_msg", n_cores, entries, why) != 0) {
        log("%s", why.c_str());
        return 1;
    }
    for (unsigned i = 0; i < n_cores; ++i) {
        rings.connect(lcores[i].messages, i);
        lcores[i].messages.set_counters(&lcores[i].counters);
    }
    log("%u lcores (main %u), %u mbufs, %zu port%s; flows are owned by the core their %s "
        "selects, others hand them over through %u message rings of %u",
        n_cores, rte_get_main_lcore(), dp.mbufs, ports.size(), ports.size() == 1 ? "" : "s",
        FlowSteering::process().toeplitz() ? "NIC's Toeplitz hash" : "software hash", rings.count(),
        n_cores > 1 ? entries : 0);

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
