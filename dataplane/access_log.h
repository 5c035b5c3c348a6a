// The access log on the cores: at the end of a session whose server block
// has an access_log, its core fills one mgmt::AccessRecord and puts it on
// its own ring in /dev/shm/terminus-NAME.log (mgmt/access_log_record.h),
// which terminus-mgmtd drains, formats and writes. The core never waits:
// a full ring (mgmtd slow, stopped or absent) drops the record and counts
// it (proxy.access_log_dropped), logging the count at most once a second.
// A session of a server without access_log makes no record at all.
// Private to dataplane/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/result.h"
#include "mgmt/access_log_record.h"

struct rte_ring;

namespace terminus::dataplane {

namespace proxy {
struct Session;
}

// What a session notes as it goes for its record (proxy.cc): who the
// client was (its connection is gone by the end), the status, and each
// upstream it tried. A few stores per session, whether it is logged or not.
struct SessionLog {
    uint32_t client_ip = 0, local_ip = 0;
    uint16_t client_port = 0, local_port = 0;
    uint16_t status = static_cast<uint16_t>(mgmt::SessionStatus::kOk);
    uint8_t n_upstreams = 0;
    uint64_t connection = 0;
    mgmt::AccessRecord::Upstream upstreams[mgmt::kMaxUpstreamTries] = {};

    // The first status other than 200 is the session's ($status).
    void fail(mgmt::SessionStatus s) {
        if (status == static_cast<uint16_t>(mgmt::SessionStatus::kOk)) status = static_cast<uint16_t>(s);
    }
    // A connect to ADDR:PORT began SINCE_START_US into the session; past
    // kMaxUpstreamTries the last entry is the newest try.
    void attempt(uint32_t addr, uint16_t port, uint64_t since_start_us) {
        if (n_upstreams < mgmt::kMaxUpstreamTries) ++n_upstreams;
        upstreams[n_upstreams - 1] = {addr, port, 0, UINT32_MAX,
                                      static_cast<uint32_t>(since_start_us > UINT32_MAX ? UINT32_MAX : since_start_us)};
    }
    // The newest try's upstream is ready (TCP, PROXY header, TLS) at
    // SINCE_START_US.
    void ready(uint64_t since_start_us) {
        if (n_upstreams == 0) return;
        auto& u = upstreams[n_upstreams - 1];
        const uint64_t d = since_start_us > u.start_us ? since_start_us - u.start_us : 0;
        u.connect_us = static_cast<uint32_t>(d >= UINT32_MAX ? UINT32_MAX - 1 : d);
    }
};

// One core's end of the segment: single producer.
class AccessLogRing {
  public:
    // Copies REC onto the ring. False when the ring is full: the record is
    // dropped, counted here and logged at most once a second (NOW_US is
    // the core's clock). Never blocks, never allocates.
    bool push(const mgmt::AccessRecord& rec, uint64_t now_us);
    // The core's clock (lcore now_us, TSC-based) as unix microseconds.
    uint64_t wall_us(uint64_t now_us) const { return now_us + wall_offset_us_; }
    uint64_t dropped() const { return dropped_; }
    unsigned core() const { return core_; }

  private:
    friend class AccessLogSegment;
    rte_ring* ring_ = nullptr;
    unsigned core_ = 0;
    uint64_t wall_offset_us_ = 0;
    uint64_t dropped_ = 0;
    uint64_t unlogged_ = 0;  // dropped since the last line about it
    uint64_t logged_us_ = 0;
};

// The segment: made at start (the same for every generation), removed at
// exit. Sized from mgmt { access_log_buffer } per core.
class AccessLogSegment {
  public:
    // Makes /dev/shm/terminus-INSTANCE.log (or PATH when given, for tests)
    // with CORES rings of access_log_ring_count(BYTES_PER_CORE) records.
    // TSC_HZ: the cores' clock, to turn it into wall time.
    static Result<std::unique_ptr<AccessLogSegment>> create(const std::string& instance, unsigned cores,
                                                            uint64_t bytes_per_core, uint64_t tsc_hz,
                                                            const std::string& path = "");
    ~AccessLogSegment();
    AccessLogSegment(const AccessLogSegment&) = delete;
    AccessLogSegment& operator=(const AccessLogSegment&) = delete;

    AccessLogRing& ring(unsigned core) { return rings_[core]; }
    unsigned cores() const { return static_cast<unsigned>(rings_.size()); }
    uint32_t records_per_ring() const { return count_; }
    size_t bytes() const { return len_; }
    const std::string& path() const { return path_; }

  private:
    AccessLogSegment() = default;
    std::string path_;
    void* base_ = nullptr;
    size_t len_ = 0;
    uint32_t count_ = 0;
    std::vector<AccessLogRing> rings_;
};

// Fills OUT from session S, which ends now (NOW_US, the core's clock):
// its server block SERVER (index in the generation's Config::servers),
// which has LOGS access_log lines.
void fill_record(const proxy::Session& s, const AccessLogRing& ring, uint64_t now_us, mgmt::AccessRecord& out);

// What the access log cannot do for CFG, as errors at the directive: a
// variable terminus-mgmtd does not format (in log_format or if=), a map
// that uses one, gzip, more than mgmt::kMaxAccessLogsPerServer access_log
// lines in one server block. terminusd refuses to start with any.
std::vector<config::Diagnostic> access_log_problems(const config::Config& cfg);

}  // namespace terminus::dataplane
