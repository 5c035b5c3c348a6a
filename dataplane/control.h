// terminusd's control thread (a plain thread, not an lcore): it reloads
// the configuration (SIGHUP, or "reload" on the control socket), answers
// the control socket (mgmt { control }), rotates the random session
// ticket keys (mgmt { ticket_key_rotation }), and keeps the configuration
// generations (generation.h): builds each off the cores, sends it to every
// core on the message rings, waits until all use it, and frees the retired
// ones after their grace period.
//
// The control socket speaks one request line per connection and answers
// one JSON object, then closes (terminusctl is its client):
//   reload            the configuration file terminusd started with, again
//   check [FILE]      what a reload of FILE (default: that file) would say,
//                     certificates loaded, nothing applied
//   status            the generations: current, retired, per core
//   upstreams         every upstream server of the current generation:
//                     state, weight, connections, failures, health checks
//   sessions [N]      sessions by stage and TCP connections by state on
//                     every core, and the N largest sessions by bytes
//   certs             the certificates served: subject, names, key,
//                     expiry, OCSP response age
//   tickets           the session ticket keys: names of the current and
//                     previous random keys, who rotates them, key files
//   tickets rotate    a new random ticket key now (the previous decrypts)
//   tickets set CUR [PREV]
//                     terminus-mgmtd's keys (80 bytes in nginx's layout,
//                     as hex): CUR encrypts, PREV still decrypts. While
//                     mgmtd pushes them (every few seconds), terminusd does
//                     not rotate its own; one rotation period after the
//                     last push it rotates again by itself.
// An answer has "ok" and, when a configuration was refused, "errors" as
// "FILE:LINE:COL: error: ..." lines; "warnings" likewise. Private to
// dataplane/.
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/generation.h"
#include "dataplane/lcore.h"
#include "dataplane/messages.h"

namespace terminus::dataplane {

class Control {
  public:
    // LCORES: the N cores (BASE.n_cores); RINGS: their message rings, of
    // which the control thread takes its end. CONFIG_PATH: what "reload"
    // reads again.
    Control(GenerationBase base, Lcore* lcores, const MessageRings& rings, std::string config_path);
    ~Control();  // the cores have stopped: frees every generation
    Control(const Control&) = delete;
    Control& operator=(const Control&) = delete;

    // Before the cores start: the first generation, installed on every
    // core at once, the handlers and the "generations" poller on each,
    // the QSBR variable, and the control socket. An error says why.
    Result<bool> start(std::shared_ptr<const config::Config> cfg);

    // The thread's loop, until STOP: requests, SIGHUP, rotation, the
    // cores' acknowledgements, grace periods.
    void run(const std::atomic<bool>& stop);

    // From a signal handler: reload at the next turn of run().
    static void request_reload();
    static void request_reopen();

    struct Outcome {
        bool ok = false;
        uint32_t generation = 0;
        std::vector<std::string> errors, warnings;
        std::string message;  // one line for the log and the client
    };
    // Reloads PATH (CHECK: only says what a reload would), waiting up to
    // a few seconds for every core to install the new generation.
    Outcome reload(const std::string& path, bool check);

    uint32_t generation() const { return current_ ? current_->number : 0; }
    const Generation* current() const { return current_; }

  private:
    static void on_ack(void* ctx, unsigned self, const Message* msgs, unsigned n);
    static void on_generation(void* ctx, unsigned self, const Message* msgs, unsigned n);
    static bool poll_released(Lcore& lc, void* ctx);
    void handle_acks();
    void collect();  // frees the generations whose grace period is over
    Generation* find(uint32_t number);
    int open_socket(std::string& why);
    void serve_client(int fd);
    std::string status_json() const;
    std::string upstreams_json() const;
    std::string certs_json() const;
    std::string sessions_json(unsigned top);
    std::string tickets_json(const std::string& arg);
    // terminus-mgmtd pushed keys within the last rotation period at NOW:
    // it rotates them, terminusd does not.
    bool mgmtd_rotates(std::chrono::steady_clock::time_point now) const {
        return pushes_ && now - pushed_ < std::chrono::milliseconds(rotation_ms_);
    }
    static void on_query(void* ctx, unsigned self, const Message* msgs, unsigned n);

    GenerationBase base_;
    Lcore* lcores_;
    Mailbox mailbox_;
    net::NetCounters counters_;  // the control mailbox's ring_full_*
    std::string config_path_;
    std::shared_ptr<const config::Config> running_;  // the current generation's
    Generation* current_ = nullptr;
    std::vector<std::unique_ptr<Generation>> generations_;  // current and retired
    uint32_t next_number_ = 1;
    rte_rcu_qsbr* qsbr_ = nullptr;
    int listen_fd_ = -1;
    std::string socket_path_;
    uint64_t rotation_ms_ = 0;
    // The random ticket keys: when they last changed, and when
    // terminus-mgmtd last pushed keys (none yet: the epoch).
    std::chrono::steady_clock::time_point rotated_, pushed_;
    uint64_t pushes_ = 0, mgmtd_installs_ = 0;
    // terminusctl sessions: one snapshot per core, filled by the cores;
    // a late answer to an older query lands here too, never in freed memory.
    std::unique_ptr<proxy::SessionsSnapshot[]> snapshots_;
    uint32_t query_ = 0;
    unsigned answered_ = 0;
};

}  // namespace terminus::dataplane
