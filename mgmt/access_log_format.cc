#include "mgmt/access_log_format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "dataplane/proxy/client_hello.h"
#include "dataplane/proxy/variables.h"

namespace terminus::mgmt {

namespace proxy = dataplane::proxy;

enum class CompiledFormat::Var : uint8_t {
    kText,
    kExpression,  // the dataplane's: $binary_remote_addr, $proxy_protocol_*, maps
    kRemoteAddr,
    kRemotePort,
    kServerAddr,
    kServerPort,
    kProtocol,
    kStatus,
    kBytesSent,
    kBytesReceived,
    kSessionTime,
    kConnection,
    kHostname,
    kPid,
    kMsec,
    kTimeLocal,
    kTimeIso8601,
    kNginxVersion,
    kSslProtocol,
    kSslCipher,
    kSslServerName,
    kSslSessionReused,
    kPrereadServerName,
    kPrereadAlpnProtocols,
    kPrereadProtocol,
    kUpstreamAddr,
    kUpstreamConnectTime,
    kUpstreamBytesSent,
    kUpstreamBytesReceived,
    kUpstreamSessionTime,
};

struct CompiledFormat::Op {
    Var var = Var::kText;
    std::string text;
    std::optional<proxy::Expression> expr;
};

namespace {

// nginx's names for TLS versions (SSL_get_version, and the preread's).
const char* version_name(uint16_t v) {
    switch (v) {
        case 0x0002: return "SSLv2";
        case 0x0300: return "SSLv3";
        case 0x0301: return "TLSv1";
        case 0x0302: return "TLSv1.1";
        case 0x0303: return "TLSv1.2";
        case 0x0304: return "TLSv1.3";
        default: return nullptr;
    }
}

void put_uint(std::string& out, uint64_t v) {
    char b[20];
    size_t n = 0;
    do {
        b[sizeof b - ++n] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    out.append(b + sizeof b - n, n);
}

void put_ipv4(std::string& out, uint32_t ip) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        put_uint(out, (ip >> shift) & 255);
        if (shift) out += '.';
    }
}

// nginx's "%T.%03M": seconds with milliseconds.
void put_msec(std::string& out, uint64_t ms) {
    put_uint(out, ms / 1000);
    const auto frac = static_cast<unsigned>(ms % 1000);
    const char b[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                       static_cast<char>('0' + frac % 10)};
    out.append(b, 4);
}

// The local time of the session's end, as $time_local or $time_iso8601,
// made once a second (localtime_r is most of a line's cost otherwise).
void put_time(std::string& out, uint64_t unix_us, bool iso) {
    struct Cache {
        time_t t = -1;
        char text[64];
        size_t len = 0;
    };
    thread_local Cache cache[2];
    Cache& c = cache[iso];
    const time_t t = static_cast<time_t>(unix_us / 1'000'000);
    if (c.t != t) {
        tm lt{};
        ::localtime_r(&t, &lt);
        size_t n = std::strftime(c.text, sizeof c.text, iso ? "%Y-%m-%dT%H:%M:%S" : "%d/%b/%Y:%H:%M:%S ", &lt);
        const long off = lt.tm_gmtoff;
        const long a = off < 0 ? -off : off;
        const int w = std::snprintf(c.text + n, sizeof c.text - n, iso ? "%c%02ld:%02ld" : "%c%02ld%02ld",
                                    off < 0 ? '-' : '+', a / 3600, (a % 3600) / 60);
        if (w > 0) n += static_cast<size_t>(w);
        c.len = n;
        c.t = t;
    }
    out.append(c.text, c.len);
}

// What the dataplane's expressions read, rebuilt from the record.
struct Vars {
    proxy::ClientHelloInfo hello;
    char pp_src[16] = {}, pp_dst[16] = {};
    proxy::SessionVars v;

    explicit Vars(const AccessRecord& r) {
        const bool real = (r.flags & kRecordRealIp) && (r.flags & kRecordProxyHeader);
        v.remote_addr = real ? r.pp_src_addr : r.remote_addr;
        v.remote_port = real ? r.pp_src_port : r.remote_port;
        v.server_addr = r.server_addr;
        v.server_port = r.server_port;
        if (r.flags & kRecordPreread) {
            hello.version = r.preread_version;
            const char* p = version_name(r.preread_version);
            hello.protocol_name = p ? p : "";
            std::memcpy(hello.server_name_buf, r.name, r.name_len);
            hello.server_name_len = r.name_len;
            std::memcpy(hello.alpn_buf, r.alpn, r.alpn_len);
            hello.alpn_len = r.alpn_len;
            hello.alpn_truncated = r.flags & kRecordAlpnTruncated;
            v.preread = &hello;
        }
        if (r.flags & kRecordTls) v.ssl_server_name = std::string_view(r.name, r.name_len);
        if (r.flags & kRecordProxyHeader) {
            auto text = [](char (&out)[16], uint32_t ip) {
                std::snprintf(out, sizeof out, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
            };
            text(pp_src, r.pp_src_addr);
            text(pp_dst, r.pp_dst_addr);
            v.has_proxy_protocol = true;
            v.proxy_protocol_addr = pp_src;
            v.proxy_protocol_port = r.pp_src_port;
            v.proxy_protocol_server_addr = pp_dst;
            v.proxy_protocol_server_port = r.pp_dst_port;
        }
    }
};

}  // namespace

void append_escaped(std::string& out, std::string_view v, config::LogEscape escape) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    switch (escape) {
        case config::LogEscape::kNone: out.append(v); return;
        case config::LogEscape::kDefault:
            // ngx_stream_log_escape: '"', '\', 0x00-0x1f, 0x7f-0xff.
            for (char ch : v) {
                const auto c = static_cast<unsigned char>(ch);
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                    const char e[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
                    out.append(e, 4);
                } else {
                    out += ch;
                }
            }
            return;
        case config::LogEscape::kJson:
            // ngx_escape_json.
            for (char ch : v) {
                const auto c = static_cast<unsigned char>(ch);
                if (c > 0x1f) {
                    if (c == '"' || c == '\\') out += '\\';
                    out += ch;
                    continue;
                }
                out += '\\';
                switch (c) {
                    case '\n': out += 'n'; break;
                    case '\r': out += 'r'; break;
                    case '\t': out += 't'; break;
                    case '\b': out += 'b'; break;
                    case '\f': out += 'f'; break;
                    default: {
                        const char e[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
                        out.append(e, 5);
                    }
                }
            }
            return;
    }
}

CompiledFormat::CompiledFormat() = default;
CompiledFormat::CompiledFormat(CompiledFormat&&) noexcept = default;
CompiledFormat& CompiledFormat::operator=(CompiledFormat&&) noexcept = default;
CompiledFormat::~CompiledFormat() = default;

Result<CompiledFormat> CompiledFormat::compile(std::string_view value, config::LogEscape escape,
                                               const proxy::Maps* maps) {
    static constexpr Var kOwn[] = {
        Var::kRemoteAddr,        Var::kRemotePort,          Var::kServerAddr,        Var::kServerPort,
        Var::kProtocol,          Var::kStatus,              Var::kBytesSent,         Var::kBytesReceived,
        Var::kSessionTime,       Var::kConnection,          Var::kHostname,          Var::kPid,
        Var::kMsec,              Var::kTimeLocal,           Var::kTimeIso8601,       Var::kNginxVersion,
        Var::kSslProtocol,       Var::kSslCipher,           Var::kSslServerName,     Var::kSslSessionReused,
        Var::kPrereadServerName, Var::kPrereadAlpnProtocols, Var::kPrereadProtocol,  Var::kUpstreamAddr,
        Var::kUpstreamConnectTime, Var::kUpstreamBytesSent, Var::kUpstreamBytesReceived, Var::kUpstreamSessionTime,
    };
    static_assert(std::size(kOwn) == 28, "one Var per name of kAccessLogVariables");
    auto parts = split_log_value(value);
    if (!parts) return make_error(parts.error());
    CompiledFormat f;
    f.escape_ = escape;
    for (auto& p : *parts) {
        Op op;
        if (!p.variable) {
            op.text = std::move(p.text);
            f.ops_.push_back(std::move(op));
            continue;
        }
        size_t i = 0;
        while (i < kAccessLogVariableCount && p.text != kAccessLogVariables[i]) ++i;
        if (i < kAccessLogVariableCount) {
            op.var = kOwn[i];
        } else {
            auto e = proxy::Expression::compile("$" + p.text, maps);
            if (!e) return make_error("the access log cannot write " + e.error());
            op.var = Var::kExpression;
            op.expr.emplace(std::move(*e));
        }
        f.ops_.push_back(std::move(op));
    }
    return f;
}

void CompiledFormat::value(const Op& op, const AccessRecord& r, const LogContext& ctx, std::string& out,
                           bool& found) const {
    found = true;
    const bool tls_done = r.flags & kRecordTlsDone;
    auto list = [&](auto&& each) {
        if (r.n_upstreams == 0) {
            found = false;
            return;
        }
        for (unsigned i = 0; i < r.n_upstreams; ++i) {
            if (i) out += ", ";
            each(r.upstreams[i], i + 1 == r.n_upstreams);
        }
    };
    switch (op.var) {
        case Var::kText: out += op.text; return;
        case Var::kExpression: {
            const Vars vars(r);
            char buf[4096];
            const size_t n = op.expr->evaluate(vars.v, buf, sizeof buf);
            out.append(buf, std::min(n, sizeof buf));
            return;
        }
        case Var::kRemoteAddr:
            put_ipv4(out, (r.flags & kRecordRealIp) && (r.flags & kRecordProxyHeader) ? r.pp_src_addr : r.remote_addr);
            return;
        case Var::kRemotePort:
            put_uint(out, (r.flags & kRecordRealIp) && (r.flags & kRecordProxyHeader) ? r.pp_src_port : r.remote_port);
            return;
        case Var::kServerAddr: put_ipv4(out, r.server_addr); return;
        case Var::kServerPort: put_uint(out, r.server_port); return;
        case Var::kProtocol: out += "TCP"; return;
        case Var::kStatus: put_uint(out, r.status); return;
        case Var::kBytesSent: put_uint(out, r.bytes_sent); return;
        case Var::kBytesReceived: put_uint(out, r.bytes_received); return;
        case Var::kSessionTime:
            put_msec(out, r.end_us / 1000 >= r.start_us / 1000 ? r.end_us / 1000 - r.start_us / 1000 : 0);
            return;
        case Var::kConnection: put_uint(out, r.connection); return;
        case Var::kHostname: out += ctx.hostname; return;
        case Var::kPid: put_uint(out, static_cast<uint64_t>(ctx.pid)); return;
        case Var::kMsec: put_msec(out, r.end_us / 1000); return;
        case Var::kTimeLocal: put_time(out, r.end_us, false); return;
        case Var::kTimeIso8601: put_time(out, r.end_us, true); return;
        case Var::kNginxVersion: out += ctx.version; return;
        case Var::kSslProtocol: {
            const char* v = tls_done ? version_name(r.ssl_version) : nullptr;
            if (v) {
                out += v;
            } else {
                found = false;
            }
            return;
        }
        case Var::kSslCipher:
            if (tls_done) {
                out.append(r.cipher, r.cipher_len);
            } else {
                found = false;
            }
            return;
        case Var::kSslServerName:
            if (r.flags & kRecordTls) {
                out.append(r.name, r.name_len);
            } else {
                found = false;
            }
            return;
        case Var::kSslSessionReused:
            if (r.flags & kRecordTls) {
                out += (r.flags & kRecordSessionReused) ? "r" : ".";
            } else {
                found = false;
            }
            return;
        case Var::kPrereadServerName:
        case Var::kPrereadAlpnProtocols:
        case Var::kPrereadProtocol:
            // nginx: the preread's values when it ran (empty when the hello
            // did not say), not found when the server does not preread.
            if (!(r.flags & (kRecordPreread | kRecordPrereadRan))) {
                found = false;
            } else if (r.flags & kRecordPreread) {
                if (op.var == Var::kPrereadServerName) out.append(r.name, r.name_len);
                if (op.var == Var::kPrereadAlpnProtocols) out.append(r.alpn, r.alpn_len);
                if (op.var == Var::kPrereadProtocol) {
                    if (const char* v = version_name(r.preread_version)) out += v;
                }
            }
            return;
        case Var::kUpstreamAddr:
            list([&](const AccessRecord::Upstream& u, bool) {
                put_ipv4(out, u.addr);
                out += ':';
                put_uint(out, u.port);
            });
            return;
        case Var::kUpstreamConnectTime:
            list([&](const AccessRecord::Upstream& u, bool) {
                if (u.connect_us == UINT32_MAX) {
                    out += '-';
                } else {
                    put_msec(out, u.connect_us / 1000);
                }
            });
            return;
        case Var::kUpstreamBytesSent:
            list([&](const AccessRecord::Upstream&, bool last) { put_uint(out, last ? r.upstream_bytes_sent : 0); });
            return;
        case Var::kUpstreamBytesReceived:
            list([&](const AccessRecord::Upstream&, bool last) {
                put_uint(out, last ? r.upstream_bytes_received : 0);
            });
            return;
        case Var::kUpstreamSessionTime:
            list([&](const AccessRecord::Upstream& u, bool last) {
                if (!last || u.connect_us == UINT32_MAX) {
                    out += '-';
                    return;
                }
                const uint64_t from_ms = (r.start_us + u.start_us) / 1000, to_ms = r.end_us / 1000;
                put_msec(out, to_ms > from_ms ? to_ms - from_ms : 0);
            });
            return;
    }
}

void CompiledFormat::format(const AccessRecord& r, const LogContext& ctx, std::string& out) const {
    std::string v;
    for (const Op& op : ops_) {
        if (op.var == Var::kText) {
            out += op.text;
            continue;
        }
        v.clear();
        bool found = true;
        value(op, r, ctx, v, found);
        if (!found) {
            // nginx: "-" for a variable without a value, unless escaping is
            // json or none.
            if (escape_ == config::LogEscape::kDefault) out += '-';
            continue;
        }
        append_escaped(out, v, escape_);
    }
}

bool CompiledFormat::holds(const AccessRecord& r, const LogContext& ctx) const {
    std::string v;
    for (const Op& op : ops_) {
        bool found = true;
        value(op, r, ctx, v, found);  // a value not found is empty
    }
    return !v.empty() && v != "0";
}

bool record_valid(const AccessRecord& r) {
    return r.magic == kAccessRecordMagic && r.n_upstreams <= kMaxUpstreamTries && r.alpn_len <= sizeof r.alpn &&
           r.cipher_len <= sizeof r.cipher;
}

// ---------------------------------------------------------------------------
// LogConfig

LogConfig::LogConfig() = default;
LogConfig::~LogConfig() = default;

Result<std::unique_ptr<LogConfig>> LogConfig::build(std::shared_ptr<const config::Config> cfg) {
    std::unique_ptr<LogConfig> lc(new LogConfig());
    lc->cfg_ = std::move(cfg);
    const config::Config& c = *lc->cfg_;
    lc->signature_ = access_log_signature(c);
    auto maps = proxy::Maps::build(c);
    if (!maps) return make_error(maps.error());
    lc->maps_ = std::move(*maps);
    auto where = [](const config::Location& l) { return l.file + ":" + std::to_string(l.line) + ": "; };
    for (const auto& f : c.log_formats) {
        auto cf = CompiledFormat::compile(f.format, f.escape, lc->maps_.get());
        if (!cf) return make_error(where(f.loc) + "log_format \"" + f.name + "\": " + cf.error());
        lc->formats_.push_back(std::make_unique<CompiledFormat>(std::move(*cf)));
    }
    lc->servers_.resize(c.servers.size());
    for (size_t s = 0; s < c.servers.size(); ++s) {
        const auto& logs = c.servers[s].settings.access_log;
        for (size_t i = 0; i < logs.size() && i < kMaxAccessLogsPerServer; ++i) {
            const config::AccessLog& l = logs[i];
            Line line{&l, nullptr, nullptr};
            for (size_t f = 0; f < c.log_formats.size(); ++f) {
                if (c.log_formats[f].name == l.format) line.format = lc->formats_[f].get();
            }
            if (!line.format) return make_error(where(l.loc) + "unknown log format \"" + l.format + "\"");
            if (l.gzip_level > 0) return make_error(where(l.loc) + "\"access_log ... gzip\" is not implemented");
            if (!l.if_condition.empty()) {
                auto cond = CompiledFormat::compile(l.if_condition, config::LogEscape::kNone, lc->maps_.get());
                if (!cond) return make_error(where(l.loc) + "access_log if=" + l.if_condition + ": " + cond.error());
                line.condition = std::make_unique<CompiledFormat>(std::move(*cond));
            }
            lc->servers_[s].push_back(std::move(line));
        }
    }
    return lc;
}

const std::vector<LogConfig::Line>& LogConfig::lines(size_t server) const {
    static const std::vector<Line> kNone;
    return server < servers_.size() ? servers_[server] : kNone;
}

}  // namespace terminus::mgmt
