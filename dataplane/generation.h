// Configuration generations: everything one configuration makes for the
// dataplane, built by the control thread off the cores and handed to each
// core on its message ring (messages.h, kConfigGeneration). A core installs
// it between two bursts; its sessions keep the generation they started on,
// new ones get the newest. A retired generation is freed once every core
// has released it (its last session there ended) and every core has since
// passed a quiescent state (DPDK's RCU QSBR), so no core is still inside a
// loop iteration that could have reached it. What a reload cannot change
// (the dataplane {} block, the control socket) is refused by name; what
// outlives generations (ticket keys, the session exchanges, the counters)
// is kept by the control thread and the cores. Private to dataplane/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/result.h"
#include "dataplane/proxy/balancer.h"
#include "dataplane/proxy/health.h"
#include "dataplane/proxy/proxy.h"
#include "mgmt/stats.h"
#include "tls/tls.h"
#include "tls/upstream.h"

namespace terminus::dataplane {

// A certificate a generation serves, as it was when the generation loaded
// it (what terminusctl certs shows: the files may have changed since).
struct CertInfo {
    std::string server;  // the server block, FILE:LINE
    std::string path;
    std::string subject;
    std::vector<std::string> names;  // subjectAltName DNS and IP entries
    std::string key;                 // "RSA 2048", "EC 256", ...
    int64_t not_before = 0, not_after = 0;  // unix seconds
    // ssl_stapling_file: the response's thisUpdate and nextUpdate (0: none).
    int64_t ocsp_this_update = 0, ocsp_next_update = 0;
    std::string error;  // when the file could not be read again
};

// Reads the certificates CFG's TLS server blocks name.
std::vector<CertInfo> cert_inventory(const config::Config& cfg);

struct Generation {
    uint32_t number = 0;
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<proxy::SharedUpstreams> upstreams;
    // limit_conn zones, parallel to Config::limit_conn_zones (shared with
    // the generations before and after that have the same zone).
    std::vector<std::shared_ptr<proxy::LimitZone>> zones;
    std::unique_ptr<tls::SharedTls> tls;
    std::unique_ptr<tls::SharedUpstreamTls> upstream_tls;
    std::vector<std::unique_ptr<tls::CoreTls>> core_tls;              // per core, or none
    std::vector<std::unique_ptr<tls::UpstreamTls>> core_upstream_tls;  // per core, or none
    std::unique_ptr<proxy::HealthChecker> health;                     // core 0's, or null
    std::vector<std::unique_ptr<proxy::Routes>> routes;               // per core
    std::unique_ptr<mgmt::StatsWriter> stats;
    std::vector<CertInfo> certs;
    // The control thread's bookkeeping.
    unsigned installed = 0;  // cores that installed it
    unsigned released = 0;   // cores that retired it and ended its last session
    bool live = false;       // its statistics segment is the one readers see
    uint64_t qsbr_token = 0;
    bool grace = false;      // waiting for the grace period since the last release
    bool forgetting = false;  // the cores were asked to drop their OpenSSL thread state
    unsigned forgotten = 0;   // cores that did
};

// What every generation is built over: the running dataplane.
struct GenerationBase {
    unsigned n_cores = 1;
    std::vector<proxy::Proxy*> proxies;  // per core
    tcp::Stack* stack0 = nullptr;        // core 0's, for the health checks
    const uint64_t* now_us0 = nullptr;   // core 0's loop clock
    uint32_t local_ip = 0;
    tls::TlsCarry carry;                 // generation set per build
    std::shared_ptr<proxy::LimitZones> limit_zones = std::make_shared<proxy::LimitZones>();
    std::string instance;
    uint64_t tsc_hz = 0;
    int64_t started_unix = 0;
};

// Builds generation NUMBER of CFG (validated, host names resolved):
// contexts, certificates, keys and files loaded, the cores' routes, the
// health checker and a staged statistics segment (the first generation's
// is live at once). An error says what failed (a certificate that does not
// load, ...); nothing of it is left then. PREVIOUS: the generation it
// replaces, whose upstream servers' health and failures carry over.
Result<std::unique_ptr<Generation>> build_generation(const GenerationBase& base,
                                                     std::shared_ptr<const config::Config> cfg, uint32_t number,
                                                     const Generation* previous = nullptr);

// Why RUNNING cannot become NEXT by a reload: the settings only a restart
// applies (dataplane {}, mgmt { control }), each with where NEXT writes it;
// empty when a reload can.
std::vector<config::Diagnostic> restart_needed(const config::Config& running, const config::Config& next);

}  // namespace terminus::dataplane
