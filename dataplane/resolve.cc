// Upstream host names become addresses once, at start, as nginx resolves
// them when it reads its configuration: a name with several IPv4
// addresses stands for that many servers with the same parameters.
#include <netdb.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

#include "dataplane/dataplane.h"
#include "mgmt/error_log.h"

namespace terminus::dataplane {

namespace {

// Every IPv4 address of HOST (host byte order), in the resolver's order;
// says what it found on stderr, as the start-up log does.
std::vector<uint32_t> lookup(const std::string& host, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    std::vector<uint32_t> out;
    if (rc != 0) {
        error = gai_strerror(rc);
        return out;
    }
    for (addrinfo* a = res; a; a = a->ai_next) {
        const uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr.s_addr);
        if (std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
    }
    freeaddrinfo(res);
    std::string list;
    for (uint32_t ip : out) list += (list.empty() ? "" : ", ") + config::ipv4_to_string(ip);
    errlog::report_at(errlog::Level::kInfo, "terminusd", "%s resolved to %s", host.c_str(), list.c_str());
    return out;
}

}  // namespace

std::vector<config::Diagnostic> resolve_hosts(config::Config& cfg) {
    std::vector<config::Diagnostic> errors;
    auto not_found = [&](const config::Location& loc, const std::string& what, const std::string& why) {
        errors.push_back(config::Diagnostic{
            config::Severity::kError, loc,
            "host not found in " + what + " (" + why +
                "): add it to /etc/hosts or DNS, or write its IPv4 address"});
    };
    for (auto& u : cfg.upstreams) {
        std::vector<config::UpstreamServer> servers;
        for (const auto& s : u.servers) {
            if (s.address) {
                servers.push_back(s);
                continue;
            }
            std::string why;
            const std::vector<uint32_t> ips = lookup(s.host, why);
            if (ips.empty()) {
                not_found(s.loc, "upstream \"" + s.host + ":" + std::to_string(s.port) + "\"",
                          why.empty() ? "no IPv4 address" : why);
                continue;
            }
            for (uint32_t ip : ips) {
                config::UpstreamServer copy = s;
                copy.address = ip;
                servers.push_back(copy);
            }
        }
        u.servers = std::move(servers);
    }
    // proxy_pass HOST:PORT with a name: an implicit upstream of its
    // addresses, balanced round robin (nginx does the same).
    std::vector<config::Upstream> implicit;
    for (auto& srv : cfg.servers) {
        auto& pp = srv.proxy_pass;
        if (pp.kind != config::ProxyPass::Kind::kAddress || pp.address) continue;
        std::string why;
        const std::vector<uint32_t> ips = lookup(pp.host, why);
        if (ips.empty()) {
            not_found(pp.loc, "\"proxy_pass " + pp.value + "\"", why.empty() ? "no IPv4 address" : why);
            continue;
        }
        if (ips.size() == 1) {
            pp.address = ips[0];
            continue;
        }
        config::Upstream u;
        u.name = pp.value;  // HOST:PORT cannot clash with an upstream's name in proxy_pass
        u.loc = pp.loc;
        for (uint32_t ip : ips) {
            config::UpstreamServer s;
            s.host = pp.host;
            s.address = ip;
            s.port = pp.port;
            s.loc = pp.loc;
            u.servers.push_back(s);
        }
        implicit.push_back(u);
        pp.kind = config::ProxyPass::Kind::kUpstream;
        pp.upstream = pp.value;
    }
    for (auto& u : implicit) cfg.upstreams.push_back(std::move(u));
    return errors;
}

}  // namespace terminus::dataplane
