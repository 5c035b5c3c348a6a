// Walks the syntax tree through the directive table, then checks what only
// the whole configuration can tell: references between blocks, listener
// conflicts, certificate/key pairs, variables.
#include <algorithm>
#include <filesystem>
#include <map>

#include "config/schema.h"

namespace terminus::config::detail {

namespace {

namespace fs = std::filesystem;

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string at(const Location& l) { return l.file + ":" + std::to_string(l.line); }

// What a server's names match, as comparable keys with where each is
// written: ".example.com" is both "example.com" and "*.example.com"; a regex
// equals only the same regex. A server without names has the key "".
std::vector<std::pair<std::string, Location>> name_keys(const Server& s) {
    std::vector<std::pair<std::string, Location>> v;
    for (const auto& n : s.server_name) {
        if (n.kind == ServerNameKind::kRegex) {
            v.emplace_back("~" + n.name, n.loc);
        } else if (n.kind == ServerNameKind::kWildcardFront && n.name[0] == '.') {
            v.emplace_back(n.name.substr(1), n.loc);
            v.emplace_back("*" + n.name, n.loc);
        } else {
            v.emplace_back(n.name, n.loc);
        }
    }
    if (v.empty()) v.emplace_back("", Location{});
    return v;
}

// Variables the stream modules provide (nginx's names).
constexpr std::string_view kBuiltinVariables[] = {
    "binary_remote_addr", "bytes_received", "bytes_sent", "connection", "hostname", "msec",
    "nginx_version", "pid", "protocol", "proxy_protocol_addr", "proxy_protocol_port",
    "proxy_protocol_server_addr", "proxy_protocol_server_port", "remote_addr", "remote_port",
    "server_addr", "server_port", "session_time", "status", "time_iso8601", "time_local",
    "ssl_preread_server_name", "ssl_preread_protocol", "ssl_preread_alpn_protocols",
    "ssl_server_name", "ssl_protocol", "ssl_cipher", "ssl_ciphers", "ssl_curve", "ssl_curves",
    "ssl_session_id", "ssl_session_reused", "ssl_alpn_protocol", "ssl_early_data",
    "ssl_client_verify", "ssl_client_s_dn", "ssl_client_i_dn", "ssl_client_serial",
    "ssl_client_fingerprint", "ssl_client_v_start", "ssl_client_v_end",
    "ssl_client_v_remain", "ssl_client_cert", "ssl_client_raw_cert",
    "upstream_addr", "upstream_bytes_sent", "upstream_bytes_received",
    "upstream_connect_time", "upstream_first_byte_time", "upstream_session_time",
};

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
            // Two swapped letters are one typo (optimal string alignment).
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                cur[j] = std::min(cur[j], prev2[j - 2] + 1);
            }
        }
        prev2.swap(prev);  // prev2 = row i-1
        prev.swap(cur);    // prev = row i
    }
    return prev[b.size()];
}

template <typename Range>
std::string closest(std::string_view word, const Range& candidates) {
    std::string best;
    if (word.size() > 64) return best;  // no name is that long
    size_t best_d = std::max<size_t>(1, std::min<size_t>(3, word.size() / 4)) + 1;
    for (const auto& c : candidates) {
        std::string_view cv(c);
        // The length difference is a lower bound of the distance.
        size_t diff = cv.size() > word.size() ? cv.size() - word.size() : word.size() - cv.size();
        if (diff >= best_d) continue;
        size_t d = edit_distance(word, cv);
        if (d < best_d) {
            best_d = d;
            best = std::string(c);
        }
    }
    return best;
}

}  // namespace

ParseOptions parse_options(const LoadOptions& options) {
    ParseOptions p;
    p.follow_includes = options.follow_includes;
    p.is_directive = [](std::string_view name) {
        uint32_t all = 0;
        find_directive(name, kMain, &all);
        return all != 0 || nginx_only_reason(name) != nullptr;
    };
    return p;
}

std::string suggest_directive(std::string_view name) {
    std::vector<std::string_view> names;
    for (const auto& d : directive_table()) names.push_back(d.name);
    return closest(name, names);
}

Builder::Builder(Config& c, Diagnostics& diags, const LoadOptions& options, std::string base_dir)
    : cfg(c), diags_(diags), options_(options), base_dir_(std::move(base_dir)) {}

std::string Builder::resolve_path(const std::string& p) const {
    if (p.empty() || p[0] == '/') return p;
    return (fs::path(base_dir_) / p).lexically_normal().string();
}

void Builder::use_variables(const Word& w, const std::string& directive) {
    const std::string& t = w.text;
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '$') continue;
        size_t j = i + 1;
        bool braced = j < t.size() && t[j] == '{';
        if (braced) ++j;
        size_t start = j;
        while (j < t.size() && (std::isalnum(static_cast<unsigned char>(t[j])) || t[j] == '_')) ++j;
        std::string name = t.substr(start, j - start);
        if (braced && (j >= t.size() || t[j] != '}')) {
            error(w.loc, "the closing bracket in " + dq(t.substr(i)) + " is missing in " +
                             dq(directive));
            return;
        }
        if (name.empty()) {
            error(w.loc, "invalid variable name in " + dq(t) + ": \"$\" must be followed by a "
                                                               "variable name");
            return;
        }
        // $1..$9 are regex captures, set by a matching map entry.
        if (!std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            var_uses.push_back(VarUse{name, w.loc, directive});
        }
        i = braced ? j : j - 1;
    }
}

void Builder::walk(const std::vector<Node>& nodes, Scope& scope) {
    for (const Node& n : nodes) dispatch(n, scope);
}

void Builder::dispatch(const Node& node, Scope& scope) {
    const std::string& name = node.name.text;
    uint32_t all = 0;
    const DirectiveSpec* spec = find_directive(name, scope.ctx, &all);
    if (!spec) {
        if (all) {
            error(node.loc(), dq(name) + " is not allowed in " + context_name(scope.ctx) +
                                  ": it belongs in " + describe_contexts(all));
        } else if (const char* why = nginx_only_reason(name)) {
            error(node.loc(), dq(name) + " is an nginx directive that Terminus does not "
                                         "support: " + why);
        } else {
            std::string s = suggest_directive(name);
            error(node.loc(), "unknown directive " + dq(name) +
                                  (s.empty() ? std::string() : " — did you mean " + dq(s) + "?"));
        }
        return;
    }
    const size_t n = node.args.size();
    if (n < spec->min_args || (spec->max_args != kAnyArgs && n > spec->max_args)) {
        std::string expected;
        if (spec->min_args == spec->max_args) {
            expected = spec->min_args == 0 ? "none" : std::to_string(spec->min_args);
        } else if (spec->max_args == kAnyArgs) {
            expected = "at least " + std::to_string(spec->min_args);
        } else {
            expected = std::to_string(spec->min_args) + " to " + std::to_string(spec->max_args);
        }
        error(node.loc(), "invalid number of arguments in " + dq(name) + ": expected " +
                              expected + ", got " + std::to_string(n));
        return;
    }
    if (spec->block && !node.block) {
        error(node.loc(), dq(name) + " needs a block: write " + name + " ... { ... }");
        return;
    }
    if (!spec->block && node.block) {
        error(node.loc(), dq(name) + " takes no block: end it with \";\"");
        return;
    }
    if (!spec->repeatable) {
        auto it = std::find(scope.seen.begin(), scope.seen.end(), spec->name);
        if (it != scope.seen.end()) {
            const Location& first = scope.seen_at[static_cast<size_t>(it - scope.seen.begin())];
            error(node.loc(), dq(name) + " is duplicate: it is already set at " + at(first));
            return;
        }
    }
    scope.seen.push_back(spec->name);
    scope.seen_at.push_back(node.loc());
    cfg.written.push_back(WrittenDirective{name, context_name(scope.ctx), node.loc()});
    spec->handler(*this, scope, node);
}

void Builder::finish() {
    // The lab's default port when dataplane{} names none.
    if (!saw_port && cfg.dataplane.ports.empty()) {
        PortConfig p;
        p.device = "net_tap0";
        p.devargs = {{"iface", "terminus0"}};
        p.address = Ipv4Prefix{(198u << 24) | (18u << 16) | 2u, 24};
        p.gateway = (198u << 24) | (18u << 16) | 1u;
        cfg.dataplane.ports.push_back(std::move(p));
        cfg.dataplane.ports_defaulted = true;
    }

    for (size_t i = 0; i < cfg.servers.size(); ++i) finish_server(cfg.servers[i], server_scratch[i]);
    check_listeners();

    // Variables, once every map is known.
    for (const VarUse& u : var_uses) {
        if (cfg.find_map(u.name)) continue;
        if (std::find(capture_variables.begin(), capture_variables.end(), u.name) !=
            capture_variables.end()) {
            continue;
        }
        if (std::find(std::begin(kBuiltinVariables), std::end(kBuiltinVariables), u.name) !=
            std::end(kBuiltinVariables)) {
            continue;
        }
        std::vector<std::string> names(std::begin(kBuiltinVariables), std::end(kBuiltinVariables));
        for (const auto& m : cfg.maps) names.push_back(m.variable);
        for (const auto& c : capture_variables) names.push_back(c);
        std::string s = closest(u.name, names);
        error(u.loc, "unknown variable " + dq("$" + u.name) + " in " + dq(u.directive) +
                         (s.empty() ? ": define it with \"map\""
                                    : " — did you mean " + dq("$" + s) + "?"));
    }

    // Names that refer to other blocks.
    auto check_log = [&](const ServerSettings& st) {
        for (const auto& log : st.access_log) {
            bool found = std::any_of(cfg.log_formats.begin(), cfg.log_formats.end(),
                                     [&](const LogFormat& f) { return f.name == log.format; });
            if (!found) {
                error(log.loc, "unknown log format " + dq(log.format) +
                                   ": define it with \"log_format\" in stream {}");
            }
        }
        for (const auto& lc : st.limit_conn) {
            bool found = std::any_of(cfg.limit_conn_zones.begin(), cfg.limit_conn_zones.end(),
                                     [&](const LimitConnZone& z) { return z.name == lc.zone; });
            if (!found) {
                error(lc.loc, "unknown limit_conn_zone " + dq(lc.zone) +
                                  ": declare it with \"limit_conn_zone KEY zone=" + lc.zone +
                                  ":SIZE;\" in stream {}");
            }
        }
    };
    check_log(stream_settings);
    for (const auto& s : cfg.servers) check_log(s.settings);

    auto check_hc = [&](const HealthCheck& hc) {
        if (!hc.enabled || hc.match.empty()) return;
        bool found = std::any_of(cfg.matches.begin(), cfg.matches.end(),
                                 [&](const Match& m) { return m.name == hc.match; });
        if (!found) error(hc.loc, "health_check match=" + hc.match + ": no match {} block of that name");
    };
    for (const auto& u : cfg.upstreams) check_hc(u.health_check);
    for (const auto& s : cfg.servers) check_hc(s.health_check);

    // One shared session cache per name, of one size.
    std::map<std::string, std::pair<uint64_t, Location>> caches;
    for (const auto& s : cfg.servers) {
        const auto& c = s.settings.ssl_session_cache;
        if (c.shared_name.empty()) continue;
        auto [it, inserted] = caches.try_emplace(c.shared_name, c.shared_size, s.loc);
        if (!inserted && it->second.first != c.shared_size) {
            error(s.loc, "shared session cache " + dq(c.shared_name) + " is declared with size " +
                             std::to_string(c.shared_size) + " here and " +
                             std::to_string(it->second.first) + " at " + at(it->second.second) +
                             ": one name is one cache of one size");
        }
    }
    for (const auto& z : cfg.limit_conn_zones) {
        if (caches.count(z.name)) {
            error(z.loc, "zone " + dq(z.name) + " is already used by ssl_session_cache: give "
                                                 "the limit_conn_zone another name");
        }
    }

    if (cfg.servers.empty() && !diags_.has_errors()) {
        warning(Location{main_name, 1, 1},
                "no server {} is defined in stream {}: terminusd will only answer ARP and ping");
    }
}

void Builder::finish_server(Server& s, SettingsScratch& scratch) {
    ServerSettings& st = s.settings;
    // Not when a "listen" or "proxy_pass" was written and refused: its own
    // error says what is wrong.
    if (s.listen.empty() && !scratch.listen_written) {
        error(s.loc, "no \"listen\" is defined for this server: add \"listen PORT;\"");
    }
    if (s.proxy_pass.kind == ProxyPass::Kind::kNone && !s.return_value &&
        !scratch.proxy_pass_written) {
        error(s.loc, "this server has neither \"proxy_pass\" nor \"return\": add one");
    }
    if (s.proxy_pass.kind != ProxyPass::Kind::kNone && s.return_value) {
        error(s.proxy_pass.loc, "\"proxy_pass\" and \"return\" cannot be used in one server");
    }
    check_proxy_pass(s);

    // Certificates and keys pair up in the order they are written.
    const auto& certs = scratch.certificates;
    const auto& keys = scratch.keys;
    for (size_t i = 0; i < std::max(certs.size(), keys.size()); ++i) {
        if (i >= keys.size()) {
            error(certs[i].loc, "no \"ssl_certificate_key\" is defined for certificate " +
                                    dq(certs[i].written) + ": add one after it");
        } else if (i >= certs.size()) {
            error(keys[i].loc, "\"ssl_certificate_key\" " + dq(keys[i].written) +
                                   " has no \"ssl_certificate\" to pair with");
        } else {
            st.ssl_certificates.push_back(
                CertKeyPair{certs[i].path, keys[i].path, certs[i].loc, keys[i].loc});
        }
    }
    const bool ssl = std::any_of(s.listen.begin(), s.listen.end(), [](const Listen& l) { return l.ssl; });
    if (options_.check_files) {
        // nginx loads every pair a server names, with "ssl" or without.
        for (size_t i = 0; i < std::min(certs.size(), keys.size()); ++i) {
            check_key_matches(*this, certs[i], keys[i], st.ssl_password_file);
        }
    }
    if (ssl) {
        // Whether an ssl listener has a certificate is decided per
        // address:port, on its default server (check_listeners).
        if ((st.ssl_verify_client == VerifyClient::kOn ||
             st.ssl_verify_client == VerifyClient::kOptional) &&
            st.ssl_client_certificate.empty() && st.ssl_trusted_certificate.empty()) {
            error(s.loc, "ssl_verify_client needs the CA that signs client certificates: add "
                         "ssl_client_certificate (or ssl_trusted_certificate)");
        }
        if (st.ssl_stapling && st.ssl_stapling_file.empty()) {
            error(s.loc, "\"ssl_stapling on\" needs \"ssl_stapling_file\": Terminus staples an "
                         "OCSP response from a file and does not query OCSP responders");
        }
        if (st.ssl_stapling && st.ssl_stapling_verify && st.ssl_trusted_certificate.empty()) {
            warning(s.loc, "\"ssl_stapling_verify on\" without \"ssl_trusted_certificate\": the "
                           "response is verified against the certificate chain alone");
        }
    }

    // Upstream-side TLS.
    if (st.proxy_ssl_certificate.empty() != st.proxy_ssl_certificate_key.empty()) {
        const Location& l = st.proxy_ssl_certificate.empty() ? scratch.proxy_ssl_certificate_key_loc
                                                             : scratch.proxy_ssl_certificate_loc;
        error(l.line ? l : s.loc, "\"proxy_ssl_certificate\" and \"proxy_ssl_certificate_key\" "
                                  "go together: set both or neither");
    } else if (!st.proxy_ssl_certificate.empty() && options_.check_files) {
        check_key_matches(*this,
                          PathAt{st.proxy_ssl_certificate, st.proxy_ssl_certificate,
                                 scratch.proxy_ssl_certificate_loc},
                          PathAt{st.proxy_ssl_certificate_key, st.proxy_ssl_certificate_key,
                                 scratch.proxy_ssl_certificate_key_loc},
                          st.proxy_ssl_password_file);
    }
    // Terminus verifies upstream certificates by default, against
    // proxy_ssl_trusted_certificate or else the system's CA store (nginx
    // verifies nothing unless told, and then needs the bundle). Turning it
    // off is allowed, and said out loud where it was written: once, even
    // when a stream{}-level "proxy_ssl_verify off" reaches many servers.
    const Location& off_at = scratch.proxy_ssl_verify_loc;
    if (st.proxy_ssl && !st.proxy_ssl_verify && off_at.line) {
        bool first = true;
        for (const Server& o : cfg.servers) {
            if (&o == &s) break;
            const Location& l = server_scratch[static_cast<size_t>(&o - cfg.servers.data())].proxy_ssl_verify_loc;
            if (o.settings.proxy_ssl && !o.settings.proxy_ssl_verify && l.file == off_at.file &&
                l.line == off_at.line && l.column == off_at.column) {
                first = false;
            }
        }
        if (first) {
            warning(off_at, "upstream certificates are not verified (\"proxy_ssl_verify off\" with "
                            "\"proxy_ssl on\"): anyone on the path to the upstream can read and change "
                            "the traffic");
        }
    }
}

void Builder::check_proxy_pass(Server& s) {
    ProxyPass& pp = s.proxy_pass;
    std::vector<std::string> upstream_names;
    for (const auto& u : cfg.upstreams) upstream_names.push_back(u.name);

    auto names_upstream_or_address = [&](const std::string& v) {
        if (cfg.find_upstream(v)) return true;
        auto colon = v.rfind(':');
        return colon != std::string::npos && colon + 1 < v.size();
    };

    if (pp.kind == ProxyPass::Kind::kUpstream && !cfg.find_upstream(pp.upstream)) {
        std::string sug = closest(pp.upstream, upstream_names);
        error(pp.loc, "proxy_pass " + dq(pp.upstream) + ": no upstream " + dq(pp.upstream) +
                          " is defined" +
                          (sug.empty() ? std::string() : " — did you mean " + dq(sug) + "?") +
                          " (write HOST:PORT for a single server)");
    }
    if (pp.kind == ProxyPass::Kind::kVariable && pp.value.size() > 1 && pp.value[0] == '$') {
        std::string var = pp.value.substr(1);
        if (var.size() > 2 && var.front() == '{' && var.back() == '}') var = var.substr(1, var.size() - 2);
        if (const Map* m = cfg.find_map(var)) {
            for (const auto& e : m->entries) {
                if (e.value.find('$') == std::string::npos && !names_upstream_or_address(e.value)) {
                    error(e.loc, "map value " + dq(e.value) + " is used by proxy_pass at " +
                                     at(pp.loc) + " but names no upstream and is not HOST:PORT");
                }
            }
            if (m->default_value.empty()) {
                warning(m->loc, "map " + dq("$" + m->variable) +
                                    " has no default, and proxy_pass at " + at(pp.loc) +
                                    " uses it: connections that match no key are closed");
            } else if (m->default_value.find('$') == std::string::npos &&
                       !names_upstream_or_address(m->default_value)) {
                error(m->loc, "map default " + dq(m->default_value) + " is used by proxy_pass at " +
                                  at(pp.loc) + " but names no upstream and is not HOST:PORT");
            }
            if (m->source.find("$ssl_preread_") != std::string::npos && !s.settings.ssl_preread) {
                warning(pp.loc, "proxy_pass uses " + dq("$" + m->variable) + ", which is mapped "
                                "from " + dq(m->source) + ", but \"ssl_preread\" is off here: "
                                "the value is always empty; add \"ssl_preread on;\"");
            }
        }
    }
    if (pp.kind == ProxyPass::Kind::kVariable && pp.value.find("$ssl_preread_") != std::string::npos &&
        !s.settings.ssl_preread) {
        warning(pp.loc, "proxy_pass uses " + dq(pp.value) + " but \"ssl_preread\" is off here: the "
                        "name is always empty; add \"ssl_preread on;\"");
    }
    if (s.health_check.enabled && pp.kind != ProxyPass::Kind::kUpstream) {
        error(s.health_check.loc, "\"health_check\" needs \"proxy_pass\" to an upstream group");
    }
}

void Builder::check_listeners() {
    struct Use {
        Server* server;
        const Listen* listen;
    };
    std::map<std::pair<uint32_t, uint16_t>, std::vector<Use>> groups;
    for (auto& s : cfg.servers) {
        for (const auto& l : s.listen) groups[{l.address, l.port}].push_back(Use{&s, &l});
    }
    for (auto& [key, uses] : groups) {
        const std::string where = ipv4_to_string(key.first) + ":" + std::to_string(key.second);
        const Use& first = uses.front();
        const Use* default_use = nullptr;
        const Use* options_use = nullptr;
        for (const Use& u : uses) {
            if (u.listen->ssl != first.listen->ssl) {
                error(u.listen->loc, "listen " + where + (u.listen->ssl ? " has" : " lacks") +
                                         " \"ssl\" here but " +
                                         (first.listen->ssl ? "has" : "lacks") + " it at " +
                                         at(first.listen->loc) +
                                         ": every server on one address:port must agree");
            }
            if (u.listen->proxy_protocol != first.listen->proxy_protocol) {
                error(u.listen->loc, "listen " + where + ": \"proxy_protocol\" differs from " +
                                         at(first.listen->loc) +
                                         ": every server on one address:port must agree");
            }
            if (u.listen->default_server) {
                if (default_use) {
                    error(u.listen->loc, "a duplicate default server for " + where +
                                             ": the first is at " + at(default_use->listen->loc));
                } else {
                    default_use = &u;
                }
            }
            const bool has_options = u.listen->backlog != 511 || u.listen->so_keepalive.set ||
                                     u.listen->reuseport;
            if (has_options) {
                if (options_use && options_use->server != u.server) {
                    error(u.listen->loc, "duplicate listen options for " + where +
                                             ": they are already set at " +
                                             at(options_use->listen->loc));
                } else {
                    options_use = &u;
                }
            }
        }
        // Servers on one address:port are told apart by server_name.
        std::vector<Server*> servers;
        for (const Use& u : uses) {
            if (std::find(servers.begin(), servers.end(), u.server) == servers.end()) {
                servers.push_back(u.server);
            } else {
                error(u.listen->loc, "a duplicate listen " + where + " in this server");
            }
        }
        // An ssl address:port needs a certificate on its default server;
        // the others fall back to it when they have none, as in nginx. A
        // server with "ssl_preread on" on an ssl address:port passes its
        // names through undecrypted instead (Terminus: terminate and pass
        // through on one listen), so it needs none.
        if (first.listen->ssl) {
            const Use& d = default_use ? *default_use : first;
            const ServerSettings& st = d.server->settings;
            if (st.ssl_certificates.empty() && !st.ssl_reject_handshake && !st.ssl_preread) {
                size_t idx = static_cast<size_t>(d.server - cfg.servers.data());
                const SettingsScratch& sc = server_scratch[idx];
                if (sc.certificates.empty() && sc.keys.empty()) {
                    error(d.listen->loc, "no \"ssl_certificate\" is defined for \"listen ... ssl\" on " +
                                             where + ": add ssl_certificate and "
                                             "ssl_certificate_key, or ssl_reject_handshake on");
                }
            }
        }
        for (size_t i = 1; i < servers.size(); ++i) {
            for (size_t j = 0; j < i; ++j) {
                auto a = name_keys(*servers[i]);
                auto b = name_keys(*servers[j]);
                for (const auto& entry : a) {
                    const std::string& key = entry.first;
                    const Location& loc = entry.second;
                    bool clash = std::any_of(b.begin(), b.end(),
                                             [&](const auto& other) { return other.first == key; });
                    if (!clash) continue;
                    error(loc.line ? loc : servers[i]->loc,
                          (key.empty() ? std::string("two servers without server_name")
                                       : "conflicting server name " + dq(key)) +
                                 " on " + where + ": the other is the server at " +
                                 at(servers[j]->loc) +
                                 "; give each server on one address:port its own server_name");
                }
            }
        }
    }

    // A listen address must be one the dataplane owns.
    for (const auto& s : cfg.servers) {
        for (const auto& l : s.listen) {
            if (l.address == 0) continue;
            bool owned = std::any_of(cfg.dataplane.ports.begin(), cfg.dataplane.ports.end(),
                                     [&](const PortConfig& p) { return p.address.addr == l.address; });
            if (!owned && !cfg.dataplane.ports.empty()) {
                std::string have;
                for (const auto& p : cfg.dataplane.ports) {
                    if (!have.empty()) have += ", ";
                    have += ipv4_to_string(p.address.addr);
                }
                error(l.loc, "listen " + ipv4_to_string(l.address) +
                                 ": no dataplane port has this address (ports have " + have +
                                 "); listen on \"*\" or add it to a port in dataplane {}");
            }
        }
    }
}

}  // namespace terminus::config::detail

namespace terminus::config {

namespace {

LoadResult build(std::vector<detail::Node> nodes, detail::Diagnostics& diags,
                 const LoadOptions& options, const std::string& main_path) {
    namespace fs = std::filesystem;
    auto cfg = std::make_shared<Config>();
    std::error_code ec;
    fs::path abs = fs::absolute(main_path, ec);
    cfg->path = ec ? main_path : abs.lexically_normal().string();
    detail::Builder b(*cfg, diags, options, fs::path(cfg->path).parent_path().string());
    b.main_name = main_path;
    detail::Scope top;
    top.ctx = detail::kMain;
    b.walk(nodes, top);
    b.finish();
    LoadResult r;
    const bool failed = diags.has_errors();
    r.diagnostics = diags.take_sorted();
    if (!failed) r.config = std::move(cfg);
    return r;
}

}  // namespace

LoadResult load_file(const std::string& path, const LoadOptions& options) {
    detail::Diagnostics diags;
    auto nodes = detail::parse_file(path, diags, detail::parse_options(options));
    return build(std::move(nodes), diags, options, path);
}

LoadResult load_string(std::string_view text, const std::string& name, const LoadOptions& options) {
    detail::Diagnostics diags;
    auto nodes = detail::parse_text(text, name, diags, detail::parse_options(options));
    return build(std::move(nodes), diags, options, name);
}

}  // namespace terminus::config
