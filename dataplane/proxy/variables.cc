#include "dataplane/proxy/variables.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

namespace terminus::dataplane::proxy {

namespace {

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// nginx's ngx_tolower: ASCII only.
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

using Keyed = std::vector<std::pair<std::string, uint32_t>>;

// Sorted by key; of equal keys the first written stays (nginx refuses
// duplicates, which the configuration mostly does already).
void sort_keys(Keyed& v) {
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    v.erase(std::unique(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
            v.end());
}

// The value index for KEY, or -1.
int find_key(const Keyed& v, std::string_view key) {
    auto it = std::lower_bound(v.begin(), v.end(), key,
                               [](const auto& e, std::string_view k) { return std::string_view(e.first) < k; });
    return it != v.end() && it->first == key ? static_cast<int>(it->second) : -1;
}

// "$12345" as a group number; past any group PCRE2 allows, none.
uint32_t group_number(std::string_view digits) {
    uint32_t n = 0;
    for (char c : digits) {
        n = n * 10 + static_cast<uint32_t>(c - '0');
        if (n > 65535) return UINT32_MAX;
    }
    return n;
}

}  // namespace

// ---------------------------------------------------------------------------
// Expression

struct Expression::Out {
    char* p;
    size_t cap;
    size_t len = 0;

    void put(const char* s, size_t n) {
        if (len < cap) std::memcpy(p + len, s, std::min(n, cap - len));
        len += n;
    }
    void put(std::string_view v) { put(v.data(), v.size()); }
    void put_uint(uint32_t v) {
        char b[10];
        size_t n = 0;
        do {
            b[sizeof b - ++n] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v);
        put(b + sizeof b - n, n);
    }
    void put_ipv4(uint32_t ip) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            put_uint((ip >> shift) & 0xff);
            if (shift) put(".", 1);
        }
    }
};

// The groups of the regex entry whose value is being evaluated.
struct Expression::Captures {
    const char* subject;
    const PCRE2_SIZE* ovector;
    uint32_t pairs;
};

struct Expression::CaptureNames {
    std::vector<std::pair<std::string, uint32_t>> names;
};

Result<Expression> Expression::parse(std::string_view value, const Maps* maps, const CaptureNames* names,
                                     bool captures_allowed) {
    static constexpr struct {
        std::string_view name;
        Kind kind;
    } kBuiltins[] = {
        {"remote_addr", Kind::kRemoteAddr},
        {"remote_port", Kind::kRemotePort},
        {"binary_remote_addr", Kind::kBinaryRemoteAddr},
        {"server_addr", Kind::kServerAddr},
        {"server_port", Kind::kServerPort},
        {"ssl_preread_server_name", Kind::kPrereadServerName},
        {"ssl_preread_alpn_protocols", Kind::kPrereadAlpnProtocols},
        {"ssl_preread_protocol", Kind::kPrereadProtocol},
        {"ssl_server_name", Kind::kSslServerName},
        {"proxy_protocol_addr", Kind::kProxyProtocolAddr},
        {"proxy_protocol_port", Kind::kProxyProtocolPort},
        {"proxy_protocol_server_addr", Kind::kProxyProtocolServerAddr},
        {"proxy_protocol_server_port", Kind::kProxyProtocolServerPort},
        {"protocol", Kind::kProtocol},
    };

    Expression e;
    e.text_ = std::string(value);
    e.maps_ = maps;
    std::string text;
    auto flush = [&] {
        if (text.empty()) return;
        e.parts_.push_back(Part{Kind::kText, 0, text});
        text.clear();
    };
    auto capture = [&](uint32_t group, std::string_view written) {
        if (captures_allowed) {
            e.parts_.push_back(Part{Kind::kCapture, group, {}});
            return;
        }
        e.parts_.push_back(Part{Kind::kEmpty, 0, {}});
        if (e.unsupported_.empty()) {
            e.unsupported_ = dq(written) + " is a regex capture, set only in the value of a map's regex entry";
        }
    };

    for (size_t i = 0; i < value.size();) {
        if (value[i] != '$') {
            text += value[i++];
            continue;
        }
        size_t j = i + 1;
        if (j == value.size()) return make_error("invalid variable name in " + dq(value) + ": \"$\" at the end");
        flush();
        // nginx: "$1".."$9" are one digit each ("$12" is $1, then "2").
        if (value[j] >= '1' && value[j] <= '9') {
            capture(static_cast<uint32_t>(value[j] - '0'), value.substr(i, 2));
            i = j + 1;
            continue;
        }
        const bool braced = value[j] == '{';
        if (braced) ++j;
        const size_t start = j;
        while (j < value.size() && name_char(value[j])) ++j;
        const std::string_view name = value.substr(start, j - start);
        if (braced) {
            if (j == value.size() || value[j] != '}') {
                return make_error("the closing bracket in " + dq(value.substr(i)) + " is missing");
            }
            ++j;
        }
        if (name.empty()) return make_error("invalid variable name in " + dq(value));
        const std::string_view written = value.substr(i, j - i);
        i = j;

        if (std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            capture(group_number(name), written);
            continue;
        }
        if (names) {
            auto it = std::find_if(names->names.begin(), names->names.end(),
                                   [&](const auto& n) { return n.first == name; });
            if (it != names->names.end()) {
                e.parts_.push_back(Part{Kind::kCapture, it->second, {}});
                continue;
            }
        }
        auto b = std::find_if(std::begin(kBuiltins), std::end(kBuiltins),
                              [&](const auto& v) { return v.name == name; });
        if (b != std::end(kBuiltins)) {
            e.parts_.push_back(Part{b->kind, 0, {}});
            continue;
        }
        if (maps) {
            const int m = maps->find(name);
            if (m >= 0) {
                e.parts_.push_back(Part{Kind::kMap, static_cast<uint32_t>(m), {}});
                continue;
            }
        }
        e.parts_.push_back(Part{Kind::kEmpty, 0, {}});
        if (e.unsupported_.empty()) e.unsupported_ = dq(written) + " is not a variable Terminus evaluates";
    }
    flush();
    return e;
}

Result<Expression> Expression::compile(std::string_view value, const Maps* maps) {
    auto e = parse(value, maps, nullptr, false);
    if (!e) return e;
    if (!e->unsupported_.empty()) return make_error(dq(value) + ": " + e->unsupported_);
    for (const Part& p : e->parts_) {
        if (p.kind != Kind::kMap) continue;
        const std::string& why = maps->problem(static_cast<int>(p.arg));
        if (!why.empty()) return make_error(dq(value) + ": " + why);
    }
    return e;
}

bool Expression::is_constant() const {
    return std::all_of(parts_.begin(), parts_.end(), [](const Part& p) { return p.kind == Kind::kText; });
}

size_t Expression::evaluate(const SessionVars& vars, char* out, size_t cap) const {
    Out o{out, cap};
    eval(vars, o, nullptr, 0);
    return o.len;
}

void Expression::eval(const SessionVars& v, Out& out, const Captures* caps, unsigned depth) const {
    for (const Part& p : parts_) {
        switch (p.kind) {
            case Kind::kText: out.put(p.text); break;
            case Kind::kRemoteAddr: out.put_ipv4(v.remote_addr); break;
            case Kind::kRemotePort: out.put_uint(v.remote_port); break;
            case Kind::kBinaryRemoteAddr: {
                const char b[4] = {static_cast<char>(v.remote_addr >> 24), static_cast<char>(v.remote_addr >> 16),
                                   static_cast<char>(v.remote_addr >> 8), static_cast<char>(v.remote_addr)};
                out.put(b, sizeof b);
                break;
            }
            case Kind::kServerAddr: out.put_ipv4(v.server_addr); break;
            case Kind::kServerPort: out.put_uint(v.server_port); break;
            case Kind::kPrereadServerName:
                if (v.preread) out.put(v.preread->server_name());
                break;
            case Kind::kPrereadAlpnProtocols:
                if (v.preread) out.put(v.preread->alpn_protocols());
                break;
            case Kind::kPrereadProtocol:
                if (v.preread) out.put(v.preread->protocol());
                break;
            case Kind::kSslServerName: out.put(v.ssl_server_name); break;
            case Kind::kProxyProtocolAddr:
                if (v.has_proxy_protocol) out.put(v.proxy_protocol_addr);
                break;
            case Kind::kProxyProtocolPort:
                if (v.has_proxy_protocol) out.put_uint(v.proxy_protocol_port);
                break;
            case Kind::kProxyProtocolServerAddr:
                if (v.has_proxy_protocol) out.put(v.proxy_protocol_server_addr);
                break;
            case Kind::kProxyProtocolServerPort:
                if (v.has_proxy_protocol) out.put_uint(v.proxy_protocol_server_port);
                break;
            case Kind::kProtocol: out.put("TCP", 3); break;
            case Kind::kMap: maps_->eval(static_cast<int>(p.arg), v, out, depth + 1); break;
            case Kind::kCapture:
                // An unset group (an alternative that did not take part)
                // is empty, as in nginx.
                if (caps && p.arg < caps->pairs && caps->ovector[2 * p.arg] != PCRE2_UNSET) {
                    const PCRE2_SIZE from = caps->ovector[2 * p.arg], to = caps->ovector[2 * p.arg + 1];
                    if (to >= from) out.put(caps->subject + from, to - from);
                }
                break;
            case Kind::kEmpty: break;
        }
    }
}

// ---------------------------------------------------------------------------
// Maps

struct Maps::Regex {
    struct CodeFree {
        void operator()(pcre2_code* c) const { pcre2_code_free(c); }
    };
    struct MatchFree {
        void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
    };
    std::unique_ptr<pcre2_code, CodeFree> code;
    // This core's: pcre2_match writes the groups here.
    std::unique_ptr<pcre2_match_data, MatchFree> match;
    uint32_t value = 0;
};

struct Maps::Map {
    // A key ".example.com" or "*.example.com", stored as ".example.com":
    // which value the host example.com itself gets, and which its
    // subdomains get (-1: none).
    struct Head {
        std::string suffix;
        int itself = -1;
        int below = -1;
    };

    std::string name;
    bool hostnames = false;
    std::vector<Expression> exprs;  // [0]: the source; then the values
    uint32_t default_value = 0;     // into exprs
    Keyed exact;                    // lowercased key -> value
    std::vector<Head> head;         // sorted by suffix
    Keyed tail;                     // "www.example." for "www.example.*"
    std::vector<Regex> regexes;     // in the order written
    std::string problem;
};

Maps::Maps() = default;
Maps::~Maps() = default;

int Maps::find(std::string_view name) const {
    for (size_t i = 0; i < maps_.size(); ++i) {
        if (maps_[i].name == name) return static_cast<int>(i);
    }
    return -1;
}

const std::string& Maps::problem(int i) const { return maps_[static_cast<size_t>(i)].problem; }

Result<std::unique_ptr<Maps>> Maps::build(const config::Config& cfg) {
    std::unique_ptr<Maps> maps(new Maps());
    maps->maps_.resize(cfg.maps.size());
    // Every name first: a value may use a map defined further down.
    for (size_t i = 0; i < cfg.maps.size(); ++i) maps->maps_[i].name = cfg.maps[i].variable;

    for (size_t i = 0; i < cfg.maps.size(); ++i) {
        const config::Map& c = cfg.maps[i];
        Map& m = maps->maps_[i];
        const std::string where =
            c.loc.file + ":" + std::to_string(c.loc.line) + ": map " + dq("$" + c.variable) + ": ";
        m.hostnames = c.hostnames;
        auto source = Expression::parse(c.source, maps.get(), nullptr, false);
        if (!source) return make_error(where + source.error());
        m.exprs.push_back(std::move(*source));

        std::vector<std::pair<std::string, int>> heads_itself, heads_below;
        for (const config::MapEntry& e : c.entries) {
            const uint32_t index = static_cast<uint32_t>(m.exprs.size());
            if (e.regex) {
                Regex r;
                int err = 0;
                PCRE2_SIZE off = 0;
                r.code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(e.key.data()), e.key.size(),
                                           e.caseless ? PCRE2_CASELESS : 0, &err, &off, nullptr));
                if (!r.code) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(err, msg, sizeof msg);
                    return make_error(where + "regex " + dq(e.key) + ": " + reinterpret_cast<const char*>(msg));
                }
                pcre2_jit_compile(r.code.get(), PCRE2_JIT_COMPLETE);  // the interpreter otherwise
                r.match.reset(pcre2_match_data_create_from_pattern(r.code.get(), nullptr));
                if (!r.match) return make_error(where + "out of memory");
                Expression::CaptureNames names;
                uint32_t count = 0, entry_size = 0;
                PCRE2_SPTR table = nullptr;
                pcre2_pattern_info(r.code.get(), PCRE2_INFO_NAMECOUNT, &count);
                pcre2_pattern_info(r.code.get(), PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
                pcre2_pattern_info(r.code.get(), PCRE2_INFO_NAMETABLE, &table);
                for (uint32_t k = 0; k < count; ++k) {
                    // Each entry: the group number in two bytes, then the name.
                    const PCRE2_SPTR entry = table + k * entry_size;
                    names.names.emplace_back(reinterpret_cast<const char*>(entry + 2),
                                             static_cast<uint32_t>(entry[0] << 8 | entry[1]));
                }
                auto value = Expression::parse(e.value, maps.get(), &names, true);
                if (!value) return make_error(where + value.error());
                m.exprs.push_back(std::move(*value));
                r.value = index;
                m.regexes.push_back(std::move(r));
                continue;
            }
            auto value = Expression::parse(e.value, maps.get(), nullptr, false);
            if (!value) return make_error(where + value.error());
            m.exprs.push_back(std::move(*value));
            std::string key = e.key;
            std::transform(key.begin(), key.end(), key.begin(), lower);
            // nginx's three wildcard forms (ngx_hash_add_key with
            // NGX_HASH_WILDCARD_KEY); any other key is exact.
            if (m.hostnames && key.size() > 1 && key[0] == '.') {
                heads_itself.emplace_back(key, index);
                heads_below.emplace_back(key, index);
            } else if (m.hostnames && key.size() > 2 && key[0] == '*' && key[1] == '.') {
                heads_below.emplace_back(key.substr(1), index);
            } else if (m.hostnames && key.size() > 2 && key.ends_with(".*")) {
                m.tail.emplace_back(key.substr(0, key.size() - 1), index);
            } else {
                m.exact.emplace_back(std::move(key), index);
            }
        }
        auto value = Expression::parse(c.default_value, maps.get(), nullptr, false);
        if (!value) return make_error(where + "default: " + value.error());
        m.default_value = static_cast<uint32_t>(m.exprs.size());
        m.exprs.push_back(std::move(*value));

        sort_keys(m.exact);
        sort_keys(m.tail);
        auto head = [&](const std::string& suffix) -> Map::Head& {
            auto it = std::find_if(m.head.begin(), m.head.end(),
                                   [&](const Map::Head& h) { return h.suffix == suffix; });
            if (it != m.head.end()) return *it;
            m.head.push_back(Map::Head{suffix});
            return m.head.back();
        };
        for (const auto& [s, v] : heads_itself) {
            Map::Head& h = head(s);
            if (h.itself < 0) h.itself = v;
        }
        for (const auto& [s, v] : heads_below) {
            Map::Head& h = head(s);
            if (h.below < 0) h.below = v;
        }
        std::sort(m.head.begin(), m.head.end(),
                  [](const Map::Head& a, const Map::Head& b) { return a.suffix < b.suffix; });
    }
    maps->find_problems();
    return maps;
}

// A map is usable when everything it may evaluate is: each variable it
// names, each map it names (no cycle, no deeper than kMaxDepth).
void Maps::find_problems() {
    enum : uint8_t { kNew, kVisiting, kDone };
    std::vector<uint8_t> state(maps_.size(), kNew);
    std::vector<unsigned> height(maps_.size(), 1);

    auto visit = [&](auto& self, size_t i) -> void {
        Map& m = maps_[i];
        state[i] = kVisiting;
        for (const Expression& e : m.exprs) {
            if (!m.problem.empty()) break;
            if (!e.unsupported_.empty()) {
                m.problem = "map " + dq("$" + m.name) + " uses " + dq(e.text_) + ", where " + e.unsupported_;
                break;
            }
            for (const Expression::Part& p : e.parts_) {
                if (p.kind != Expression::Kind::kMap) continue;
                if (state[p.arg] == kVisiting) {
                    m.problem = "map " + dq("$" + m.name) + " uses " + dq("$" + maps_[p.arg].name) +
                                ", which depends on " + dq("$" + m.name) + " again";
                    break;
                }
                if (state[p.arg] == kNew) self(self, p.arg);
                const Map& inner = maps_[p.arg];
                if (!inner.problem.empty()) {
                    m.problem = "map " + dq("$" + m.name) + " uses " + dq("$" + inner.name) + ": " + inner.problem;
                    break;
                }
                height[i] = std::max(height[i], height[p.arg] + 1);
            }
        }
        if (m.problem.empty() && height[i] > kMaxDepth) {
            m.problem = "map " + dq("$" + m.name) + " nests more than " + std::to_string(kMaxDepth) + " maps deep";
        }
        state[i] = kDone;
    };
    for (size_t i = 0; i < maps_.size(); ++i) {
        if (state[i] == kNew) visit(visit, i);
    }
}

size_t Maps::evaluate(int i, const SessionVars& vars, char* out, size_t cap) const {
    Expression::Out o{out, cap};
    eval(i, vars, o, 0);
    return o.len;
}

void Maps::eval(int i, const SessionVars& vars, Expression::Out& out, unsigned depth) const {
    if (i < 0 || static_cast<size_t>(i) >= maps_.size() || depth > kMaxDepth) return;
    const Map& m = maps_[static_cast<size_t>(i)];

    char source[kMaxSource];
    Expression::Out s{source, sizeof source};
    m.exprs[0].eval(vars, s, nullptr, depth);
    if (s.len > sizeof source) {
        m.exprs[m.default_value].eval(vars, out, nullptr, depth);
        return;
    }
    size_t len = s.len;
    if (m.hostnames && len > 0 && source[len - 1] == '.') --len;  // "example.com." is example.com

    // low[0] is a dot, so that ".example.com" keys can be probed with the
    // host itself as well as with each of its parent domains.
    char low[kMaxSource + 1];
    low[0] = '.';
    for (size_t k = 0; k < len; ++k) low[k + 1] = lower(source[k]);
    const std::string_view host(low + 1, len);

    int hit = find_key(m.exact, host);
    if (hit < 0 && len > 0 && !m.head.empty()) {
        auto probe = [&](std::string_view suffix, bool itself) {
            auto before = [](const Map::Head& h, std::string_view k) { return std::string_view(h.suffix) < k; };
            auto it = std::lower_bound(m.head.begin(), m.head.end(), suffix, before);
            if (it == m.head.end() || it->suffix != suffix) return -1;
            return itself ? it->itself : it->below;
        };
        // Longest suffix first: ".www.example.com" for the host itself,
        // then ".example.com", then ".com".
        hit = probe(std::string_view(low, len + 1), true);
        for (size_t k = 0; hit < 0 && k < len; ++k) {
            if (host[k] == '.') hit = probe(host.substr(k), false);
        }
    }
    if (hit < 0 && len > 0 && !m.tail.empty()) {
        // Longest prefix first, each ending at a dot with a label after it.
        for (size_t k = len - 1; hit < 0 && k > 0; --k) {
            if (host[k - 1] == '.') hit = find_key(m.tail, host.substr(0, k));
        }
    }
    if (hit >= 0) {
        m.exprs[static_cast<size_t>(hit)].eval(vars, out, nullptr, depth);
        return;
    }
    if (len > 0) {
        for (const Regex& r : m.regexes) {
            const int rc = pcre2_match(r.code.get(), reinterpret_cast<PCRE2_SPTR>(source), len, 0, 0, r.match.get(),
                                       nullptr);
            if (rc == PCRE2_ERROR_NOMATCH) continue;
            // nginx: any other failure (a match limit) gives the default.
            if (rc < 0) break;
            const Expression::Captures caps{source, pcre2_get_ovector_pointer(r.match.get()),
                                            pcre2_get_ovector_count(r.match.get())};
            m.exprs[r.value].eval(vars, out, &caps, depth);
            return;
        }
    }
    m.exprs[m.default_value].eval(vars, out, nullptr, depth);
}

}  // namespace terminus::dataplane::proxy
