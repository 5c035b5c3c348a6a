// What every program on the dataplane starts the same way: the EAL, the
// packet-buffer pool, the ports, one Lcore context per core with the
// message rings between every pair (messages.h), and the launch of the
// poll loops. terminusd runs the
// proxy on it; terminus-loadgen its client and backend.
#pragma once

#include <rte_mempool.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "dataplane/flow.h"
#include "dataplane/lcore.h"
#include "dataplane/messages.h"

namespace terminus::dataplane {

// "PROGRAM: message" on stderr.
__attribute__((format(printf, 2, 3))) void log_as(const char* program, const char* fmt, ...);

class Runtime {
  public:
    explicit Runtime(const char* program) : program_(program) {}
    ~Runtime();  // stops and closes the ports, frees the rings, then the EAL
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Brings up the EAL (file prefix terminus-INSTANCE), the pool, the
    // ports of DP and the cores' contexts; logs what it did or why not.
    // Returns 0, or 1 after logging the reason.
    int start(const config::DataplaneConfig& dp, const std::string& instance);
    // Runs FN(&lcores[i]) on every lcore (the main one included) and returns
    // when all have returned.
    void run(int (*fn)(void*));

    unsigned n_cores = 0;
    rte_mempool* pool = nullptr;
    std::vector<PortInfo> ports;
    std::unique_ptr<Lcore[]> lcores;  // each connected to the rings
    MessageRings rings;
    std::vector<std::unique_ptr<LcoreOutput>> outputs;  // each core's frames

  private:
    const char* program_;
    bool eal_up_ = false;
};

// Configures and starts one port with N_QUEUES RX/TX queue pairs; fills
// OUT, and STEERING with how the port spreads flows over its queues
// (Toeplitz when program_rss succeeded, else software). Returns 0, or -1
// after logging why.
int setup_port(const char* program, const config::PortConfig& pc, unsigned n_queues, rte_mempool* pool,
               PortInfo& out, FlowSteering& steering);

// Programs the RSS of PORT_ID, started with N_QUEUES > 1 queues in RSS
// mode over RSS_HF: FlowSteering::kDefaultKey, and a redirection table that
// sends bucket i to queue i % N_QUEUES. Then reads back the key, the hashed
// fields and the table the device holds (or, where it cannot report one,
// takes what it accepted). Returns true with OUT set to Toeplitz steering
// over those, or false with OUT untouched and the reason in WHY.
bool program_rss(uint16_t port_id, unsigned n_queues, uint64_t rss_hf, FlowSteering& out, std::string& why);

}  // namespace terminus::dataplane
