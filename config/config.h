// Terminus configuration: nginx's stream{} dialect plus the Terminus-only
// dataplane{} and mgmt{} blocks, parsed, validated and turned into plain,
// immutable structs that the dataplane, the management process and the CLI
// read without further parsing. Nothing else in the project parses
// configuration text.
//
// Field names follow the directive that sets them, so that a reader who knows
// nginx finds them without a map. Times are milliseconds, sizes are bytes.
// Every default is nginx's wherever nginx has the directive.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/result.h"

namespace terminus::config {

using Millis = std::chrono::milliseconds;

// Where a directive or value came from; line and column are 1-based.
struct Location {
    std::string file;
    uint32_t line = 0;
    uint32_t column = 0;
};

enum class Severity { kWarning, kError };

struct Diagnostic {
    Severity severity = Severity::kError;
    Location loc;
    std::string message;

    // "FILE:LINE:COL: error: message" (or "warning:").
    std::string to_string() const;
};

// An IPv4 address in host byte order with a prefix length.
struct Ipv4Prefix {
    uint32_t addr = 0;
    uint8_t len = 32;
    // IP (host byte order) is inside the prefix; len 0 holds every address.
    bool contains(uint32_t ip) const {
        const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        return (ip & mask) == (addr & mask);
    }
};

std::string ipv4_to_string(uint32_t host_order_addr);
// Parses dotted-quad IPv4 ("198.18.0.1") into host byte order.
Result<uint32_t> parse_ipv4(std::string_view text);

// nginx's value syntax, exposed for the CLI and tests.
// Sizes: N, Nk, Nm, Ng (powers of 1024). Times: units y M w d h m s ms, in
// that order, combinable ("1h30m"); a bare number is seconds.
Result<uint64_t> parse_size(std::string_view text);
Result<Millis> parse_time(std::string_view text);
// Like parse_time but for directives nginx reads in whole seconds
// (ngx_conf_set_sec_slot): "ms" is refused.
Result<Millis> parse_seconds(std::string_view text);

// ---------------------------------------------------------------------------
// dataplane {} (Terminus only)

enum class CryptoBackend { kIpsecMb, kOpenssl, kCryptodev };
enum class CongestionControl { kNewReno, kCubic };
enum class SynCookies { kOff, kOn, kAlways };

struct PortConfig {
    std::string device;  // "0000:03:00.0" or a virtual device "net_tap0"
    bool is_pci = false;
    // Device arguments handed to DPDK as they were written ("iface=tap0").
    std::vector<std::pair<std::string, std::string>> devargs;
    Ipv4Prefix address;
    std::optional<uint32_t> gateway;
    uint16_t mtu = 1500;
    Location loc;

    // "net_tap0,iface=tap0" as rte_dev_probe()/--vdev expect it.
    std::string devargs_string() const;
};

struct DataplaneConfig {
    std::vector<PortConfig> ports;  // never empty after validation
    bool ports_defaulted = false;   // no "port" was written: the lab default
    std::vector<unsigned> lcores{0};
    CryptoBackend crypto = CryptoBackend::kIpsecMb;
    std::string crypto_device;  // for kCryptodev
    uint32_t mbufs = 32767;
    uint32_t max_connections = 65536;
    std::vector<std::string> eal_args;
    SynCookies syncookies = SynCookies::kOn;
    CongestionControl tcp_congestion = CongestionControl::kNewReno;
    // SIGTERM: how long established sessions may finish before the rest
    // are reset (nginx's worker_shutdown_timeout).
    Millis shutdown_timeout = std::chrono::seconds(10);
};

// ---------------------------------------------------------------------------
// mgmt {} (Terminus only)

struct MgmtConfig {
    std::string control = "/run/terminus/control.sock";
    std::optional<std::pair<uint32_t, uint16_t>> metrics;  // address, port
    Millis ticket_key_rotation = std::chrono::hours(1);
    uint64_t access_log_buffer = 64 * 1024;
};

// ---------------------------------------------------------------------------
// stream {}

enum class LogLevel { kDebug, kInfo, kNotice, kWarn, kError, kCrit, kAlert, kEmerg };

struct ErrorLog {
    std::string path = "stderr";
    LogLevel level = LogLevel::kError;
};

struct UpstreamServer {
    std::string host;                // as written: an IPv4 literal or a name
    std::optional<uint32_t> address;  // set when host is an IPv4 literal
    uint16_t port = 0;
    uint32_t weight = 1;
    uint32_t max_fails = 1;
    Millis fail_timeout = std::chrono::seconds(10);
    uint32_t max_conns = 0;  // 0: unlimited
    bool backup = false;
    bool down = false;
    Location loc;
};

enum class BalanceMethod { kRoundRobin, kLeastConn, kHash, kRandom };

// NGINX Plus active health checks (health_check / match).
struct HealthCheck {
    bool enabled = false;
    Millis interval = std::chrono::seconds(5);
    Millis jitter{0};
    uint32_t fails = 1;
    uint32_t passes = 1;
    uint16_t port = 0;  // 0: the server's own port
    std::string match;  // name of a match{} block, empty for "connect succeeds"
    bool mandatory = false;
    bool persistent = false;
    Location loc;
};

struct Match {
    std::string name;
    std::string send;    // bytes to send, escapes already applied
    std::string expect;  // literal bytes, or a PCRE when expect_regex
    bool expect_regex = false;
    Location loc;
};

struct Upstream {
    std::string name;
    std::vector<UpstreamServer> servers;
    BalanceMethod method = BalanceMethod::kRoundRobin;
    std::string hash_key;  // for kHash: a value with variables
    bool hash_consistent = false;
    bool random_two = false;
    bool random_two_least_conn = false;
    std::string zone;  // accepted: Terminus always shares upstream state
    uint64_t zone_size = 0;
    HealthCheck health_check;
    Location loc;
};

struct MapEntry {
    std::string key;
    std::string value;
    bool regex = false;
    bool caseless = false;  // "~*"
    Location loc;
};

struct Map {
    std::string source;    // a value with variables, e.g. "$ssl_preread_server_name"
    std::string variable;  // without the "$"
    bool hostnames = false;
    bool is_volatile = false;
    std::string default_value;
    std::vector<MapEntry> entries;
    Location loc;
};

enum class LogEscape { kDefault, kJson, kNone };

struct LogFormat {
    std::string name;
    LogEscape escape = LogEscape::kDefault;
    std::string format;
    Location loc;
};

struct AccessLog {
    std::string path;
    std::string format;
    uint64_t buffer = 0;
    Millis flush{0};
    int gzip_level = 0;  // 0: not compressed
    std::string if_condition;
    Location loc;
};

struct LimitConnZone {
    std::string key;
    std::string name;
    uint64_t size = 0;
    Location loc;
};

struct LimitConn {
    std::string zone;
    uint32_t number = 0;
    Location loc;
};

struct AccessRule {
    bool allow = true;
    Ipv4Prefix prefix;  // "all" is 0.0.0.0/0
    Location loc;
};

struct KeepaliveOpts {
    bool set = false;
    bool on = false;
    // Zero: the system default, as nginx leaves it.
    uint32_t idle_s = 0, interval_s = 0, count = 0;
};

struct Listen {
    uint32_t address = 0;  // 0.0.0.0: every address of the dataplane's ports
    uint16_t port = 0;
    bool ssl = false;
    bool proxy_protocol = false;
    bool default_server = false;
    bool reuseport = false;
    int backlog = 511;
    KeepaliveOpts so_keepalive;
    Location loc;
};

enum class ServerNameKind { kExact, kWildcardFront, kWildcardBack, kRegex };

struct ServerName {
    std::string name;  // lowercased; for wildcards the pattern as written
    ServerNameKind kind = ServerNameKind::kExact;
    Location loc;
};

enum class TlsVersion : uint8_t {
    kTls1 = 1 << 0,
    kTls11 = 1 << 1,
    kTls12 = 1 << 2,
    kTls13 = 1 << 3,
};
constexpr uint8_t kTlsDefaultProtocols =
    static_cast<uint8_t>(TlsVersion::kTls12) | static_cast<uint8_t>(TlsVersion::kTls13);

struct CertKeyPair {
    std::string certificate;  // absolute path
    std::string key;          // absolute path
    Location certificate_loc;
    Location key_loc;
};

struct SessionCache {
    // nginx: "none" by default; "off" forbids resumption from any cache.
    bool off = false;
    bool builtin = false;
    uint32_t builtin_size = 20480;  // sessions
    std::string shared_name;        // empty: no shared cache
    uint64_t shared_size = 0;       // bytes
};

enum class VerifyClient { kOff, kOn, kOptional, kOptionalNoCa };

struct ConfCommand {
    std::string name, value;
    Location loc;
};

struct ProxyPass {
    enum class Kind { kNone, kUpstream, kAddress, kVariable };
    Kind kind = Kind::kNone;
    std::string value;        // as written
    std::string upstream;     // kUpstream
    std::string host;         // kAddress
    std::optional<uint32_t> address;
    uint16_t port = 0;        // kAddress
    Location loc;
};

// Everything a server{} may also inherit from stream{}. Fields are named
// after their directive.
struct ServerSettings {
    // proxy
    Millis proxy_connect_timeout = std::chrono::seconds(60);
    Millis proxy_timeout = std::chrono::minutes(10);
    bool proxy_next_upstream = true;
    uint32_t proxy_next_upstream_tries = 0;  // 0: unlimited
    Millis proxy_next_upstream_timeout{0};   // 0: unlimited
    bool proxy_protocol = false;
    // Terminus: which PROXY protocol version "proxy_protocol on" sends
    // (nginx sends version 1 only; 2 carries the client's TLS details as
    // HAProxy's send-proxy-v2-ssl does).
    uint8_t proxy_protocol_version = 1;
    // nginx's realip module: the senders whose PROXY protocol header is
    // believed (empty: every sender's, as nginx without set_real_ip_from
    // still parses the header; $proxy_protocol_addr is set either way).
    std::vector<Ipv4Prefix> set_real_ip_from;
    // How long a "listen ... proxy_protocol" client may take to send its
    // header (nginx's proxy_protocol_timeout).
    Millis proxy_protocol_timeout = std::chrono::seconds(30);
    uint64_t proxy_buffer_size = 16 * 1024;
    uint64_t proxy_upload_rate = 0;    // bytes/s, 0: unlimited
    uint64_t proxy_download_rate = 0;  // bytes/s, 0: unlimited
    bool proxy_half_close = false;

    // preread
    bool ssl_preread = false;
    Millis preread_timeout = std::chrono::seconds(30);
    uint64_t preread_buffer_size = 16 * 1024;

    // access, limits, logs
    std::vector<AccessRule> access_rules;  // allow/deny in order
    std::vector<LimitConn> limit_conn;
    bool limit_conn_dry_run = false;
    LogLevel limit_conn_log_level = LogLevel::kError;  // info, notice, warn or error
    std::vector<AccessLog> access_log;
    bool access_log_off = false;
    std::optional<ErrorLog> error_log;  // unset: the stream's or main's

    // server-side TLS
    std::vector<CertKeyPair> ssl_certificates;
    std::string ssl_password_file;
    uint8_t ssl_protocols = kTlsDefaultProtocols;
    std::string ssl_ciphers = "HIGH:!aNULL:!MD5";
    std::vector<ConfCommand> ssl_conf_command;
    bool ssl_prefer_server_ciphers = false;
    std::string ssl_ecdh_curve = "auto";
    std::string ssl_dhparam;
    SessionCache ssl_session_cache;
    Millis ssl_session_timeout = std::chrono::minutes(5);
    bool ssl_session_tickets = true;
    std::vector<std::string> ssl_session_ticket_key;
    Millis ssl_handshake_timeout = std::chrono::seconds(60);
    VerifyClient ssl_verify_client = VerifyClient::kOff;
    uint32_t ssl_verify_depth = 1;
    std::string ssl_client_certificate;
    std::string ssl_trusted_certificate;
    std::string ssl_crl;
    std::vector<std::string> ssl_alpn;
    bool ssl_stapling = false;
    std::string ssl_stapling_file;
    bool ssl_stapling_verify = false;
    bool ssl_reject_handshake = false;
    bool ssl_early_data = false;

    // upstream-side TLS
    bool proxy_ssl = false;
    std::string proxy_ssl_certificate;
    std::string proxy_ssl_certificate_key;
    std::string proxy_ssl_password_file;
    uint8_t proxy_ssl_protocols = kTlsDefaultProtocols;
    std::string proxy_ssl_ciphers = "DEFAULT";
    std::vector<ConfCommand> proxy_ssl_conf_command;
    bool proxy_ssl_verify = true;  // Terminus: on (nginx: off)
    uint32_t proxy_ssl_verify_depth = 1;
    std::string proxy_ssl_trusted_certificate;
    std::string proxy_ssl_crl;
    bool proxy_ssl_server_name = false;
    std::string proxy_ssl_name;  // empty: the host of proxy_pass
    bool proxy_ssl_session_reuse = true;
    std::vector<std::string> proxy_ssl_alpn;
};

struct Server {
    std::vector<Listen> listen;
    std::vector<ServerName> server_name;
    ProxyPass proxy_pass;
    std::optional<std::string> return_value;  // "return"
    HealthCheck health_check;                 // NGINX Plus placement
    ServerSettings settings;
    Location loc;
};

// A directive as written, kept so that later stages can refuse by name, at
// its location, what they do not implement yet.
struct WrittenDirective {
    std::string name;
    std::string block;  // "stream", "server", "upstream", ...
    Location loc;
};

struct Config {
    std::string path;  // the main file, absolute
    DataplaneConfig dataplane;
    MgmtConfig mgmt;
    ErrorLog error_log;
    std::vector<Upstream> upstreams;
    std::vector<Map> maps;
    std::vector<Match> matches;
    std::vector<LogFormat> log_formats;
    std::vector<LimitConnZone> limit_conn_zones;
    std::vector<Server> servers;
    std::vector<WrittenDirective> written;

    const Upstream* find_upstream(std::string_view name) const;
    const Map* find_map(std::string_view variable) const;
};

struct LoadOptions {
    // Open and parse certificates, keys, CA bundles, CRLs, ticket keys,
    // stapling and password files. Off only for the fuzzer.
    bool check_files = true;
    // Follow "include"; off only for the fuzzer.
    bool follow_includes = true;
};

struct LoadResult {
    std::shared_ptr<const Config> config;  // null when there are errors
    std::vector<Diagnostic> diagnostics;   // every error and warning, in file order

    bool ok() const { return config != nullptr; }
    size_t error_count() const;
    size_t warning_count() const;
};

// Reads, parses and validates FILE and everything it includes.
LoadResult load_file(const std::string& path, const LoadOptions& options = {});
// The same for text held in memory; NAME is used in messages, and relative
// paths are resolved against its directory.
LoadResult load_string(std::string_view text, const std::string& name,
                       const LoadOptions& options = {});

// "terminusd -T": the configuration with includes expanded and every
// default filled in (marked "# default"). Diagnostics as for load_file; the
// text is empty when there are errors.
struct DumpResult {
    std::string text;
    std::vector<Diagnostic> diagnostics;
    bool ok = false;
};
DumpResult dump_effective(const std::string& path, const LoadOptions& options = {});

const char* to_string(BalanceMethod m);
const char* to_string(CryptoBackend c);
const char* to_string(CongestionControl c);
const char* to_string(LogLevel l);
std::string tls_protocols_to_string(uint8_t mask);

}  // namespace terminus::config
