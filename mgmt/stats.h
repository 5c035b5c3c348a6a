// The statistics segment: every core of terminusd publishes its counters
// into shared memory (/dev/shm/terminus-NAME.stats); terminusctl and the
// management process read them without locks and sum across cores. The
// segment carries its own directory of names, so a reader needs no
// knowledge of a particular build.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/result.h"

namespace terminus::mgmt {

// kState: one of a few named states (an upstream server's "up",
// "unhealthy"...). Its value is 1 + the index of the state in
// StatDef::states; 0 means "not reported here": the one core that knows
// the state publishes it, the others 0, so the sum is the state.
enum class StatKind : uint8_t { kCounter, kGauge, kState };

struct StatDef {
    std::string group;  // "net", "tcp", "proxy", "loop", "tls", "tls_server", "upstream"
    std::string name;
    std::string help;
    StatKind kind = StatKind::kCounter;
    // One instance among several of the same counters, as a Prometheus
    // label: KEY and VALUE (e.g. "server", "/etc/terminus.conf:12");
    // empty for per-core counters of the whole appliance.
    std::string label_key;
    std::string label_value;
    // kState: the names of the states, in value order (at most 95
    // characters, commas included).
    std::vector<std::string> states;
};

constexpr uint32_t kStatsMagic = 0x534d5254;  // "TRMS"
// 3: kState entries and their names.
constexpr uint32_t kStatsVersion = 3;
constexpr unsigned kStatsMaxCores = 64;

std::string stats_path(const std::string& instance);

// The writer: terminusd, one per process. Each core writes only its own
// row, with relaxed 64-bit stores (never torn on x86-64).
class StatsWriter {
  public:
    // STAGED: made beside the live segment (a reload's new directory),
    // readers see it once go_live() renames it over. STARTED_UNIX: when
    // the process started (0: now).
    static Result<StatsWriter> create(const std::string& instance, const std::vector<StatDef>& defs,
                                      unsigned cores, uint64_t tsc_hz, bool staged = false,
                                      int64_t started_unix = 0);
    StatsWriter(StatsWriter&& o) noexcept;
    StatsWriter& operator=(StatsWriter&&) = delete;
    ~StatsWriter();
    // A staged segment replaces the live one (whose writer must disown()
    // it); false with errno when the rename failed.
    bool go_live();
    // Another writer's segment took this one's path: leave it at exit.
    void disown() { path_.clear(); }

    // Publishes N values for CORE (in the order of the definitions).
    void publish(unsigned core, const uint64_t* values, size_t n);
    size_t size() const { return n_stats_; }

  private:
    StatsWriter() = default;
    std::string path_;       // where it is; empty: disowned
    std::string live_path_;  // where readers look
    void* base_ = nullptr;
    size_t len_ = 0;
    size_t n_stats_ = 0;
    unsigned cores_ = 0;
};

struct StatValue {
    StatDef def;
    uint64_t total = 0;              // summed over cores
    std::vector<uint64_t> per_core;
    // kState: the name of the state TOTAL stands for ("" when no core
    // reported it, "?" for a value without a name).
    std::string state() const;
};

struct Snapshot {
    unsigned cores = 0;
    uint64_t tsc_hz = 0;
    int64_t started_unix = 0;
    int32_t pid = 0;
    std::vector<StatValue> stats;
};

// Reads the segment of INSTANCE; an error says what is wrong (terminusd
// not running, another layout).
Result<Snapshot> read_stats(const std::string& instance);

std::string render_table(const Snapshot& s, bool per_core, const Snapshot* previous, double interval_s);
std::string render_json(const Snapshot& s);
std::string render_prometheus(const Snapshot& s);

}  // namespace terminus::mgmt
