// nginx's value syntax: sizes (ngx_parse_size), times (ngx_parse_time),
// IPv4 addresses, and the printable names of the config's enums.
#include <charconv>
#include <cstdio>
#include <limits>

#include "config/config.h"

namespace terminus::config {

namespace {

// nginx keeps values in ngx_int_t/off_t; stay inside int64.
constexpr uint64_t kMaxValue = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// value = value * 10 + digit, refused past kMaxValue (nginx's cutoff/cutlim).
bool push_digit(uint64_t& value, char c) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (value > (kMaxValue - d) / 10) return false;
    value = value * 10 + d;
    return true;
}

Result<Millis> parse_time_impl(std::string_view text, bool is_sec) {
    // The units in the order nginx requires them, each at most once. In
    // millisecond mode nginx starts at "month", so "y" and "M" are refused.
    enum Step { kStart, kYear, kMonth, kWeek, kDay, kHour, kMin, kSec, kMsec, kLast };
    Step step = is_sec ? kStart : kMonth;
    uint64_t total_ms = 0;
    uint64_t value = 0;
    bool valid = false;

    auto bad = [&] {
        return make_error("invalid time \"" + std::string(text) + "\": expected a number with " +
                          (is_sec ? "units y M w d h m s" : "units w d h m s ms") +
                          " in that order, such as \"1h30m\"");
    };

    size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            if (!push_digit(value, c)) return bad();
            valid = true;
            ++i;
            continue;
        }
        ++i;
        Step next;
        uint64_t scale_ms;
        switch (c) {
            case 'y': next = kYear; scale_ms = 365ULL * 86400 * 1000; break;
            case 'M': next = kMonth; scale_ms = 30ULL * 86400 * 1000; break;
            case 'w': next = kWeek; scale_ms = 7ULL * 86400 * 1000; break;
            case 'd': next = kDay; scale_ms = 86400ULL * 1000; break;
            case 'h': next = kHour; scale_ms = 3600ULL * 1000; break;
            case 'm':
                if (i < text.size() && text[i] == 's') {
                    if (is_sec) return bad();
                    ++i;
                    next = kMsec;
                    scale_ms = 1;
                } else {
                    next = kMin;
                    scale_ms = 60ULL * 1000;
                }
                break;
            case 's': next = kSec; scale_ms = 1000; break;
            case ' ':
                // A number followed by a blank is seconds; nothing may follow.
                if (step >= kSec) return bad();
                next = kLast;
                scale_ms = 1000;
                break;
            default:
                return bad();
        }
        if (next != kLast && next <= step) return bad();
        step = next;
        if (value > kMaxValue / scale_ms) return bad();
        const uint64_t v = value * scale_ms;
        if (total_ms > kMaxValue - v) return bad();
        total_ms += v;
        value = 0;
        while (i < text.size() && text[i] == ' ') ++i;
    }
    if (!valid) return bad();
    // A trailing bare number is seconds.
    if (value > kMaxValue / 1000) return bad();
    if (total_ms > kMaxValue - value * 1000) return bad();
    total_ms += value * 1000;
    return Millis(static_cast<int64_t>(total_ms));
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
    auto bad = [&] {
        return make_error("invalid size \"" + std::string(text) +
                          "\": expected a number optionally followed by k, m or g, such as "
                          "\"16k\"");
    };
    if (text.empty()) return bad();
    uint64_t scale = 1;
    std::string_view digits = text;
    switch (text.back()) {
        case 'k':
        case 'K':
            scale = 1024;
            digits.remove_suffix(1);
            break;
        case 'm':
        case 'M':
            scale = 1024 * 1024;
            digits.remove_suffix(1);
            break;
        case 'g':
        case 'G':
            scale = 1024ULL * 1024 * 1024;
            digits.remove_suffix(1);
            break;
        default:
            break;
    }
    if (digits.empty()) return bad();
    uint64_t v = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return bad();
        if (!push_digit(v, c)) return bad();
    }
    if (v > kMaxValue / scale) return bad();
    return v * scale;
}

Result<Millis> parse_time(std::string_view text) { return parse_time_impl(text, false); }
Result<Millis> parse_seconds(std::string_view text) { return parse_time_impl(text, true); }

Result<uint32_t> parse_ipv4(std::string_view text) {
    uint32_t addr = 0;
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t j = i;
        unsigned v = 0;
        while (j < text.size() && text[j] >= '0' && text[j] <= '9' && j - i < 3) {
            v = v * 10 + static_cast<unsigned>(text[j] - '0');
            ++j;
        }
        if (j == i || v > 255 || (j - i > 1 && text[i] == '0')) break;
        addr = (addr << 8) | v;
        ++parts;
        i = j;
        if (parts < 4) {
            if (i >= text.size() || text[i] != '.') break;
            ++i;
        }
    }
    if (parts != 4 || i != text.size()) {
        return make_error("invalid IPv4 address \"" + std::string(text) + "\"");
    }
    return addr;
}

std::string ipv4_to_string(uint32_t a) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", (a >> 24) & 0xff, (a >> 16) & 0xff,
                  (a >> 8) & 0xff, a & 0xff);
    return buf;
}

std::string Diagnostic::to_string() const {
    std::string s = loc.file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) +
                    ": ";
    s += severity == Severity::kError ? "error: " : "warning: ";
    s += message;
    return s;
}

std::string PortConfig::devargs_string() const {
    std::string s = device;
    for (const auto& [k, v] : devargs) s += "," + k + "=" + v;
    return s;
}

const Upstream* Config::find_upstream(std::string_view name) const {
    for (const auto& u : upstreams) {
        if (u.name == name) return &u;
    }
    return nullptr;
}

const Map* Config::find_map(std::string_view variable) const {
    for (const auto& m : maps) {
        if (m.variable == variable) return &m;
    }
    return nullptr;
}

size_t LoadResult::error_count() const {
    size_t n = 0;
    for (const auto& d : diagnostics) n += d.severity == Severity::kError;
    return n;
}

size_t LoadResult::warning_count() const { return diagnostics.size() - error_count(); }

const char* to_string(BalanceMethod m) {
    switch (m) {
        case BalanceMethod::kRoundRobin: return "round_robin";
        case BalanceMethod::kLeastConn: return "least_conn";
        case BalanceMethod::kHash: return "hash";
        case BalanceMethod::kRandom: return "random";
    }
    return "?";
}

const char* to_string(CryptoBackend c) {
    switch (c) {
        case CryptoBackend::kIpsecMb: return "ipsec_mb";
        case CryptoBackend::kOpenssl: return "openssl";
        case CryptoBackend::kCryptodev: return "cryptodev";
    }
    return "?";
}

const char* to_string(CongestionControl c) {
    return c == CongestionControl::kCubic ? "cubic" : "newreno";
}

const char* to_string(LogLevel l) {
    static const char* const kNames[] = {"debug", "info", "notice", "warn",
                                         "error", "crit", "alert",  "emerg"};
    return kNames[static_cast<int>(l)];
}

std::string tls_protocols_to_string(uint8_t mask) {
    std::string s;
    auto add = [&](TlsVersion v, const char* name) {
        if (mask & static_cast<uint8_t>(v)) {
            if (!s.empty()) s += ' ';
            s += name;
        }
    };
    add(TlsVersion::kTls1, "TLSv1");
    add(TlsVersion::kTls11, "TLSv1.1");
    add(TlsVersion::kTls12, "TLSv1.2");
    add(TlsVersion::kTls13, "TLSv1.3");
    return s;
}

}  // namespace terminus::config
