#include "mgmt/access_log_record.h"

#include <algorithm>
#include <cstring>

namespace terminus::mgmt {

const char* const kAccessLogVariables[] = {
    "remote_addr",     "remote_port",      "server_addr",          "server_port",
    "protocol",        "status",           "bytes_sent",           "bytes_received",
    "session_time",    "connection",       "hostname",             "pid",
    "msec",            "time_local",       "time_iso8601",         "nginx_version",
    "ssl_protocol",    "ssl_cipher",       "ssl_server_name",      "ssl_session_reused",
    "ssl_preread_server_name", "ssl_preread_alpn_protocols", "ssl_preread_protocol",
    "upstream_addr",   "upstream_connect_time", "upstream_bytes_sent", "upstream_bytes_received",
    "upstream_session_time",
};
const size_t kAccessLogVariableCount = std::size(kAccessLogVariables);

bool is_access_log_variable(std::string_view name) {
    return std::any_of(std::begin(kAccessLogVariables), std::end(kAccessLogVariables),
                       [&](const char* v) { return name == v; });
}

Result<std::vector<LogPart>> split_log_value(std::string_view v) {
    auto name_char = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    };
    std::vector<LogPart> parts;
    std::string text;
    for (size_t i = 0; i < v.size();) {
        if (v[i] != '$') {
            text += v[i++];
            continue;
        }
        size_t j = i + 1;
        const bool braced = j < v.size() && v[j] == '{';
        if (braced) ++j;
        const size_t start = j;
        while (j < v.size() && name_char(v[j])) ++j;
        if (j == start) return make_error("invalid variable name in \"" + std::string(v) + "\"");
        const std::string name(v.substr(start, j - start));
        if (braced) {
            if (j == v.size() || v[j] != '}') {
                return make_error("the closing bracket in \"" + std::string(v.substr(i)) + "\" is missing");
            }
            ++j;
        }
        if (!text.empty()) parts.push_back({false, std::move(text)});
        text.clear();
        parts.push_back({true, name});
        i = j;
    }
    if (!text.empty()) parts.push_back({false, std::move(text)});
    return parts;
}

std::string access_log_path(const std::string& instance) { return "/dev/shm/terminus-" + instance + ".log"; }

uint32_t access_log_ring_count(uint64_t bytes) {
    uint64_t n = bytes / sizeof(AccessRecord);
    uint32_t count = 8;
    while (uint64_t{count} * 2 <= n && count < (1u << 24)) count *= 2;
    return count;
}

namespace {

// FNV-1a, 64 bits, over each field and its length (so that "ab","c" and
// "a","bc" differ).
struct Hash {
    uint64_t h = 0xcbf29ce484222325ull;
    void bytes(const void* p, size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (size_t i = 0; i < n; ++i) {
            h ^= b[i];
            h *= 0x100000001b3ull;
        }
    }
    void u64(uint64_t v) { bytes(&v, sizeof v); }
    void str(const std::string& s) {
        u64(s.size());
        bytes(s.data(), s.size());
    }
};

}  // namespace

uint64_t access_log_signature(const config::Config& cfg) {
    Hash h;
    h.u64(cfg.log_formats.size());
    for (const auto& f : cfg.log_formats) {
        h.str(f.name);
        h.u64(static_cast<uint64_t>(f.escape));
        h.str(f.format);
    }
    h.u64(cfg.maps.size());
    for (const auto& m : cfg.maps) {
        h.str(m.source);
        h.str(m.variable);
        h.u64(m.hostnames);
        h.str(m.default_value);
        h.u64(m.entries.size());
        for (const auto& e : m.entries) {
            h.str(e.key);
            h.str(e.value);
            h.u64(e.regex | (e.caseless << 1));
        }
    }
    h.u64(cfg.servers.size());
    for (const auto& srv : cfg.servers) {
        const auto& logs = srv.settings.access_log;
        h.u64(logs.size());
        for (const auto& l : logs) {
            h.str(l.path);
            h.str(l.format);
            h.u64(l.buffer);
            h.u64(static_cast<uint64_t>(l.flush.count()));
            h.u64(static_cast<uint64_t>(l.gzip_level));
            h.str(l.if_condition);
        }
    }
    return h.h;
}

}  // namespace terminus::mgmt
