// log_format and if= for terminus-mgmtd: compiled once per configuration,
// then applied to each mgmt::AccessRecord, as nginx's
// ngx_stream_log_module writes a session's line.
//
// Variables are nginx's stream variables. Formatted from the record:
// $remote_addr $remote_port $server_addr $server_port $protocol $status
// $bytes_sent $bytes_received $session_time $connection $hostname $pid
// $msec $time_local $time_iso8601 $nginx_version (Terminus's version)
// $ssl_protocol $ssl_cipher $ssl_server_name $ssl_session_reused
// $ssl_preread_server_name $ssl_preread_alpn_protocols
// $ssl_preread_protocol $upstream_addr $upstream_connect_time
// $upstream_bytes_sent $upstream_bytes_received $upstream_session_time
// (the upstream ones list every try, ", " between them, as nginx does).
// Every other variable ($binary_remote_addr, $proxy_protocol_*, maps) is
// the dataplane's own code (dataplane/proxy/variables.h) run over the
// record; one it does not evaluate makes compile() fail.
//
// Escaping (log_format escape=): "default" writes '"', '\' and bytes
// below 0x20 or from 0x7f as \xHH, and a variable with no value as "-";
// "json" escapes as JSON strings ('"' and '\' with a backslash, \n \r \t
// \b \f, other control bytes \u00HH) and writes nothing for no value;
// "none" writes values as they are, nothing for no value. Text between
// variables is written as it is. A condition (if=) is false when it comes
// to "" or "0".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/result.h"
#include "mgmt/access_log_record.h"

namespace terminus::dataplane::proxy {
class Maps;
class Expression;
}  // namespace terminus::dataplane::proxy

namespace terminus::mgmt {

// What the line of a record depends on besides the record and its
// configuration.
struct LogContext {
    std::string hostname;  // $hostname
    std::string version;   // $nginx_version
    int32_t pid = 0;       // $pid: terminusd's
};

// One log_format (or an if= condition), compiled against MAPS (which
// must outlive it).
class CompiledFormat {
  public:
    static Result<CompiledFormat> compile(std::string_view value, config::LogEscape escape,
                                          const dataplane::proxy::Maps* maps);
    CompiledFormat(CompiledFormat&&) noexcept;
    CompiledFormat& operator=(CompiledFormat&&) noexcept;
    ~CompiledFormat();

    // Appends the line for R (no newline) to OUT.
    void format(const AccessRecord& r, const LogContext& ctx, std::string& out) const;
    // As a condition: false when the value is "" or "0".
    bool holds(const AccessRecord& r, const LogContext& ctx) const;

  private:
    enum class Var : uint8_t;
    struct Op;
    CompiledFormat();
    void value(const Op& op, const AccessRecord& r, const LogContext& ctx, std::string& out, bool& found) const;

    std::vector<Op> ops_;
    config::LogEscape escape_ = config::LogEscape::kDefault;
};

// Escapes V into OUT as log_format escape=ESCAPE says.
void append_escaped(std::string& out, std::string_view v, config::LogEscape escape);

// A configuration's access logs, compiled: for each server block, its
// access_log lines with their format and condition.
class LogConfig {
  public:
    struct Line {
        const config::AccessLog* log;  // into cfg
        const CompiledFormat* format;  // into formats_
        std::unique_ptr<CompiledFormat> condition;  // if=; null: always
    };

    // Error: what cannot be compiled (see access_log_problems), with the
    // file and line.
    static Result<std::unique_ptr<LogConfig>> build(std::shared_ptr<const config::Config> cfg);
    ~LogConfig();

    const config::Config& config() const { return *cfg_; }
    std::shared_ptr<const config::Config> shared() const { return cfg_; }
    uint64_t signature() const { return signature_; }
    // The lines of server block I (none when out of range).
    const std::vector<Line>& lines(size_t server) const;

  private:
    LogConfig();
    std::shared_ptr<const config::Config> cfg_;
    uint64_t signature_ = 0;
    std::unique_ptr<dataplane::proxy::Maps> maps_;
    std::vector<std::unique_ptr<CompiledFormat>> formats_;  // parallel to cfg.log_formats
    std::vector<std::vector<Line>> servers_;
};

// Checks a record read from shared memory before anything uses it:
// lengths within their fields, a known magic. (Indexes into a
// configuration are checked against the one it is formatted with.)
bool record_valid(const AccessRecord& r);

}  // namespace terminus::mgmt
