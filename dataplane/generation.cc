#include "dataplane/generation.h"

#include <openssl/crypto.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "dataplane/publish.h"

namespace terminus::dataplane {

Result<std::unique_ptr<Generation>> build_generation(const GenerationBase& base,
                                                     std::shared_ptr<const config::Config> cfg, uint32_t number,
                                                     const Generation* previous) {
    auto g = std::make_unique<Generation>();
    g->number = number;
    g->cfg = cfg;
    const config::Config& c = *cfg;
    const unsigned n = base.n_cores;
    g->upstreams = std::make_unique<proxy::SharedUpstreams>(c, previous ? previous->upstreams.get() : nullptr);
    std::vector<proxy::LimitZone*> zones;
    for (const auto& z : c.limit_conn_zones) {
        g->zones.push_back(base.limit_zones->get(z.name, z.size));
        zones.push_back(g->zones.back().get());
    }
    tls::TlsCarry carry = base.carry;
    carry.generation = number;
    bool any_tls = false, any_proxy_ssl = false;
    for (const auto& srv : c.servers) {
        for (const auto& l : srv.listen) any_tls |= l.ssl;
        any_proxy_ssl |= srv.settings.proxy_ssl;
    }
    if (any_tls) {
        auto sh = tls::SharedTls::create(c, n, &carry);
        if (!sh) return make_error("TLS: " + sh.error());
        g->tls = std::move(*sh);
    }
    if (any_proxy_ssl) {
        auto sh = tls::SharedUpstreamTls::create(c, n, &carry);
        if (!sh) return make_error("upstream TLS: " + sh.error());
        g->upstream_tls = std::move(*sh);
    }
    for (unsigned i = 0; i < n; ++i) {
        proxy::Proxy& p = *base.proxies[i];
        tls::CoreTls* ct = nullptr;
        tls::UpstreamTls* ut = nullptr;
        if (any_tls) {
            auto r = tls::CoreTls::create(c, *g->tls, i, &p.tls_counters());
            if (!r) return make_error("TLS: " + r.error());
            g->core_tls.push_back(std::move(*r));
            ct = g->core_tls.back().get();
        }
        if (any_proxy_ssl) {
            auto r = tls::UpstreamTls::create(c, *g->upstream_tls, i, ct ? ct->libctx() : nullptr,
                                              &p.upstream_tls_counters());
            if (!r) return make_error("upstream TLS: " + r.error());
            g->core_upstream_tls.push_back(std::move(*r));
            ut = g->core_upstream_tls.back().get();
        }
        g->routes.push_back(p.make_routes(number, cfg, *g->upstreams, ct, ut, zones));
    }
    // Active health checks: one checker, on core 0 (proxy/health.h says
    // why), made before any core picks a server ("mandatory" holds them
    // back); it starts when core 0 installs the generation.
    if (proxy::HealthChecker::configured(c)) {
        auto hc = proxy::HealthChecker::create(c, *g->upstreams, *base.stack0, 0, n, base.local_ip, *base.now_us0,
                                               any_proxy_ssl ? g->core_upstream_tls[0].get() : nullptr);
        if (!hc) return make_error("health checks: " + hc.error());
        g->health = std::move(*hc);
        g->routes[0]->health = g->health.get();
    }
    auto stats = mgmt::StatsWriter::create(base.instance, stat_defs(c), n, base.tsc_hz, number > 1,
                                           base.started_unix);
    if (!stats) return make_error(stats.error());
    g->stats = std::make_unique<mgmt::StatsWriter>(std::move(*stats));
    g->live = number <= 1;
    g->certs = cert_inventory(c);
    // The builder keeps no OpenSSL thread state in the cores' contexts:
    // whichever thread frees them later need not be this one (OpenSSL 3.0
    // frees a thread's state of a context only when the thread stops).
    for (const auto& ct : g->core_tls) OPENSSL_thread_stop_ex(ct->libctx());
    for (const auto& ut : g->core_upstream_tls) OPENSSL_thread_stop_ex(ut->libctx());
    return g;
}

namespace {

int64_t unix_time(const ASN1_TIME* t) {
    struct tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return static_cast<int64_t>(timegm(&tm));
}

std::string oneline(const X509_NAME* n) {
    BIO* b = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
    char* p = nullptr;
    const long len = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<size_t>(len));
    BIO_free(b);
    return s;
}

void read_ocsp(const std::string& path, CertInfo& ci) {
    BIO* b = BIO_new_file(path.c_str(), "rb");
    if (!b) return;
    OCSP_RESPONSE* resp = d2i_OCSP_RESPONSE_bio(b, nullptr);
    BIO_free(b);
    if (!resp) return;
    if (OCSP_BASICRESP* basic = OCSP_response_get1_basic(resp)) {
        if (OCSP_resp_count(basic) > 0) {
            ASN1_GENERALIZEDTIME *this_upd = nullptr, *next_upd = nullptr;
            int reason = 0;
            OCSP_single_get0_status(OCSP_resp_get0(basic, 0), &reason, nullptr, &this_upd, &next_upd);
            ci.ocsp_this_update = unix_time(this_upd);
            ci.ocsp_next_update = unix_time(next_upd);
        }
        OCSP_BASICRESP_free(basic);
    }
    OCSP_RESPONSE_free(resp);
}

}  // namespace

std::vector<CertInfo> cert_inventory(const config::Config& cfg) {
    std::vector<CertInfo> out;
    for (const auto& srv : cfg.servers) {
        for (const auto& pair : srv.settings.ssl_certificates) {
            CertInfo ci;
            ci.server = srv.loc.file + ":" + std::to_string(srv.loc.line);
            ci.path = pair.certificate;
            FILE* f = std::fopen(pair.certificate.c_str(), "r");
            X509* x = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
            if (f) std::fclose(f);
            if (!x) {
                ci.error = "cannot read it again";
                out.push_back(std::move(ci));
                continue;
            }
            ci.subject = oneline(X509_get_subject_name(x));
            ci.not_before = unix_time(X509_get0_notBefore(x));
            ci.not_after = unix_time(X509_get0_notAfter(x));
            if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
                for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
                    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
                    if (gn->type == GEN_DNS) {
                        const ASN1_IA5STRING* d = gn->d.dNSName;
                        ci.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                                              static_cast<size_t>(ASN1_STRING_length(d)));
                    } else if (gn->type == GEN_IPADD && ASN1_STRING_length(gn->d.iPAddress) == 4) {
                        const unsigned char* a = ASN1_STRING_get0_data(gn->d.iPAddress);
                        char buf[16];
                        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
                        ci.names.push_back(std::string("IP:") + buf);
                    }
                }
                GENERAL_NAMES_free(sans);
            }
            if (EVP_PKEY* k = X509_get0_pubkey(x)) {
                const int id = EVP_PKEY_get_base_id(k);
                ci.key = std::string(id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" : id == EVP_PKEY_ED25519 ? "Ed25519" : "other") +
                         " " + std::to_string(EVP_PKEY_get_bits(k));
            }
            X509_free(x);
            if (!srv.settings.ssl_stapling_file.empty()) read_ocsp(srv.settings.ssl_stapling_file, ci);
            out.push_back(std::move(ci));
        }
    }
    return out;
}

namespace {

// Where NEXT writes NAME (its first occurrence), else its main file.
config::Location where(const config::Config& next, const char* name) {
    for (const auto& w : next.written) {
        if (w.name == name) return w.loc;
    }
    return config::Location{next.path, 1, 1};
}

bool same_port(const config::PortConfig& a, const config::PortConfig& b) {
    return a.device == b.device && a.devargs == b.devargs && a.address.addr == b.address.addr &&
           a.address.len == b.address.len && a.gateway == b.gateway && a.mtu == b.mtu;
}

uint64_t max_buffer(const config::Config& c) {
    uint64_t b = 64 * 1024;
    for (const auto& srv : c.servers) b = std::max(b, srv.settings.proxy_buffer_size);
    return b;
}

}  // namespace

std::vector<config::Diagnostic> restart_needed(const config::Config& running, const config::Config& next) {
    std::vector<config::Diagnostic> out;
    auto refuse = [&](const char* name, const std::string& what) {
        out.push_back(config::Diagnostic{config::Severity::kError, where(next, name),
                                         what + " changed: a reload cannot apply it; restart terminusd "
                                                "(or put back the running value to reload the rest)"});
    };
    const auto& a = running.dataplane;
    const auto& b = next.dataplane;
    bool ports = a.ports.size() == b.ports.size();
    for (size_t i = 0; ports && i < a.ports.size(); ++i) ports = same_port(a.ports[i], b.ports[i]);
    if (!ports) refuse("port", "\"port\"");
    if (a.lcores != b.lcores) refuse("lcores", "\"lcores\"");
    if (a.mbufs != b.mbufs) refuse("mbufs", "\"mbufs\"");
    if (a.max_connections != b.max_connections) refuse("max_connections", "\"max_connections\"");
    if (a.eal_args != b.eal_args) refuse("eal_args", "\"eal_args\"");
    if (a.syncookies != b.syncookies) refuse("syncookies", "\"syncookies\"");
    if (a.tcp_congestion != b.tcp_congestion) refuse("tcp_congestion", "\"tcp_congestion\"");
    if (a.crypto != b.crypto || a.crypto_device != b.crypto_device) refuse("crypto", "\"crypto\"");
    if (a.shutdown_timeout != b.shutdown_timeout) refuse("shutdown_timeout", "\"shutdown_timeout\"");
    if (running.mgmt.control != next.mgmt.control) refuse("control", "\"control\"");
    // The TCP windows are sized once, from the largest proxy_buffer_size.
    if (max_buffer(next) > max_buffer(running)) {
        out.push_back(config::Diagnostic{
            config::Severity::kWarning, where(next, "proxy_buffer_size"),
            "a larger \"proxy_buffer_size\" than at start takes effect at the next restart: the TCP windows "
            "stay " + std::to_string(std::min<uint64_t>(max_buffer(running), 1u << 24)) + " bytes"});
    }
    return out;
}

}  // namespace terminus::dataplane
