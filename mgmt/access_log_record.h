// The access log's shared memory: what terminusd's cores write at the end
// of each logged session, and how terminus-mgmtd finds it. One segment per
// terminusd instance, /dev/shm/terminus-NAME.log, made at start:
//
//   AccessLogHeader | core 0's ring | core 1's ring | ...
//
// Each ring is a DPDK rte_ring of fixed-size AccessRecord elements
// (rte_ring_elem API, RING_F_SP_ENQ | RING_F_SC_DEQ), set up with
// rte_ring_init on the mapped memory: the ring's indexes and slots are
// offsets from the ring itself, so terminus-mgmtd, mapping the file
// elsewhere and without an EAL, dequeues with the same inline functions
// (mgmt/access_log_reader.h). The producer is the core, alone; the consumer
// is one terminus-mgmtd (it holds an flock on the file).
//
// A record carries everything its line needs except the configuration:
// the generation it was served by and a signature of that generation's
// log configuration (log_format, access_log, map), with which mgmtd finds
// the configuration to format it with (mgmt/access_log_writer.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/result.h"

namespace terminus::mgmt {

constexpr uint32_t kAccessLogMagic = 0x4c415254;   // "TRAL"
constexpr uint32_t kAccessLogVersion = 1;
constexpr uint32_t kAccessRecordMagic = 0x31524c41;  // "ALR1", the first word of every record
constexpr unsigned kAccessLogMaxCores = 64;
// Upstream attempts a record keeps: the first kMaxUpstreamTries - 1 and
// the last (proxy_next_upstream may try more).
constexpr unsigned kMaxUpstreamTries = 4;
// access_log lines one server block may have (a bit each in
// AccessRecord::logs).
constexpr unsigned kMaxAccessLogsPerServer = 16;

// nginx's stream $status values (ngx_stream.h: NGX_STREAM_OK ...).
enum class SessionStatus : uint16_t {
    kOk = 200,
    kBadRequest = 400,           // a PROXY header or preread that failed
    kForbidden = 403,            // deny
    kInternalError = 500,        // a failed TLS handshake, as nginx
    kBadGateway = 502,           // no upstream answered
    kServiceUnavailable = 503,   // limit_conn, no free session
};

enum AccessRecordFlags : uint16_t {
    kRecordTls = 1 << 0,             // the client side is TLS terminated here
    kRecordTlsDone = 1 << 1,         // ... and its handshake completed
    kRecordSessionReused = 1 << 2,   // ... resumed ($ssl_session_reused "r")
    kRecordPreread = 1 << 3,         // ssl_preread read a ClientHello
    kRecordAlpnTruncated = 1 << 4,   // preread_alpn holds only the first protocols
    kRecordProxyHeader = 1 << 5,     // a PROXY header with addresses was read
    kRecordRealIp = 1 << 6,          // set_real_ip_from trusted it: $remote_addr is its source
    kRecordPrereadRan = 1 << 7,      // the listen prereads (the $ssl_preread_* are "", not "-")
};

// One session, fixed size (512 bytes: 128 records in 64 KB). Addresses
// are IPv4 in host byte order; times are unix microseconds.
struct AccessRecord {
    struct Upstream {
        uint32_t addr;
        uint16_t port;
        uint16_t reserved;
        uint32_t connect_us;  // until the upstream was ready; UINT32_MAX: it never was
        uint32_t start_us;    // the connect began this long after the session began
    };

    uint32_t magic;       // kAccessRecordMagic
    uint32_t generation;  // the configuration generation that served it
    uint64_t config;      // access_log_signature() of that generation's configuration
    uint64_t start_us;
    uint64_t end_us;
    uint64_t connection;  // $connection: unique among the instance's sessions
    uint64_t bytes_received;  // from the client ($bytes_received)
    uint64_t bytes_sent;      // to the client ($bytes_sent)
    uint64_t upstream_bytes_sent;      // to the last upstream
    uint64_t upstream_bytes_received;  // from it
    uint32_t remote_addr, server_addr;  // the client's connection
    uint16_t remote_port, server_port;
    uint32_t pp_src_addr, pp_dst_addr;  // the PROXY header's (kRecordProxyHeader)
    uint16_t pp_src_port, pp_dst_port;
    uint16_t server;  // the server block, index in Config::servers
    uint16_t status;  // SessionStatus
    uint16_t logs;    // bit i: the server's access_log i takes it
    uint16_t flags;   // AccessRecordFlags
    uint16_t ssl_version;      // SSL_version() (0x0304: TLSv1.3)
    uint16_t preread_version;  // the ClientHello's (ClientHelloInfo::version)
    uint8_t core;
    uint8_t n_upstreams;  // entries in upstreams
    uint8_t name_len;     // the SNI: $ssl_server_name (kRecordTls), $ssl_preread_server_name (kRecordPreread)
    uint8_t alpn_len;     // $ssl_preread_alpn_protocols
    uint8_t cipher_len;
    uint8_t reserved[7];
    Upstream upstreams[kMaxUpstreamTries];
    char cipher[32];  // $ssl_cipher
    char name[255];
    char alpn[41];
};
static_assert(sizeof(AccessRecord) == 512, "records are 512 bytes");
static_assert(sizeof(AccessRecord) % 4 == 0, "rte_ring_elem needs a multiple of 4 bytes");

struct AccessLogHeader {
    uint32_t magic;  // kAccessLogMagic, stored last
    uint32_t version;
    uint32_t cores;
    uint32_t record_size;  // sizeof(AccessRecord)
    uint32_t ring_count;   // slots per ring: a power of two, capacity ring_count - 1
    int32_t pid;           // terminusd's ($pid)
    uint64_t ring_offset;  // core 0's ring
    uint64_t ring_stride;  // from one core's ring to the next
    int64_t started_unix;
    uint8_t reserved[16];
};
static_assert(sizeof(AccessLogHeader) == 64, "the header is one cache line");

std::string access_log_path(const std::string& instance);

// The ring's slots for a per-core budget of BYTES (mgmt { access_log_buffer }):
// the largest power of two of records that fits, at least 8.
uint32_t access_log_ring_count(uint64_t bytes);

// What identifies a configuration's access logs: a 64-bit hash over its
// log_formats, maps and each server block's access_log lines (paths,
// formats, buffer, flush, if=). Equal configurations give equal values in
// every process.
uint64_t access_log_signature(const config::Config& cfg);

// The variables terminus-mgmtd formats from a record itself; the others
// a format may name are the dataplane's (dataplane/proxy/variables.h:
// $binary_remote_addr, $proxy_protocol_*, $ssl_preread_*, maps), which it
// evaluates with the dataplane's own code over the record.
extern const char* const kAccessLogVariables[];
extern const size_t kAccessLogVariableCount;
bool is_access_log_variable(std::string_view name);

// A log_format string or an if= condition cut into text and variables, as
// nginx reads them: "$name" (letters, digits, "_") or "${name}".
struct LogPart {
    bool variable = false;
    std::string text;  // the literal text, or the variable's name
};
// Error: "$" without a name, "${" without "}".
Result<std::vector<LogPart>> split_log_value(std::string_view value);

}  // namespace terminus::mgmt
