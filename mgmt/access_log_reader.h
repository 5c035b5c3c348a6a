// terminus-mgmtd's end of the access log segment (mgmt/access_log_record.h):
// maps /dev/shm/terminus-NAME.log, checks its layout, and dequeues the
// cores' records with rte_ring's inline single-consumer functions — DPDK's
// headers only, no EAL. It holds an exclusive flock on the file, so a
// second mgmtd cannot consume the same rings.
//
// The segment is not trusted: the header and each ring's size, mask and
// capacity are checked against the file's size before every drain (a
// ring's indexes may then say anything, the slots read stay inside the
// ring), and every record is checked (record_valid) before it is handed
// on; a bad one is counted and skipped.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "config/result.h"
#include "mgmt/access_log_record.h"

namespace terminus::mgmt {

class AccessLogReader {
  public:
    // Maps PATH and takes its lock. Errors: no such file (terminusd not
    // running, or started without an access log), another layout, locked
    // by another reader.
    static Result<std::unique_ptr<AccessLogReader>> open(const std::string& path);
    ~AccessLogReader();
    AccessLogReader(const AccessLogReader&) = delete;
    AccessLogReader& operator=(const AccessLogReader&) = delete;

    // Takes up to MAX valid records into OUT, from each core's ring in
    // turn, and returns how many. Invalid records are dropped and counted.
    // Zero (and corrupt() true) when the layout no longer checks out.
    size_t drain(AccessRecord* out, size_t max);

    // The file at the path is not this one any more (terminusd restarted,
    // or exited and removed it): drain the rest, then open the new one.
    bool replaced() const;

    const std::string& path() const { return path_; }
    unsigned cores() const { return cores_; }
    uint32_t ring_count() const { return count_; }
    int32_t pid() const { return pid_; }
    uint64_t invalid() const { return invalid_; }
    bool corrupt() const { return corrupt_; }

  private:
    AccessLogReader() = default;
    bool layout_ok() const;

    std::string path_;
    int fd_ = -1;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    void* base_ = nullptr;
    size_t len_ = 0;
    unsigned cores_ = 0;
    uint32_t count_ = 0;
    uint64_t offset_ = 0, stride_ = 0;
    int32_t pid_ = 0;
    unsigned next_core_ = 0;
    uint64_t invalid_ = 0;
    bool corrupt_ = false;
};

}  // namespace terminus::mgmt
