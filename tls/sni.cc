// Server blocks by listen address, and the choice among them by SNI, with
// nginx's precedence (ngx_http_find_virtual_server, which the stream
// module shares): exact, longest leading wildcard, longest trailing
// wildcard, first regular expression, default server.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

#include "tls/tls.h"

namespace terminus::tls {

std::vector<ListenGroup> listen_groups(const config::Config& cfg) {
    std::vector<ListenGroup> groups;
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        for (const auto& l : cfg.servers[i].listen) {
            auto g = std::find_if(groups.begin(), groups.end(), [&](const ListenGroup& x) {
                return x.address == l.address && x.port == l.port;
            });
            if (g == groups.end()) {
                groups.push_back(ListenGroup{});
                g = groups.end() - 1;
                g->address = l.address;
                g->port = l.port;
                g->default_server = i;
            }
            if (std::find(g->servers.begin(), g->servers.end(), i) != g->servers.end()) continue;
            g->servers.push_back(i);
            g->ssl |= l.ssl;
            if (l.default_server) g->default_server = i;
            for (const auto& n : cfg.servers[i].server_name) {
                if (n.kind != config::ServerNameKind::kRegex) continue;
                int err = 0;
                PCRE2_SIZE off = 0;
                pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(n.name.data()), n.name.size(),
                                                 PCRE2_CASELESS, &err, &off, nullptr);
                if (!code) continue;  // the configuration checked it already
                pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
                pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
                g->regexes.push_back(ListenGroup::Regex{
                    i, std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); }),
                    std::shared_ptr<void>(md, [](void* p) { pcre2_match_data_free(static_cast<pcre2_match_data*>(p)); })});
            }
        }
    }
    return groups;
}

size_t select_server(const config::Config& cfg, const ListenGroup& g, const char* sni) {
    if (!sni || !*sni) return g.default_server;
    char name[256];
    size_t len = 0;
    for (; sni[len] && len < sizeof name - 1; ++len) {
        const char c = sni[len];
        name[len] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    if (sni[len]) return g.default_server;  // longer than any host name
    name[len] = '\0';
    const std::string_view host(name, len);

    for (size_t s : g.servers) {
        for (const auto& n : cfg.servers[s].server_name) {
            if (n.kind == config::ServerNameKind::kExact && n.name == host) return s;
        }
    }
    size_t best = SIZE_MAX, best_len = 0;
    for (size_t s : g.servers) {
        for (const auto& n : cfg.servers[s].server_name) {
            if (n.kind != config::ServerNameKind::kWildcardFront) continue;
            // "*.example.com" and ".example.com" match below example.com;
            // ".example.com" matches example.com itself too.
            const std::string_view suffix = n.name[0] == '*' ? std::string_view(n.name).substr(1) : n.name;
            const bool below = host.size() > suffix.size() && host.ends_with(suffix);
            const bool itself = n.name[0] == '.' && host == suffix.substr(1);
            if ((below || itself) && suffix.size() > best_len) {
                best = s;
                best_len = suffix.size();
            }
        }
    }
    if (best != SIZE_MAX) return best;
    for (size_t s : g.servers) {
        for (const auto& n : cfg.servers[s].server_name) {
            if (n.kind != config::ServerNameKind::kWildcardBack) continue;
            const std::string_view prefix = std::string_view(n.name).substr(0, n.name.size() - 1);
            if (host.size() > prefix.size() && host.starts_with(prefix) && prefix.size() > best_len) {
                best = s;
                best_len = prefix.size();
            }
        }
    }
    if (best != SIZE_MAX) return best;
    for (const auto& r : g.regexes) {
        if (pcre2_match(static_cast<pcre2_code*>(r.code.get()), reinterpret_cast<PCRE2_SPTR>(name), len, 0, 0,
                        static_cast<pcre2_match_data*>(r.match.get()), nullptr) >= 0) {
            return r.server;
        }
    }
    return g.default_server;
}

}  // namespace terminus::tls
