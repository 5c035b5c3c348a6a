// The directive table: every directive Terminus knows, the blocks it may
// appear in, its arity, whether it repeats, nginx's default, and the handler
// that turns its arguments into typed fields. Handlers report every problem
// they find and never stop at the first.
#include <algorithm>
#include <charconv>
#include <filesystem>

#include "config/schema.h"

namespace terminus::config::detail {

namespace {

// ---------------------------------------------------------------------------
// Argument readers. Each reports its own error and returns false.

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool read_flag(Builder& b, const Node& n, bool& out) {
    const Word& w = n.args[0];
    if (w.text == "on") {
        out = true;
    } else if (w.text == "off") {
        out = false;
    } else {
        b.error(w.loc, "invalid value " + dq(w.text) + " in " + dq(n.name.text) +
                           ": it must be \"on\" or \"off\"");
        return false;
    }
    return true;
}

bool read_u32(Builder& b, const Node& n, const Word& w, uint32_t& out, uint32_t min = 0,
              uint32_t max = UINT32_MAX) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(w.text.data(), w.text.data() + w.text.size(), v);
    if (w.text.empty() || ec != std::errc() || p != w.text.data() + w.text.size() || v < min ||
        v > max) {
        b.error(w.loc, "invalid number " + dq(w.text) + " in " + dq(n.name.text) +
                           ": expected an integer from " + std::to_string(min) + " to " +
                           std::to_string(max));
        return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
}

bool read_size_word(Builder& b, const Node& n, const Word& w, uint64_t& out) {
    auto r = parse_size(w.text);
    if (!r) {
        b.error(w.loc, r.error() + " in " + dq(n.name.text));
        return false;
    }
    out = *r;
    return true;
}

bool read_time_word(Builder& b, const Node& n, const Word& w, Millis& out, bool seconds) {
    auto r = seconds ? parse_seconds(w.text) : parse_time(w.text);
    if (!r) {
        b.error(w.loc, r.error() + " in " + dq(n.name.text));
        return false;
    }
    out = *r;
    return true;
}

bool has_variables(std::string_view s) { return s.find('$') != std::string_view::npos; }

bool refuse_variables(Builder& b, const Node& n, const Word& w) {
    if (!has_variables(w.text)) return true;
    b.error(w.loc, dq(n.name.text) + " does not take variables in Terminus: write the value "
                                      "itself");
    return false;
}

// "addr:port", "*:port", "port". Returns false after reporting.
bool read_host_port(Builder& b, const Word& w, std::string& host, std::optional<uint32_t>& addr,
                    uint16_t& port, bool port_required, const char* what) {
    std::string_view t = w.text;
    if (t.starts_with("unix:")) {
        b.error(w.loc, std::string(what) + " " + dq(t) +
                           ": UNIX-domain sockets are not reachable from the dataplane; use an "
                           "IPv4 address and port");
        return false;
    }
    if (t.starts_with("[")) {
        b.error(w.loc, std::string(what) + " " + dq(t) +
                           ": IPv6 is not supported by the Terminus dataplane yet; use an IPv4 "
                           "address");
        return false;
    }
    auto colon = t.rfind(':');
    std::string_view h = colon == std::string_view::npos ? std::string_view{} : t.substr(0, colon);
    std::string_view p = colon == std::string_view::npos ? t : t.substr(colon + 1);
    if (colon == std::string_view::npos && !port_required) {
        // Just a port ("listen 443") or just a host.
        bool digits = !t.empty() && std::all_of(t.begin(), t.end(), [](char c) {
            return c >= '0' && c <= '9';
        });
        if (!digits) {
            h = t;
            p = {};
        }
    }
    if (colon == std::string_view::npos && port_required) {
        b.error(w.loc, std::string(what) + " " + dq(t) + " has no port: write it as HOST:PORT");
        return false;
    }
    if (colon != std::string_view::npos && p.empty()) {
        b.error(w.loc, std::string(what) + " " + dq(t) + " has an empty port: write HOST:PORT");
        return false;
    }
    if (!p.empty()) {
        unsigned v = 0;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
            b.error(w.loc, std::string(what) + " " + dq(t) + ": invalid port " + dq(p) +
                               ", expected 1 to 65535");
            return false;
        }
        port = static_cast<uint16_t>(v);
    }
    host = std::string(h);
    addr.reset();
    if (h.empty() || h == "*") {
        addr = 0;
        return true;
    }
    if (auto a = parse_ipv4(h)) {
        addr = *a;
        return true;
    }
    // A name: letters, digits, '-', '.'.
    bool name_ok = std::all_of(h.begin(), h.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
    if (!name_ok || h.find(':') != std::string_view::npos) {
        b.error(w.loc, std::string(what) + " " + dq(t) + ": " + dq(h) +
                           " is neither an IPv4 address nor a host name");
        return false;
    }
    return true;
}

bool read_protocols(Builder& b, const Node& n, uint8_t& out) {
    uint8_t mask = 0;
    bool ok = true;
    for (const Word& w : n.args) {
        if (w.text == "SSLv2" || w.text == "SSLv3") {
            b.error(w.loc, w.text + " is insecure (RFC 7568 deprecates SSLv3, RFC 6176 SSLv2) and "
                                    "not supported: remove it from " + dq(n.name.text));
            ok = false;
        } else if (w.text == "TLSv1" || w.text == "TLSv1.1") {
            mask |= static_cast<uint8_t>(w.text == "TLSv1" ? TlsVersion::kTls1 : TlsVersion::kTls11);
            b.warning(w.loc, w.text + " is deprecated (RFC 8996); it is enabled because it is "
                                      "listed, and OpenSSL's security level is lowered for it "
                                      "alone");
        } else if (w.text == "TLSv1.2") {
            mask |= static_cast<uint8_t>(TlsVersion::kTls12);
        } else if (w.text == "TLSv1.3") {
            mask |= static_cast<uint8_t>(TlsVersion::kTls13);
        } else {
            b.error(w.loc, "unknown protocol " + dq(w.text) + " in " + dq(n.name.text) +
                               ": expected TLSv1.2, TLSv1.3 (or the deprecated TLSv1, TLSv1.1)");
            ok = false;
        }
    }
    if (ok) out = mask;
    return ok;
}

// ---------------------------------------------------------------------------
// Generic handlers bound to a ServerSettings field.

template <bool ServerSettings::*F>
void h_flag(Builder& b, Scope& s, const Node& n) {
    read_flag(b, n, s.settings->*F);
}

template <Millis ServerSettings::*F>
void h_msec(Builder& b, Scope& s, const Node& n) {
    read_time_word(b, n, n.args[0], s.settings->*F, false);
}

template <Millis ServerSettings::*F>
void h_sec(Builder& b, Scope& s, const Node& n) {
    read_time_word(b, n, n.args[0], s.settings->*F, true);
}

template <uint64_t ServerSettings::*F>
void h_size(Builder& b, Scope& s, const Node& n) {
    if (!refuse_variables(b, n, n.args[0])) return;
    read_size_word(b, n, n.args[0], s.settings->*F);
}

template <uint64_t ServerSettings::*F>
void h_size_nonzero(Builder& b, Scope& s, const Node& n) {
    uint64_t v = 0;
    if (!read_size_word(b, n, n.args[0], v)) return;
    if (v == 0) {
        b.error(n.args[0].loc, dq(n.name.text) + " must be larger than 0");
        return;
    }
    s.settings->*F = v;
}

template <uint32_t ServerSettings::*F>
void h_u32(Builder& b, Scope& s, const Node& n) {
    read_u32(b, n, n.args[0], s.settings->*F);
}

template <std::string ServerSettings::*F>
void h_string(Builder& b, Scope& s, const Node& n) {
    if (!refuse_variables(b, n, n.args[0])) return;
    s.settings->*F = n.args[0].text;
}

template <uint8_t ServerSettings::*F>
void h_protocols(Builder& b, Scope& s, const Node& n) {
    read_protocols(b, n, s.settings->*F);
}

template <std::vector<ConfCommand> ServerSettings::*F>
void h_conf_command(Builder& b, Scope& s, const Node& n) {
    auto& list = s.settings->*F;
    if (s.first_in_block(n.name.text)) list.clear();
    ConfCommand c{n.args[0].text, n.args[1].text, n.loc()};
    if (check_conf_command(b, c, n.name.text)) list.push_back(std::move(c));
}

template <std::vector<std::string> ServerSettings::*F>
void h_alpn(Builder& b, Scope& s, const Node& n) {
    auto& list = s.settings->*F;
    list.clear();
    for (const Word& w : n.args) {
        if (w.text.empty() || w.text.size() > 255) {
            b.error(w.loc, "ALPN protocol names are 1 to 255 bytes long (RFC 7301)");
            continue;
        }
        list.push_back(w.text);
    }
}

enum class FileKind { kCa, kCrl, kDhparam, kPassword, kStapling };

template <std::string ServerSettings::*F, FileKind K>
void h_file(Builder& b, Scope& s, const Node& n) {
    const Word& w = n.args[0];
    if (!refuse_variables(b, n, w)) return;
    const std::string path = b.resolve_path(w.text);
    s.settings->*F = path;
    if (!b.options().check_files) return;
    switch (K) {
        case FileKind::kCa: check_ca_file(b, path, w.loc, n.name.text.c_str()); break;
        case FileKind::kCrl: check_crl_file(b, path, w.loc); break;
        case FileKind::kDhparam: check_dhparam_file(b, path, w.loc); break;
        case FileKind::kPassword: check_password_file(b, path, w.loc); break;
        case FileKind::kStapling: check_stapling_file(b, path, w.loc); break;
    }
}

// ---------------------------------------------------------------------------
// Specific handlers: blocks.

void h_block_dataplane(Builder& b, Scope&, const Node& n) {
    Scope inner;
    inner.ctx = kDataplane;
    b.walk(n.children, inner);
}

void h_block_mgmt(Builder& b, Scope&, const Node& n) {
    Scope inner;
    inner.ctx = kMgmt;
    b.walk(n.children, inner);
}

void h_block_stream(Builder& b, Scope&, const Node& n) {
    Scope inner;
    inner.ctx = kStream;
    inner.settings = &b.stream_settings;
    inner.scratch = &b.stream_scratch;
    // Servers inherit what stream{} sets wherever it is written, so read
    // every other directive first and the servers last.
    for (const Node& c : n.children) {
        if (c.name.text == "server" && c.block) {
            b.server_blocks.push_back(&c);
        }
    }
    b.walk(n.children, inner);  // server blocks are queued, not walked, here

    for (const Node* sn : b.server_blocks) {
        Server& srv = b.cfg.servers.emplace_back();
        srv.loc = sn->loc();
        srv.settings = b.stream_settings;
        b.server_scratch.push_back(b.stream_scratch);
    }
    for (size_t i = 0; i < b.server_blocks.size(); ++i) {
        Scope ss;
        ss.ctx = kServer;
        ss.server = &b.cfg.servers[i];
        ss.settings = &b.cfg.servers[i].settings;
        ss.scratch = &b.server_scratch[i];
        b.walk(b.server_blocks[i]->children, ss);
    }
}

void h_server_in_stream(Builder&, Scope&, const Node&) {
    // Queued by h_block_stream and walked once stream{} is fully read.
}

void h_block_upstream(Builder& b, Scope&, const Node& n) {
    const Word& name = n.args[0];
    if (b.cfg.find_upstream(name.text)) {
        b.error(name.loc, "duplicate upstream " + dq(name.text));
        return;
    }
    if (has_variables(name.text) || name.text.find(':') != std::string::npos) {
        b.error(name.loc, "invalid upstream name " + dq(name.text) +
                              ": it may not hold \"$\" or \":\"");
        return;
    }
    Upstream& up = b.cfg.upstreams.emplace_back();
    up.name = name.text;
    up.loc = n.loc();
    Scope inner;
    inner.ctx = kUpstream;
    inner.upstream = &up;
    b.walk(n.children, inner);
    // An upstream whose "server" lines were all refused has its errors
    // already; say "no servers" only when none was written.
    if (up.servers.empty() && std::count(inner.seen.begin(), inner.seen.end(), "server") == 0) {
        b.error(n.loc(), "no servers are inside upstream " + dq(up.name) +
                             ": add \"server HOST:PORT;\"");
    }
    if (up.method == BalanceMethod::kHash || up.method == BalanceMethod::kRandom) {
        for (const auto& srv : up.servers) {
            if (srv.backup) {
                b.error(srv.loc, std::string("\"backup\" cannot be used with \"") +
                                     to_string(up.method) + "\" balancing (nginx refuses it too)");
            }
        }
    }
}

void h_block_match(Builder& b, Scope&, const Node& n) {
    const Word& name = n.args[0];
    for (const auto& m : b.cfg.matches) {
        if (m.name == name.text) {
            b.error(name.loc, "duplicate match " + dq(name.text));
            return;
        }
    }
    Match& m = b.cfg.matches.emplace_back();
    m.name = name.text;
    m.loc = n.loc();
    Scope inner;
    inner.ctx = kMatch;
    inner.match = &m;
    b.walk(n.children, inner);
    if (m.send.empty() && m.expect.empty() &&
        std::count(inner.seen.begin(), inner.seen.end(), "send") +
                std::count(inner.seen.begin(), inner.seen.end(), "expect") ==
            0) {
        b.error(n.loc(), "match " + dq(m.name) + " has neither \"send\" nor \"expect\"");
    }
}

void h_match_send(Builder&, Scope& s, const Node& n) { s.match->send = n.args[0].text; }

void h_match_expect(Builder& b, Scope& s, const Node& n) {
    if (n.args.size() == 2) {
        if (n.args[0].text != "~") {
            b.error(n.args[0].loc, "\"expect\" takes a string, or \"~\" and a regular expression");
            return;
        }
        s.match->expect_regex = true;
        s.match->expect = n.args[1].text;
        check_regex(b, s.match->expect, false, n.args[1].loc);
        return;
    }
    s.match->expect = n.args[0].text;
}

// map $source $variable { hostnames; default V; volatile; KEY VALUE; ... }
void h_block_map(Builder& b, Scope&, const Node& n) {
    const Word& var = n.args[1];
    if (var.text.size() < 2 || var.text[0] != '$') {
        b.error(var.loc, "invalid variable name " + dq(var.text) +
                             ": the second argument of \"map\" must be \"$name\"");
        return;
    }
    std::string name = var.text.substr(1);
    if (b.cfg.find_map(name)) {
        b.error(var.loc, "variable " + dq(var.text) + " is already set by another \"map\"");
        return;
    }
    b.use_variables(n.args[0], "map");
    Map& m = b.cfg.maps.emplace_back();
    m.source = n.args[0].text;
    m.variable = std::move(name);
    m.loc = n.loc();
    bool have_default = false;
    for (const Node& c : n.children) {
        const std::string& key = c.name.text;
        if (c.block) {
            b.error(c.loc(), "blocks are not allowed inside \"map\"");
            continue;
        }
        // nginx decides on the key's text, quoted or not; "\\" escapes it.
        if (key == "hostnames" && c.args.empty()) {
            m.hostnames = true;
            continue;
        }
        if (key == "volatile" && c.args.empty()) {
            m.is_volatile = true;
            continue;
        }
        if (key == "include") {
            b.error(c.loc(), "\"include\" is not read here");
            continue;
        }
        if (c.args.size() != 1) {
            b.error(c.loc(), "invalid number of the map parameters: write \"KEY VALUE;\"");
            continue;
        }
        if (key == "default") {
            if (have_default) {
                b.error(c.loc(), "duplicate default map parameter");
                continue;
            }
            have_default = true;
            m.default_value = c.args[0].text;
            b.use_variables(c.args[0], "map");
            continue;
        }
        MapEntry e;
        e.loc = c.loc();
        e.value = c.args[0].text;
        std::string k = key;
        if (!k.empty() && k[0] == '\\') {
            k.erase(0, 1);  // "\default", "\~literal"
        } else if (k.size() > 1 && k[0] == '~') {
            e.regex = true;
            e.caseless = k.size() > 2 && k[1] == '*';
            e.key = k.substr(e.caseless ? 2 : 1);
            check_regex(b, e.key, e.caseless, c.loc());
        }
        if (!e.regex) {
            e.key = k;
            if (m.hostnames) {
                std::transform(e.key.begin(), e.key.end(), e.key.begin(),
                               [](unsigned char ch) { return std::tolower(ch); });
            }
        }
        bool dup = false;
        for (const auto& prev : m.entries) {
            if (prev.regex == e.regex && prev.caseless == e.caseless && prev.key == e.key) {
                b.error(c.loc(), "conflicting map parameter " + dq(e.key) + ", first at line " +
                                     std::to_string(prev.loc.line));
                dup = true;
                break;
            }
        }
        if (dup) continue;
        b.use_variables(c.args[0], "map");
        m.entries.push_back(std::move(e));
    }
}

// ---------------------------------------------------------------------------
// dataplane {}

bool is_pci_address(std::string_view s) {
    // [DDDD:]BB:DD.F in hex.
    auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    auto n = s.size();
    auto tail_ok = [&](std::string_view t) {
        return t.size() == 7 && hex(t[0]) && hex(t[1]) && t[2] == ':' && hex(t[3]) && hex(t[4]) &&
               t[5] == '.' && t[6] >= '0' && t[6] <= '7';
    };
    if (n == 7) return tail_ok(s);
    if (n == 12) {
        return hex(s[0]) && hex(s[1]) && hex(s[2]) && hex(s[3]) && s[4] == ':' &&
               tail_ok(s.substr(5));
    }
    return false;
}

bool is_vdev_name(std::string_view s) {
    if (!s.starts_with("net_") || s.size() < 6) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

void h_dp_port(Builder& b, Scope&, const Node& n) {
    PortConfig p;
    p.loc = n.loc();
    const Word& dev = n.args[0];
    p.device = dev.text;
    p.is_pci = is_pci_address(dev.text);
    if (!p.is_pci && !is_vdev_name(dev.text)) {
        b.error(dev.loc, "invalid port " + dq(dev.text) +
                             ": expected a PCI address (0000:03:00.0) or a DPDK virtual device "
                             "such as net_tap0, net_af_packet0, net_memif0");
        return;
    }
    for (const auto& other : b.cfg.dataplane.ports) {
        if (other.device == p.device) {
            b.error(dev.loc, "port " + dq(p.device) + " is declared twice");
            return;
        }
    }
    bool have_address = false, ok = true;
    for (size_t i = 1; i < n.args.size(); ++i) {
        const Word& w = n.args[i];
        auto eq = w.text.find('=');
        if (eq == std::string::npos || eq == 0) {
            b.error(w.loc, "invalid port parameter " + dq(w.text) +
                               ": expected KEY=VALUE (address=, gateway=, mtu= or a device "
                               "argument)");
            ok = false;
            continue;
        }
        std::string key = w.text.substr(0, eq), val = w.text.substr(eq + 1);
        if (key == "address") {
            auto slash = val.find('/');
            auto a = parse_ipv4(val.substr(0, slash));
            unsigned len = 0;
            bool len_ok = slash != std::string::npos &&
                          std::from_chars(val.data() + slash + 1, val.data() + val.size(), len)
                                  .ptr == val.data() + val.size() &&
                          slash + 1 < val.size() && len >= 1 && len <= 32;
            if (!a || !len_ok) {
                b.error(w.loc, "invalid address " + dq(val) +
                                   ": expected an IPv4 address with a prefix length, such as "
                                   "198.18.0.2/24");
                ok = false;
                continue;
            }
            p.address = Ipv4Prefix{*a, static_cast<uint8_t>(len)};
            have_address = true;
        } else if (key == "gateway") {
            auto a = parse_ipv4(val);
            if (!a) {
                b.error(w.loc, "invalid gateway " + dq(val) + ": expected an IPv4 address");
                ok = false;
                continue;
            }
            p.gateway = *a;
        } else if (key == "mtu") {
            uint32_t mtu = 0;
            Word vw{val, w.loc, false};
            if (!read_u32(b, n, vw, mtu, 576, 9216)) {
                ok = false;
                continue;
            }
            p.mtu = static_cast<uint16_t>(mtu);
        } else {
            p.devargs.emplace_back(key, val);
        }
    }
    if (!have_address && ok) {
        b.error(n.loc(), "port " + dq(p.device) +
                             " needs an address: add address=A.B.C.D/LEN (and gateway= for "
                             "off-link upstreams)");
        ok = false;
    }
    if (p.gateway && have_address) {
        uint32_t mask = p.address.len == 0 ? 0 : ~uint32_t{0} << (32 - p.address.len);
        if ((*p.gateway & mask) != (p.address.addr & mask)) {
            b.error(n.loc(), "gateway " + ipv4_to_string(*p.gateway) + " is not inside " +
                                 ipv4_to_string(p.address.addr) + "/" +
                                 std::to_string(p.address.len));
            ok = false;
        }
    }
    b.saw_port = true;
    if (ok) b.cfg.dataplane.ports.push_back(std::move(p));
}

void h_dp_lcores(Builder& b, Scope&, const Node& n) {
    // "0-1", "0,2-3", or several words.
    std::vector<unsigned> cores;
    bool ok = true;
    for (const Word& w : n.args) {
        std::string_view t = w.text;
        size_t i = 0;
        while (i <= t.size() && ok) {
            size_t comma = t.find(',', i);
            std::string_view item = t.substr(i, comma == std::string_view::npos ? t.npos : comma - i);
            unsigned lo = 0, hi = 0;
            auto dash = item.find('-');
            auto num = [](std::string_view s, unsigned& v) {
                auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
                return !s.empty() && ec == std::errc() && p == s.data() + s.size() && v < 128;
            };
            bool good = dash == std::string_view::npos
                            ? num(item, lo) && (hi = lo, true)
                            : num(item.substr(0, dash), lo) && num(item.substr(dash + 1), hi) &&
                                  lo <= hi;
            if (!good) {
                b.error(w.loc, "invalid lcore list " + dq(w.text) +
                                   ": expected core numbers below 128 and ranges, such as "
                                   "\"0-1\" or \"0,2-3\"");
                ok = false;
                break;
            }
            for (unsigned c = lo; c <= hi; ++c) cores.push_back(c);
            if (comma == std::string_view::npos) break;
            i = comma + 1;
        }
    }
    if (!ok) return;
    std::sort(cores.begin(), cores.end());
    if (std::adjacent_find(cores.begin(), cores.end()) != cores.end()) {
        b.error(n.loc(), "an lcore is listed twice in \"lcores\"");
        return;
    }
    b.cfg.dataplane.lcores = std::move(cores);
}

void h_dp_crypto(Builder& b, Scope&, const Node& n) {
    const std::string& v = n.args[0].text;
    auto& dp = b.cfg.dataplane;
    if (v == "ipsec_mb") {
        dp.crypto = CryptoBackend::kIpsecMb;
    } else if (v == "openssl") {
        dp.crypto = CryptoBackend::kOpenssl;
    } else if (v.starts_with("cryptodev:") && v.size() > 10) {
        dp.crypto = CryptoBackend::kCryptodev;
        dp.crypto_device = v.substr(10);
    } else {
        b.error(n.args[0].loc, "invalid crypto backend " + dq(v) +
                                   ": expected ipsec_mb, openssl or cryptodev:DEVICE (such as "
                                   "cryptodev:crypto_aesni_gcm0 or a QAT PCI address)");
    }
}

void h_dp_mbufs(Builder& b, Scope&, const Node& n) {
    read_u32(b, n, n.args[0], b.cfg.dataplane.mbufs, 1023, 16u * 1024 * 1024);
}

void h_dp_max_connections(Builder& b, Scope&, const Node& n) {
    read_u32(b, n, n.args[0], b.cfg.dataplane.max_connections, 1, 64u * 1024 * 1024);
}

void h_dp_eal_args(Builder& b, Scope&, const Node& n) {
    // Appended in order; DPDK checks them when the dataplane starts.
    for (const Word& w : n.args) b.cfg.dataplane.eal_args.push_back(w.text);
}

void h_dp_syncookies(Builder& b, Scope&, const Node& n) {
    const std::string& v = n.args[0].text;
    auto& dp = b.cfg.dataplane;
    if (v == "on") {
        dp.syncookies = SynCookies::kOn;
    } else if (v == "off") {
        dp.syncookies = SynCookies::kOff;
    } else if (v == "always") {
        dp.syncookies = SynCookies::kAlways;
    } else {
        b.error(n.args[0].loc, "invalid value " + dq(v) +
                                   " in \"syncookies\": expected on (when a SYN backlog is full), "
                                   "off or always");
    }
}

void h_dp_tcp_congestion(Builder& b, Scope&, const Node& n) {
    const std::string& v = n.args[0].text;
    if (v == "newreno") {
        b.cfg.dataplane.tcp_congestion = CongestionControl::kNewReno;
    } else if (v == "cubic") {
        b.cfg.dataplane.tcp_congestion = CongestionControl::kCubic;
    } else {
        b.error(n.args[0].loc, "invalid value " + dq(v) +
                                   " in \"tcp_congestion\": expected newreno or cubic");
    }
}

// ---------------------------------------------------------------------------
// mgmt {}

void h_mgmt_control(Builder& b, Scope&, const Node& n) {
    std::string v = n.args[0].text;
    if (v.starts_with("unix:")) v.erase(0, 5);
    if (v.empty() || v[0] != '/') {
        b.error(n.args[0].loc, "\"control\" needs an absolute UNIX socket path, such as "
                               "unix:/run/terminus/control.sock");
        return;
    }
    if (v.size() >= 108) {
        b.error(n.args[0].loc, "control socket path is longer than a UNIX socket address allows "
                               "(107 bytes)");
        return;
    }
    b.cfg.mgmt.control = v;
}

void h_mgmt_metrics(Builder& b, Scope&, const Node& n) {
    const Word& w = n.args[0];
    if (w.text == "off") {
        b.cfg.mgmt.metrics.reset();
        return;
    }
    std::string host;
    std::optional<uint32_t> addr;
    uint16_t port = 0;
    if (!read_host_port(b, w, host, addr, port, true, "metrics address")) return;
    if (!addr) {
        b.error(w.loc, "metrics address " + dq(w.text) + ": use an IPv4 address, such as "
                                                         "127.0.0.1:9145");
        return;
    }
    b.cfg.mgmt.metrics = std::make_pair(*addr, port);
}

void h_dp_shutdown_timeout(Builder& b, Scope&, const Node& n) {
    read_time_word(b, n, n.args[0], b.cfg.dataplane.shutdown_timeout, false);
}

void h_mgmt_rotation(Builder& b, Scope&, const Node& n) {
    Millis v{};
    if (!read_time_word(b, n, n.args[0], v, true)) return;
    if (v < std::chrono::minutes(1)) {
        b.error(n.args[0].loc, "\"ticket_key_rotation\" below 1m would make tickets useless; "
                               "use 1m or more");
        return;
    }
    b.cfg.mgmt.ticket_key_rotation = v;
}

void h_mgmt_log_buffer(Builder& b, Scope&, const Node& n) {
    uint64_t v = 0;
    if (!read_size_word(b, n, n.args[0], v)) return;
    if (v < 4096) {
        b.error(n.args[0].loc, "\"access_log_buffer\" must be at least 4k");
        return;
    }
    b.cfg.mgmt.access_log_buffer = v;
}

// ---------------------------------------------------------------------------
// stream {} and server {}

bool read_level(std::string_view v, LogLevel& out) {
    static const char* const kNames[] = {"debug", "info", "notice", "warn",
                                         "error", "crit", "alert",  "emerg"};
    for (int i = 0; i < 8; ++i) {
        if (v == kNames[i]) {
            out = static_cast<LogLevel>(i);
            return true;
        }
    }
    return false;
}

void h_error_log(Builder& b, Scope& s, const Node& n) {
    ErrorLog log;
    const Word& path = n.args[0];
    if (path.text.starts_with("syslog:") || path.text.starts_with("memory:")) {
        b.error(path.loc, "error_log " + dq(path.text) +
                              ": Terminus writes its error log to stderr or a file");
        return;
    }
    log.path = path.text == "stderr" ? path.text : b.resolve_path(path.text);
    if (n.args.size() == 2 && !read_level(n.args[1].text, log.level)) {
        b.error(n.args[1].loc, "invalid log level " + dq(n.args[1].text) +
                                   ": expected debug, info, notice, warn, error, crit, alert or "
                                   "emerg");
        return;
    }
    if (s.ctx == kMain) {
        b.cfg.error_log = log;
    } else {
        s.settings->error_log = log;
    }
}

void h_log_format(Builder& b, Scope&, const Node& n) {
    const Word& name = n.args[0];
    for (const auto& f : b.cfg.log_formats) {
        if (f.name == name.text) {
            b.error(name.loc, "duplicate \"log_format\" name " + dq(name.text));
            return;
        }
    }
    LogFormat f;
    f.name = name.text;
    f.loc = n.loc();
    size_t i = 1;
    if (n.args[1].text.starts_with("escape=")) {
        std::string_view e = std::string_view(n.args[1].text).substr(7);
        if (e == "default") {
            f.escape = LogEscape::kDefault;
        } else if (e == "json") {
            f.escape = LogEscape::kJson;
        } else if (e == "none") {
            f.escape = LogEscape::kNone;
        } else {
            b.error(n.args[1].loc, "unknown log format escaping " + dq(e) +
                                       ": expected default, json or none");
        }
        ++i;
    }
    if (i >= n.args.size()) {
        b.error(n.loc(), "\"log_format\" " + dq(f.name) + " has no format string");
        return;
    }
    for (; i < n.args.size(); ++i) {
        f.format += n.args[i].text;
        b.use_variables(n.args[i], "log_format");
    }
    b.cfg.log_formats.push_back(std::move(f));
}

void h_access_log(Builder& b, Scope& s, const Node& n) {
    auto& st = *s.settings;
    if (s.first_in_block("access_log")) {
        st.access_log.clear();
        st.access_log_off = false;
    }
    if (n.args[0].text == "off") {
        if (n.args.size() != 1) {
            b.error(n.args[1].loc, "\"access_log off\" takes no other parameters");
            return;
        }
        st.access_log.clear();
        st.access_log_off = true;
        return;
    }
    if (n.args.size() < 2) {
        b.error(n.loc(), "\"access_log\" needs a path and a log_format name: "
                         "access_log PATH FORMAT [buffer=SIZE] [flush=TIME] [gzip[=LEVEL]] "
                         "[if=CONDITION]");
        return;
    }
    AccessLog log;
    log.loc = n.loc();
    if (n.args[0].text.starts_with("syslog:")) {
        b.error(n.args[0].loc, "access_log to syslog is not supported: write to a file, which "
                               "terminus-mgmtd appends to");
        return;
    }
    if (!refuse_variables(b, n, n.args[0])) return;
    log.path = b.resolve_path(n.args[0].text);
    log.format = n.args[1].text;
    for (size_t i = 2; i < n.args.size(); ++i) {
        const Word& w = n.args[i];
        std::string_view t = w.text;
        if (t.starts_with("buffer=")) {
            Word v{std::string(t.substr(7)), w.loc, false};
            read_size_word(b, n, v, log.buffer);
        } else if (t.starts_with("flush=")) {
            Word v{std::string(t.substr(6)), w.loc, false};
            read_time_word(b, n, v, log.flush, false);
        } else if (t == "gzip") {
            log.gzip_level = 1;
        } else if (t.starts_with("gzip=")) {
            uint32_t lvl = 0;
            Word v{std::string(t.substr(5)), w.loc, false};
            if (read_u32(b, n, v, lvl, 1, 9)) log.gzip_level = static_cast<int>(lvl);
        } else if (t.starts_with("if=")) {
            log.if_condition = std::string(t.substr(3));
            b.use_variables(Word{log.if_condition, w.loc, false}, "access_log");
        } else {
            b.error(w.loc, "invalid access_log parameter " + dq(t) +
                               ": expected buffer=, flush=, gzip[=LEVEL] or if=");
        }
    }
    if (log.flush.count() > 0 && log.buffer == 0) {
        b.error(n.loc(), "\"flush\" needs \"buffer\" in \"access_log\"");
    }
    st.access_log.push_back(std::move(log));
}

void h_limit_conn_zone(Builder& b, Scope&, const Node& n) {
    LimitConnZone z;
    z.loc = n.loc();
    z.key = n.args[0].text;
    b.use_variables(n.args[0], "limit_conn_zone");
    const Word& w = n.args[1];
    std::string_view t = w.text;
    auto colon = t.rfind(':');
    if (!t.starts_with("zone=") || colon == std::string_view::npos || colon <= 5) {
        b.error(w.loc, "invalid zone " + dq(t) + ": write zone=NAME:SIZE, such as zone=addr:10m");
        return;
    }
    z.name = std::string(t.substr(5, colon - 5));
    Word sz{std::string(t.substr(colon + 1)), w.loc, false};
    if (!read_size_word(b, n, sz, z.size)) return;
    if (z.size < 8 * 4096) {
        b.error(w.loc, "zone " + dq(z.name) + " is too small: use 32k or more");
        return;
    }
    for (const auto& other : b.cfg.limit_conn_zones) {
        if (other.name == z.name) {
            b.error(w.loc, "limit_conn_zone " + dq(z.name) + " is already declared at line " +
                               std::to_string(other.loc.line));
            return;
        }
    }
    b.cfg.limit_conn_zones.push_back(std::move(z));
}

void h_limit_conn(Builder& b, Scope& s, const Node& n) {
    auto& list = s.settings->limit_conn;
    if (s.first_in_block("limit_conn")) list.clear();
    LimitConn l;
    l.loc = n.loc();
    l.zone = n.args[0].text;
    if (!read_u32(b, n, n.args[1], l.number, 1, 65535)) return;
    for (const auto& other : list) {
        if (other.zone == l.zone) {
            b.error(n.loc(), "duplicate limit_conn for zone " + dq(l.zone));
            return;
        }
    }
    list.push_back(std::move(l));
}

void h_limit_conn_log_level(Builder& b, Scope& s, const Node& n) {
    LogLevel l{};
    if (!read_level(n.args[0].text, l) || l < LogLevel::kInfo || l > LogLevel::kError) {
        b.error(n.args[0].loc, "invalid limit_conn_log_level " + dq(n.args[0].text) +
                                   ": use info, notice, warn or error");
        return;
    }
    s.settings->limit_conn_log_level = l;
}

void h_access_rule(Builder& b, Scope& s, const Node& n) {
    auto& rules = s.settings->access_rules;
    // allow and deny form one ordered list; a server that writes either
    // replaces what it inherited.
    const auto written = std::count(s.seen.begin(), s.seen.end(), "allow") +
                         std::count(s.seen.begin(), s.seen.end(), "deny");
    if (written == 1) rules.clear();
    AccessRule r;
    r.loc = n.loc();
    r.allow = n.name.text == "allow";
    const Word& w = n.args[0];
    if (w.text == "all") {
        r.prefix = Ipv4Prefix{0, 0};
    } else if (w.text.starts_with("unix:") || w.text.find(':') != std::string::npos) {
        b.error(w.loc, dq(n.name.text) + " " + dq(w.text) +
                           ": only IPv4 addresses and prefixes are supported");
        return;
    } else {
        auto slash = w.text.find('/');
        auto a = parse_ipv4(std::string_view(w.text).substr(0, slash));
        unsigned len = 32;
        bool ok = a.ok();
        if (ok && slash != std::string::npos) {
            auto [p, ec] = std::from_chars(w.text.data() + slash + 1,
                                           w.text.data() + w.text.size(), len);
            ok = ec == std::errc() && p == w.text.data() + w.text.size() &&
                 slash + 1 < w.text.size() && len <= 32;
        }
        if (!ok) {
            b.error(w.loc, "invalid parameter " + dq(w.text) + " in " + dq(n.name.text) +
                               ": expected an IPv4 address, ADDRESS/LEN or all");
            return;
        }
        uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        if ((*a & ~mask) != 0) {
            b.warning(w.loc, "low address bits of " + w.text + " are meaningless");
        }
        r.prefix = Ipv4Prefix{*a & mask, static_cast<uint8_t>(len)};
    }
    rules.push_back(r);
}

void h_proxy_protocol_version(Builder& b, Scope& s, const Node& n) {
    const Word& w = n.args[0];
    if (w.text == "1" || w.text == "2") {
        s.settings->proxy_protocol_version = static_cast<uint8_t>(w.text[0] - '0');
        return;
    }
    b.error(w.loc, "invalid value " + dq(w.text) + " in \"proxy_protocol_version\": expected 1 or 2");
}

void h_set_real_ip_from(Builder& b, Scope& s, const Node& n) {
    auto& list = s.settings->set_real_ip_from;
    if (s.first_in_block(n.name.text)) list.clear();
    const Word& w = n.args[0];
    const auto slash = w.text.find('/');
    auto a = parse_ipv4(std::string_view(w.text).substr(0, slash));
    unsigned len = 32;
    bool ok = a.ok();
    if (ok && slash != std::string::npos) {
        auto [p, ec] = std::from_chars(w.text.data() + slash + 1, w.text.data() + w.text.size(), len);
        ok = ec == std::errc() && p == w.text.data() + w.text.size() && slash + 1 < w.text.size() && len <= 32;
    }
    if (!ok) {
        b.error(w.loc, "invalid parameter " + dq(w.text) +
                           " in \"set_real_ip_from\": expected an IPv4 address or ADDRESS/LEN");
        return;
    }
    const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
    list.push_back(Ipv4Prefix{*a & mask, static_cast<uint8_t>(len)});
}

void h_listen(Builder& b, Scope& s, const Node& n) {
    s.scratch->listen_written = true;
    Listen l;
    l.loc = n.loc();
    std::string host;
    std::optional<uint32_t> addr;
    uint16_t port = 0;
    if (!read_host_port(b, n.args[0], host, addr, port, false, "listen")) return;
    if (port == 0) {
        b.error(n.args[0].loc, "listen " + dq(n.args[0].text) + " has no port");
        return;
    }
    if (!addr) {
        b.error(n.args[0].loc, "listen " + dq(n.args[0].text) +
                                   ": the dataplane listens on IPv4 addresses of its ports; "
                                   "write the address or \"*\", not a host name");
        return;
    }
    l.address = *addr;
    l.port = port;
    for (size_t i = 1; i < n.args.size(); ++i) {
        const Word& w = n.args[i];
        std::string_view t = w.text;
        if (t == "ssl") {
            l.ssl = true;
        } else if (t == "proxy_protocol") {
            l.proxy_protocol = true;
        } else if (t == "default_server" || t == "default") {
            l.default_server = true;
        } else if (t == "reuseport") {
            // Every lcore already serves every listener; accepted for
            // compatibility with nginx configurations.
            l.reuseport = true;
        } else if (t.starts_with("backlog=")) {
            uint32_t v = 0;
            Word vw{std::string(t.substr(8)), w.loc, false};
            if (read_u32(b, n, vw, v, 1, 65535)) l.backlog = static_cast<int>(v);
        } else if (t.starts_with("so_keepalive=")) {
            std::string_view v = t.substr(13);
            l.so_keepalive.set = true;
            if (v == "on") {
                l.so_keepalive.on = true;
            } else if (v == "off") {
                l.so_keepalive.on = false;
            } else {
                // [keepidle]:[keepintvl]:[keepcnt]
                l.so_keepalive.on = true;
                std::string_view parts[3];
                size_t c1 = v.find(':');
                size_t c2 = c1 == v.npos ? v.npos : v.find(':', c1 + 1);
                if (c1 == v.npos || c2 == v.npos) {
                    b.error(w.loc, "invalid so_keepalive " + dq(v) +
                                       ": expected on, off or [keepidle]:[keepintvl]:[keepcnt]");
                    continue;
                }
                parts[0] = v.substr(0, c1);
                parts[1] = v.substr(c1 + 1, c2 - c1 - 1);
                parts[2] = v.substr(c2 + 1);
                Millis idle{}, intvl{};
                if (!parts[0].empty() &&
                    read_time_word(b, n, Word{std::string(parts[0]), w.loc, false}, idle, true)) {
                    l.so_keepalive.idle_s = static_cast<uint32_t>(idle.count() / 1000);
                }
                if (!parts[1].empty() &&
                    read_time_word(b, n, Word{std::string(parts[1]), w.loc, false}, intvl, true)) {
                    l.so_keepalive.interval_s = static_cast<uint32_t>(intvl.count() / 1000);
                }
                if (!parts[2].empty()) {
                    read_u32(b, n, Word{std::string(parts[2]), w.loc, false},
                             l.so_keepalive.count, 1, 127);
                }
            }
        } else {
            std::string_view key = t.substr(0, t.find('='));
            static constexpr std::string_view kNginxOnly[] = {
                "udp", "bind", "ipv6only", "fastopen", "rcvbuf", "sndbuf", "setfib",
                "accept_filter", "deferred", "multipath"};
            bool known = std::find(std::begin(kNginxOnly), std::end(kNginxOnly), key) !=
                         std::end(kNginxOnly);
            b.error(w.loc, known ? "listen parameter " + dq(key) +
                                       " is nginx's but not supported by Terminus, whose "
                                       "dataplane owns its sockets (TCP over IPv4 only)"
                                 : "invalid listen parameter " + dq(t) +
                                       ": expected ssl, proxy_protocol, default_server, "
                                       "backlog=, so_keepalive= or reuseport");
        }
    }
    s.server->listen.push_back(std::move(l));
}

void h_server_name(Builder& b, Scope& s, const Node& n) {
    for (const Word& w : n.args) {
        ServerName sn;
        sn.loc = w.loc;
        std::string name = w.text;
        if (name.empty()) continue;  // server_name "": the nameless server
        if (name[0] == '~') {
            sn.kind = ServerNameKind::kRegex;
            sn.name = name.substr(1);
            check_regex(b, sn.name, true, w.loc);
        } else {
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return std::tolower(c); });
            auto stars = std::count(name.begin(), name.end(), '*');
            if (name.starts_with("*.") && stars == 1) {
                sn.kind = ServerNameKind::kWildcardFront;
            } else if (name.ends_with(".*") && stars == 1) {
                sn.kind = ServerNameKind::kWildcardBack;
            } else if (name.starts_with(".") && stars == 0 && name.size() > 1) {
                sn.kind = ServerNameKind::kWildcardFront;  // ".example.com": also example.com
            } else if (stars != 0 || name.find('/') != std::string::npos) {
                b.error(w.loc, "invalid server name " + dq(w.text) +
                                   ": a wildcard is \"*.example.com\" or \"www.example.*\"");
                continue;
            }
            sn.name = std::move(name);
        }
        s.server->server_name.push_back(std::move(sn));
    }
}

void h_proxy_pass(Builder& b, Scope& s, const Node& n) {
    s.scratch->proxy_pass_written = true;
    ProxyPass& pp = s.server->proxy_pass;
    const Word& w = n.args[0];
    pp.value = w.text;
    pp.loc = n.loc();
    if (has_variables(w.text)) {
        pp.kind = ProxyPass::Kind::kVariable;
        b.use_variables(w, "proxy_pass");
        return;
    }
    if (w.text.find(':') == std::string::npos) {
        pp.kind = ProxyPass::Kind::kUpstream;
        pp.upstream = w.text;
        return;  // checked in finish(), once every upstream is known
    }
    std::string host;
    std::optional<uint32_t> addr;
    uint16_t port = 0;
    if (!read_host_port(b, w, host, addr, port, true, "proxy_pass")) return;
    pp.kind = ProxyPass::Kind::kAddress;
    pp.host = host;
    pp.address = addr;
    pp.port = port;
}

void h_return(Builder& b, Scope& s, const Node& n) {
    s.server->return_value = n.args[0].text;
    b.use_variables(n.args[0], "return");
}

void h_health_check(Builder& b, Scope& s, const Node& n) {
    HealthCheck& hc = s.ctx == kUpstream ? s.upstream->health_check : s.server->health_check;
    hc.enabled = true;
    hc.loc = n.loc();
    for (const Word& w : n.args) {
        std::string_view t = w.text;
        auto eq = t.find('=');
        std::string_view key = t.substr(0, eq);
        Word val{eq == t.npos ? std::string() : std::string(t.substr(eq + 1)), w.loc, false};
        if (key == "interval" && eq != t.npos) {
            read_time_word(b, n, val, hc.interval, false);
        } else if (key == "jitter" && eq != t.npos) {
            read_time_word(b, n, val, hc.jitter, false);
        } else if (key == "fails" && eq != t.npos) {
            read_u32(b, n, val, hc.fails, 1, 1000);
        } else if (key == "passes" && eq != t.npos) {
            read_u32(b, n, val, hc.passes, 1, 1000);
        } else if (key == "port" && eq != t.npos) {
            uint32_t p = 0;
            if (read_u32(b, n, val, p, 1, 65535)) hc.port = static_cast<uint16_t>(p);
        } else if (key == "match" && eq != t.npos) {
            hc.match = val.text;
        } else if (t == "mandatory") {
            hc.mandatory = true;
        } else if (t == "persistent") {
            hc.persistent = true;
        } else if (t == "udp") {
            b.error(w.loc, "health_check udp: Terminus proxies TCP only");
        } else {
            b.error(w.loc, "invalid health_check parameter " + dq(t) +
                               ": expected interval=, jitter=, fails=, passes=, port=, match=, "
                               "mandatory or persistent");
        }
    }
    if (hc.persistent && !hc.mandatory) {
        b.error(n.loc(), "health_check \"persistent\" needs \"mandatory\"");
    }
}

// ---------------------------------------------------------------------------
// upstream {}

void h_upstream_server(Builder& b, Scope& s, const Node& n) {
    UpstreamServer srv;
    srv.loc = n.loc();
    std::optional<uint32_t> addr;
    if (!read_host_port(b, n.args[0], srv.host, addr, srv.port, true, "upstream server")) return;
    if (addr && *addr == 0) {
        b.error(n.args[0].loc, "upstream server " + dq(n.args[0].text) +
                                   " needs a real address, not \"*\" or 0.0.0.0");
        return;
    }
    srv.address = addr;
    for (size_t i = 1; i < n.args.size(); ++i) {
        const Word& w = n.args[i];
        std::string_view t = w.text;
        auto eq = t.find('=');
        std::string_view key = t.substr(0, eq);
        Word val{eq == t.npos ? std::string() : std::string(t.substr(eq + 1)), w.loc, false};
        if (key == "weight" && eq != t.npos) {
            read_u32(b, n, val, srv.weight, 1, 1000000);
        } else if (key == "max_fails" && eq != t.npos) {
            read_u32(b, n, val, srv.max_fails);
        } else if (key == "fail_timeout" && eq != t.npos) {
            read_time_word(b, n, val, srv.fail_timeout, true);
        } else if (key == "max_conns" && eq != t.npos) {
            read_u32(b, n, val, srv.max_conns);
        } else if (t == "backup") {
            srv.backup = true;
        } else if (t == "down") {
            srv.down = true;
        } else if (key == "resolve" || key == "service" || key == "slow_start" ||
                   key == "route" || key == "drain") {
            b.error(w.loc, "upstream server parameter " + dq(key) +
                               " is NGINX Plus's and not supported by Terminus");
        } else {
            b.error(w.loc, "invalid upstream server parameter " + dq(t) +
                               ": expected weight=, max_fails=, fail_timeout=, max_conns=, "
                               "backup or down");
        }
    }
    s.upstream->servers.push_back(std::move(srv));
}

void set_method(Builder& b, Scope& s, const Node& n, BalanceMethod m) {
    Upstream& up = *s.upstream;
    if (up.method != BalanceMethod::kRoundRobin) {
        b.warning(n.loc(), "load balancing method redefined: \"" + n.name.text +
                               "\" replaces \"" + to_string(up.method) + "\"");
    }
    up.method = m;
}

void h_least_conn(Builder& b, Scope& s, const Node& n) { set_method(b, s, n, BalanceMethod::kLeastConn); }

void h_hash(Builder& b, Scope& s, const Node& n) {
    if (n.args.size() == 2 && n.args[1].text != "consistent") {
        b.error(n.args[1].loc, "invalid parameter " + dq(n.args[1].text) +
                                   " in \"hash\": expected \"consistent\"");
        return;
    }
    set_method(b, s, n, BalanceMethod::kHash);
    s.upstream->hash_key = n.args[0].text;
    s.upstream->hash_consistent = n.args.size() == 2;
    b.use_variables(n.args[0], "hash");
}

void h_random(Builder& b, Scope& s, const Node& n) {
    if (!n.args.empty() && n.args[0].text != "two") {
        b.error(n.args[0].loc, "invalid parameter " + dq(n.args[0].text) +
                                   " in \"random\": expected \"two\"");
        return;
    }
    if (n.args.size() == 2 && n.args[1].text != "least_conn") {
        b.error(n.args[1].loc, "invalid parameter " + dq(n.args[1].text) +
                                   " in \"random two\": expected \"least_conn\"");
        return;
    }
    set_method(b, s, n, BalanceMethod::kRandom);
    s.upstream->random_two = !n.args.empty();
    s.upstream->random_two_least_conn = n.args.size() == 2;
}

void h_zone(Builder& b, Scope& s, const Node& n) {
    s.upstream->zone = n.args[0].text;
    if (n.args.size() == 2) read_size_word(b, n, n.args[1], s.upstream->zone_size);
}

// ---------------------------------------------------------------------------
// TLS

void h_ssl_certificate(Builder& b, Scope& s, const Node& n) {
    const Word& w = n.args[0];
    const bool is_key = n.name.text == "ssl_certificate_key";
    auto& list = is_key ? s.scratch->keys : s.scratch->certificates;
    if (s.first_in_block(n.name.text)) list.clear();
    if (has_variables(w.text)) {
        b.error(w.loc, dq(n.name.text) + " with variables is not supported by Terminus: write "
                                          "one server{} per name with its own certificate");
        return;
    }
    if (w.text.starts_with("engine:") || w.text.starts_with("data:") ||
        w.text.starts_with("store:")) {
        b.error(w.loc, dq(w.text.substr(0, w.text.find(':') + 1)) +
                           " keys are not supported: give a PEM file");
        return;
    }
    list.push_back(PathAt{b.resolve_path(w.text), w.text, w.loc});
    if (!is_key && b.options().check_files) check_certificate_file(b, list.back().path, w.loc);
}

void h_ssl_password_file(Builder& b, Scope& s, const Node& n) {
    s.scratch->password_file_loc = n.args[0].loc;
    h_file<&ServerSettings::ssl_password_file, FileKind::kPassword>(b, s, n);
}

void h_ssl_session_cache(Builder& b, Scope& s, const Node& n) {
    // nginx merges the built-in cache and the shared zone separately: a
    // server that names no shared cache keeps the one it inherits.
    SessionCache c;
    const SessionCache inherited = s.settings->ssl_session_cache;
    bool ok = true;
    for (const Word& w : n.args) {
        std::string_view t = w.text;
        if (t == "off") {
            c.off = true;
        } else if (t == "none") {
            // nginx's default: no cache, but resumption is not refused.
        } else if (t == "builtin") {
            c.builtin = true;
        } else if (t.starts_with("builtin:")) {
            c.builtin = true;
            if (!read_u32(b, n, Word{std::string(t.substr(8)), w.loc, false}, c.builtin_size, 1)) {
                ok = false;
            }
        } else if (t.starts_with("shared:")) {
            auto colon = t.rfind(':');
            if (colon <= 7) {
                b.error(w.loc, "invalid session cache " + dq(t) +
                                   ": write shared:NAME:SIZE, such as shared:SSL:20m");
                ok = false;
                continue;
            }
            c.shared_name = std::string(t.substr(7, colon - 7));
            Word sz{std::string(t.substr(colon + 1)), w.loc, false};
            if (!read_size_word(b, n, sz, c.shared_size)) {
                ok = false;
                continue;
            }
            if (c.shared_size < 8 * 4096) {
                b.error(w.loc, "session cache " + dq(c.shared_name) +
                                   " is too small: use 32k or more (1m holds about 4000 "
                                   "sessions)");
                ok = false;
            }
        } else {
            b.error(w.loc, "invalid session cache " + dq(t) +
                               ": expected off, none, builtin[:N] or shared:NAME:SIZE");
            ok = false;
        }
    }
    if (c.off && n.args.size() > 1) {
        b.error(n.loc(), "\"ssl_session_cache off\" cannot be combined with other caches");
        ok = false;
    }
    if (!ok) return;
    if (c.shared_name.empty() && !c.off) {
        c.shared_name = inherited.shared_name;
        c.shared_size = inherited.shared_size;
    }
    s.settings->ssl_session_cache = c;
}

void h_ticket_key(Builder& b, Scope& s, const Node& n) {
    auto& list = s.settings->ssl_session_ticket_key;
    if (s.first_in_block(n.name.text)) list.clear();
    const Word& w = n.args[0];
    if (!refuse_variables(b, n, w)) return;
    std::string path = b.resolve_path(w.text);
    if (b.options().check_files) check_ticket_key_file(b, path, w.loc);
    list.push_back(std::move(path));
}

void h_verify_client(Builder& b, Scope& s, const Node& n) {
    const std::string& v = n.args[0].text;
    auto& out = s.settings->ssl_verify_client;
    if (v == "off") {
        out = VerifyClient::kOff;
    } else if (v == "on") {
        out = VerifyClient::kOn;
    } else if (v == "optional") {
        out = VerifyClient::kOptional;
    } else if (v == "optional_no_ca") {
        out = VerifyClient::kOptionalNoCa;
    } else {
        b.error(n.args[0].loc, "invalid value " + dq(v) +
                                   " in \"ssl_verify_client\": expected on, off, optional or "
                                   "optional_no_ca");
    }
}

void h_ciphers(Builder& b, Scope& s, const Node& n) {
    std::string& field = n.name.text == "ssl_ciphers" ? s.settings->ssl_ciphers
                                                      : s.settings->proxy_ssl_ciphers;
    if (check_cipher_list(b, n.args[0].text, n.args[0].loc)) field = n.args[0].text;
}

void h_ecdh_curve(Builder& b, Scope& s, const Node& n) {
    if (check_ecdh_curve(b, n.args[0].text, n.args[0].loc)) {
        s.settings->ssl_ecdh_curve = n.args[0].text;
    }
}

void h_proxy_ssl_file(Builder& b, Scope& s, const Node& n) {
    const Word& w = n.args[0];
    if (has_variables(w.text)) {
        b.error(w.loc, dq(n.name.text) + " with variables is not supported by Terminus");
        return;
    }
    std::string path = b.resolve_path(w.text);
    if (n.name.text == "proxy_ssl_certificate") {
        s.settings->proxy_ssl_certificate = path;
        s.scratch->proxy_ssl_certificate_loc = w.loc;
        if (b.options().check_files) check_certificate_file(b, path, w.loc);
    } else if (n.name.text == "proxy_ssl_certificate_key") {
        s.settings->proxy_ssl_certificate_key = path;
        s.scratch->proxy_ssl_certificate_key_loc = w.loc;
    } else {
        s.settings->proxy_ssl_password_file = path;
        s.scratch->proxy_ssl_password_file_loc = w.loc;
        if (b.options().check_files) check_password_file(b, path, w.loc);
    }
}

// Terminus verifies upstream certificates unless told not to (nginx
// does not); where it was told is kept for the warning (validate.cc).
void h_proxy_ssl_verify(Builder& b, Scope& s, const Node& n) {
    read_flag(b, n, s.settings->proxy_ssl_verify);
    s.scratch->proxy_ssl_verify_loc = n.loc();
}

void h_proxy_ssl_verify_depth(Builder& b, Scope& s, const Node& n) {
    read_u32(b, n, n.args[0], s.settings->proxy_ssl_verify_depth, 0, 100);
}

void h_ssl_verify_depth(Builder& b, Scope& s, const Node& n) {
    read_u32(b, n, n.args[0], s.settings->ssl_verify_depth, 0, 100);
}

void h_proxy_ssl_name(Builder& b, Scope& s, const Node& n) {
    s.settings->proxy_ssl_name = n.args[0].text;
    b.use_variables(n.args[0], "proxy_ssl_name");
}

void h_proxy_next_upstream_tries(Builder& b, Scope& s, const Node& n) {
    read_u32(b, n, n.args[0], s.settings->proxy_next_upstream_tries, 0, 1000);
}

void h_include_unfollowed(Builder&, Scope&, const Node&) {
    // Only reached when includes are not followed (the fuzzer); the parser
    // splices included files in every other case.
}

// Contexts used below.
constexpr uint32_t kSS = kStream | kServer;

// The table. Keep it sorted by block, then as nginx's documentation lists
// the directives.
constexpr DirectiveSpec kDirectives[] = {
    // name, contexts, min, max, block, repeatable, default, handler
    {"include", kMain | kDataplane | kStream | kUpstream | kServer | kMgmt | kMatch, 1, 1, false,
     true, "", h_include_unfollowed},
    {"error_log", kMain | kSS, 1, 2, false, false, "stderr error", h_error_log},

    // top-level blocks
    {"dataplane", kMain, 0, 0, true, false, "", h_block_dataplane},
    {"stream", kMain, 0, 0, true, false, "", h_block_stream},
    {"mgmt", kMain, 0, 0, true, false, "", h_block_mgmt},

    // dataplane {}
    {"port", kDataplane, 1, kAnyArgs, false, true, "", h_dp_port},
    {"lcores", kDataplane, 1, kAnyArgs, false, false, "0", h_dp_lcores},
    {"crypto", kDataplane, 1, 1, false, false, "ipsec_mb", h_dp_crypto},
    {"mbufs", kDataplane, 1, 1, false, false, "32767", h_dp_mbufs},
    {"max_connections", kDataplane, 1, 1, false, false, "65536", h_dp_max_connections},
    {"eal_args", kDataplane, 1, kAnyArgs, false, true, "", h_dp_eal_args},
    {"syncookies", kDataplane, 1, 1, false, false, "on", h_dp_syncookies},
    {"tcp_congestion", kDataplane, 1, 1, false, false, "newreno", h_dp_tcp_congestion},
    {"shutdown_timeout", kDataplane, 1, 1, false, false, "10s", h_dp_shutdown_timeout},

    // mgmt {}
    {"control", kMgmt, 1, 1, false, false, "unix:/run/terminus/control.sock", h_mgmt_control},
    {"metrics", kMgmt, 1, 1, false, false, "off", h_mgmt_metrics},
    {"ticket_key_rotation", kMgmt, 1, 1, false, false, "1h", h_mgmt_rotation},
    {"access_log_buffer", kMgmt, 1, 1, false, false, "64k", h_mgmt_log_buffer},

    // stream {}
    {"upstream", kStream, 1, 1, true, true, "", h_block_upstream},
    {"server", kStream, 0, 0, true, true, "", h_server_in_stream},
    {"map", kStream, 2, 2, true, true, "", h_block_map},
    {"match", kStream | kUpstream, 1, 1, true, true, "", h_block_match},
    {"log_format", kStream, 2, kAnyArgs, false, true, "", h_log_format},
    {"access_log", kSS, 1, kAnyArgs, false, true, "off", h_access_log},
    {"limit_conn_zone", kStream, 2, 2, false, true, "", h_limit_conn_zone},

    // upstream {}
    {"server", kUpstream, 1, kAnyArgs, false, true, "", h_upstream_server},
    {"least_conn", kUpstream, 0, 0, false, false, "", h_least_conn},
    {"hash", kUpstream, 1, 2, false, false, "", h_hash},
    {"random", kUpstream, 0, 2, false, false, "", h_random},
    {"zone", kUpstream, 1, 2, false, false, "", h_zone},
    {"health_check", kUpstream | kServer, 0, kAnyArgs, false, false, "", h_health_check},

    // match {}
    {"send", kMatch, 1, 1, false, false, "", h_match_send},
    {"expect", kMatch, 1, 2, false, false, "", h_match_expect},

    // server {}
    {"listen", kServer, 1, kAnyArgs, false, true, "", h_listen},
    {"server_name", kServer, 1, kAnyArgs, false, true, "\"\"", h_server_name},
    {"proxy_pass", kServer, 1, 1, false, false, "", h_proxy_pass},
    {"return", kServer, 1, 1, false, false, "", h_return},
    {"proxy_connect_timeout", kSS, 1, 1, false, false, "60s",
     h_msec<&ServerSettings::proxy_connect_timeout>},
    {"proxy_timeout", kSS, 1, 1, false, false, "10m", h_msec<&ServerSettings::proxy_timeout>},
    {"proxy_next_upstream", kSS, 1, 1, false, false, "on",
     h_flag<&ServerSettings::proxy_next_upstream>},
    {"proxy_next_upstream_tries", kSS, 1, 1, false, false, "0", h_proxy_next_upstream_tries},
    {"proxy_next_upstream_timeout", kSS, 1, 1, false, false, "0",
     h_msec<&ServerSettings::proxy_next_upstream_timeout>},
    {"proxy_protocol", kSS, 1, 1, false, false, "off", h_flag<&ServerSettings::proxy_protocol>},
    {"proxy_protocol_version", kSS, 1, 1, false, false, "1", h_proxy_protocol_version},
    {"set_real_ip_from", kSS, 1, 1, false, true, "", h_set_real_ip_from},
    {"proxy_protocol_timeout", kSS, 1, 1, false, false, "30s",
     h_msec<&ServerSettings::proxy_protocol_timeout>},
    {"proxy_buffer_size", kSS, 1, 1, false, false, "16k",
     h_size_nonzero<&ServerSettings::proxy_buffer_size>},
    {"proxy_upload_rate", kSS, 1, 1, false, false, "0",
     h_size<&ServerSettings::proxy_upload_rate>},
    {"proxy_download_rate", kSS, 1, 1, false, false, "0",
     h_size<&ServerSettings::proxy_download_rate>},
    {"proxy_half_close", kSS, 1, 1, false, false, "off",
     h_flag<&ServerSettings::proxy_half_close>},
    {"allow", kSS, 1, 1, false, true, "", h_access_rule},
    {"deny", kSS, 1, 1, false, true, "", h_access_rule},
    {"limit_conn", kSS, 2, 2, false, true, "", h_limit_conn},
    {"limit_conn_dry_run", kSS, 1, 1, false, false, "off", h_flag<&ServerSettings::limit_conn_dry_run>},
    {"limit_conn_log_level", kSS, 1, 1, false, false, "error", h_limit_conn_log_level},
    {"ssl_preread", kSS, 1, 1, false, false, "off", h_flag<&ServerSettings::ssl_preread>},
    {"preread_timeout", kSS, 1, 1, false, false, "30s", h_msec<&ServerSettings::preread_timeout>},
    {"preread_buffer_size", kSS, 1, 1, false, false, "16k",
     h_size_nonzero<&ServerSettings::preread_buffer_size>},

    // server-side TLS
    {"ssl_certificate", kSS, 1, 1, false, true, "", h_ssl_certificate},
    {"ssl_certificate_key", kSS, 1, 1, false, true, "", h_ssl_certificate},
    {"ssl_password_file", kSS, 1, 1, false, false, "", h_ssl_password_file},
    {"ssl_protocols", kSS, 1, 4, false, false, "TLSv1.2 TLSv1.3",
     h_protocols<&ServerSettings::ssl_protocols>},
    {"ssl_ciphers", kSS, 1, 1, false, false, "HIGH:!aNULL:!MD5", h_ciphers},
    {"ssl_conf_command", kSS, 2, 2, false, true, "",
     h_conf_command<&ServerSettings::ssl_conf_command>},
    {"ssl_prefer_server_ciphers", kSS, 1, 1, false, false, "off",
     h_flag<&ServerSettings::ssl_prefer_server_ciphers>},
    {"ssl_ecdh_curve", kSS, 1, 1, false, false, "auto", h_ecdh_curve},
    {"ssl_dhparam", kSS, 1, 1, false, false, "",
     h_file<&ServerSettings::ssl_dhparam, FileKind::kDhparam>},
    {"ssl_session_cache", kSS, 1, 3, false, false, "none", h_ssl_session_cache},
    {"ssl_session_timeout", kSS, 1, 1, false, false, "5m",
     h_sec<&ServerSettings::ssl_session_timeout>},
    {"ssl_session_tickets", kSS, 1, 1, false, false, "on",
     h_flag<&ServerSettings::ssl_session_tickets>},
    {"ssl_session_ticket_key", kSS, 1, 1, false, true, "", h_ticket_key},
    {"ssl_handshake_timeout", kSS, 1, 1, false, false, "60s",
     h_msec<&ServerSettings::ssl_handshake_timeout>},
    {"ssl_verify_client", kSS, 1, 1, false, false, "off", h_verify_client},
    {"ssl_verify_depth", kSS, 1, 1, false, false, "1", h_ssl_verify_depth},
    {"ssl_client_certificate", kSS, 1, 1, false, false, "",
     h_file<&ServerSettings::ssl_client_certificate, FileKind::kCa>},
    {"ssl_trusted_certificate", kSS, 1, 1, false, false, "",
     h_file<&ServerSettings::ssl_trusted_certificate, FileKind::kCa>},
    {"ssl_crl", kSS, 1, 1, false, false, "", h_file<&ServerSettings::ssl_crl, FileKind::kCrl>},
    {"ssl_alpn", kSS, 1, kAnyArgs, false, false, "", h_alpn<&ServerSettings::ssl_alpn>},
    {"ssl_stapling", kSS, 1, 1, false, false, "off", h_flag<&ServerSettings::ssl_stapling>},
    {"ssl_stapling_file", kSS, 1, 1, false, false, "",
     h_file<&ServerSettings::ssl_stapling_file, FileKind::kStapling>},
    {"ssl_stapling_verify", kSS, 1, 1, false, false, "off",
     h_flag<&ServerSettings::ssl_stapling_verify>},
    {"ssl_reject_handshake", kSS, 1, 1, false, false, "off",
     h_flag<&ServerSettings::ssl_reject_handshake>},
    {"ssl_early_data", kSS, 1, 1, false, false, "off", h_flag<&ServerSettings::ssl_early_data>},

    // upstream-side TLS
    {"proxy_ssl", kSS, 1, 1, false, false, "off", h_flag<&ServerSettings::proxy_ssl>},
    {"proxy_ssl_certificate", kSS, 1, 1, false, false, "", h_proxy_ssl_file},
    {"proxy_ssl_certificate_key", kSS, 1, 1, false, false, "", h_proxy_ssl_file},
    {"proxy_ssl_password_file", kSS, 1, 1, false, false, "", h_proxy_ssl_file},
    {"proxy_ssl_protocols", kSS, 1, 4, false, false, "TLSv1.2 TLSv1.3",
     h_protocols<&ServerSettings::proxy_ssl_protocols>},
    {"proxy_ssl_ciphers", kSS, 1, 1, false, false, "DEFAULT", h_ciphers},
    {"proxy_ssl_conf_command", kSS, 2, 2, false, true, "",
     h_conf_command<&ServerSettings::proxy_ssl_conf_command>},
    {"proxy_ssl_verify", kSS, 1, 1, false, false, "on", h_proxy_ssl_verify},
    {"proxy_ssl_verify_depth", kSS, 1, 1, false, false, "1", h_proxy_ssl_verify_depth},
    {"proxy_ssl_trusted_certificate", kSS, 1, 1, false, false, "",
     h_file<&ServerSettings::proxy_ssl_trusted_certificate, FileKind::kCa>},
    {"proxy_ssl_crl", kSS, 1, 1, false, false, "",
     h_file<&ServerSettings::proxy_ssl_crl, FileKind::kCrl>},
    {"proxy_ssl_server_name", kSS, 1, 1, false, false, "off",
     h_flag<&ServerSettings::proxy_ssl_server_name>},
    {"proxy_ssl_name", kSS, 1, 1, false, false, "", h_proxy_ssl_name},
    {"proxy_ssl_session_reuse", kSS, 1, 1, false, false, "on",
     h_flag<&ServerSettings::proxy_ssl_session_reuse>},
    {"proxy_ssl_alpn", kSS, 1, kAnyArgs, false, false, "",
     h_alpn<&ServerSettings::proxy_ssl_alpn>},
};

}  // namespace

std::span<const DirectiveSpec> directive_table() { return kDirectives; }

const DirectiveSpec* find_directive(std::string_view name, Ctx ctx, uint32_t* all_contexts) {
    const DirectiveSpec* found = nullptr;
    uint32_t all = 0;
    for (const DirectiveSpec& d : kDirectives) {
        if (d.name != name) continue;
        all |= d.contexts;
        if ((d.contexts & ctx) && !found) found = &d;
    }
    if (all_contexts) *all_contexts = all;
    return found;
}

const char* context_name(Ctx ctx) {
    switch (ctx) {
        case kMain: return "the top level";
        case kDataplane: return "dataplane {}";
        case kStream: return "stream {}";
        case kUpstream: return "upstream {}";
        case kServer: return "server {}";
        case kMgmt: return "mgmt {}";
        case kMatch: return "match {}";
    }
    return "?";
}

std::string describe_contexts(uint32_t contexts) {
    std::vector<std::string> names;
    for (uint32_t bit = 1; bit <= kMatch; bit <<= 1) {
        if (contexts & bit) names.emplace_back(context_name(static_cast<Ctx>(bit)));
    }
    std::string s;
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) s += i + 1 == names.size() ? " or " : ", ";
        s += names[i];
    }
    return s;
}

bool Scope::first_in_block(std::string_view name) const {
    // The current directive is already recorded in "seen" when its handler
    // runs: it is the first if it is there once.
    return std::count(seen.begin(), seen.end(), name) <= 1;
}

}  // namespace terminus::config::detail
