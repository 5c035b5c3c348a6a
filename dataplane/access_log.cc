#include "dataplane/access_log.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "dataplane/proxy/proxy.h"
#include "dataplane/proxy/variables.h"
#include "mgmt/error_log.h"

namespace terminus::dataplane {

bool AccessLogRing::push(const mgmt::AccessRecord& rec, uint64_t now_us) {
    if (rte_ring_sp_enqueue_elem(ring_, const_cast<mgmt::AccessRecord*>(&rec), sizeof rec) == 0) return true;
    ++dropped_;
    ++unlogged_;
    if (now_us - logged_us_ >= 1'000'000) {
        // At most once a second per core: the count, not each record.
        errlog::write(errlog::Level::kError,
                      "core %u: %lu access log records dropped: the ring to terminus-mgmtd is full "
                      "(is it running?)",
                      core_, static_cast<unsigned long>(unlogged_));
        unlogged_ = 0;
        logged_us_ = now_us;
    }
    return false;
}

Result<std::unique_ptr<AccessLogSegment>> AccessLogSegment::create(const std::string& instance, unsigned cores,
                                                                   uint64_t bytes_per_core, uint64_t tsc_hz,
                                                                   const std::string& path) {
    if (cores == 0 || cores > mgmt::kAccessLogMaxCores) return make_error("access log: bad core count");
    std::unique_ptr<AccessLogSegment> seg(new AccessLogSegment());
    seg->path_ = path.empty() ? mgmt::access_log_path(instance) : path;
    seg->count_ = mgmt::access_log_ring_count(bytes_per_core);
    const ssize_t ring_bytes = rte_ring_get_memsize_elem(sizeof(mgmt::AccessRecord), seg->count_);
    if (ring_bytes < 0) return make_error("access log: rte_ring_get_memsize_elem: " + std::to_string(ring_bytes));
    const size_t stride = (static_cast<size_t>(ring_bytes) + 63) & ~size_t{63};
    const size_t offset = sizeof(mgmt::AccessLogHeader);
    seg->len_ = offset + stride * cores;
    // A fresh file each start: a reader of the old one sees it go.
    ::unlink(seg->path_.c_str());
    // 0660: terminus-mgmtd (the terminus group) consumes, so it writes the
    // rings' consumer indexes.
    const int fd = ::open(seg->path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
    if (fd < 0) return make_error("access log: cannot create " + seg->path_ + ": " + std::strerror(errno));
    ::fchmod(fd, 0660);  // whatever the umask
    if (::ftruncate(fd, static_cast<off_t>(seg->len_)) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(seg->path_.c_str());
        return make_error("access log: cannot size " + seg->path_ + ": " + std::strerror(e));
    }
    void* p = ::mmap(nullptr, seg->len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) {
        ::unlink(seg->path_.c_str());
        return make_error("access log: cannot map " + seg->path_ + ": " + std::strerror(errno));
    }
    seg->base_ = p;

    // The cores' clock (TSC microseconds, as lcore.cc counts them) against
    // the wall clock, once.
    timeval tv{};
    ::gettimeofday(&tv, nullptr);
    const uint64_t wall = static_cast<uint64_t>(tv.tv_sec) * 1'000'000 + static_cast<uint64_t>(tv.tv_usec);
    const uint64_t mono = tsc_hz >= 1'000'000 ? rte_rdtsc() / (tsc_hz / 1'000'000) : 0;

    auto* h = static_cast<mgmt::AccessLogHeader*>(p);
    seg->rings_.resize(cores);
    for (unsigned i = 0; i < cores; ++i) {
        auto* r = reinterpret_cast<rte_ring*>(static_cast<char*>(p) + offset + stride * i);
        const std::string name = "tal" + std::to_string(i);
        if (const int rc = rte_ring_init(r, name.c_str(), seg->count_, RING_F_SP_ENQ | RING_F_SC_DEQ); rc != 0) {
            return make_error("access log: rte_ring_init: " + std::string(std::strerror(-rc)));
        }
        AccessLogRing& ring = seg->rings_[i];
        ring.ring_ = r;
        ring.core_ = i;
        ring.wall_offset_us_ = wall - mono;
    }
    h->version = mgmt::kAccessLogVersion;
    h->cores = cores;
    h->record_size = sizeof(mgmt::AccessRecord);
    h->ring_count = seg->count_;
    h->pid = static_cast<int32_t>(::getpid());
    h->ring_offset = offset;
    h->ring_stride = stride;
    h->started_unix = static_cast<int64_t>(std::time(nullptr));
    __atomic_store_n(&h->magic, mgmt::kAccessLogMagic, __ATOMIC_RELEASE);  // complete from here on
    return seg;
}

AccessLogSegment::~AccessLogSegment() {
    if (base_) ::munmap(base_, len_);
    // terminus-mgmtd keeps its mapping and drains what is left.
    if (!path_.empty()) ::unlink(path_.c_str());
}

namespace {

void copy(char* dst, uint8_t& len, size_t cap, std::string_view v) {
    const size_t n = std::min(v.size(), cap);
    std::memcpy(dst, v.data(), n);
    len = static_cast<uint8_t>(n);
}

// The ALPN list up to the last whole protocol that fits.
void copy_alpn(mgmt::AccessRecord& r, std::string_view alpn, bool truncated) {
    if (alpn.size() > sizeof r.alpn) {
        const size_t cut = alpn.substr(0, sizeof r.alpn + 1).rfind(',');
        alpn = alpn.substr(0, cut == std::string_view::npos ? 0 : cut);
        truncated = true;
    }
    copy(r.alpn, r.alpn_len, sizeof r.alpn, alpn);
    if (truncated) r.flags |= mgmt::kRecordAlpnTruncated;
}

}  // namespace

void fill_record(const proxy::Session& s, const AccessLogRing& ring, uint64_t now_us, mgmt::AccessRecord& r) {
    r = mgmt::AccessRecord{};
    const proxy::Routes& routes = *s.routes;
    const SessionLog& log = s.log;
    r.magic = mgmt::kAccessRecordMagic;
    r.generation = routes.generation;
    r.config = routes.log_signature;
    r.start_us = ring.wall_us(s.started_us);
    r.end_us = ring.wall_us(now_us);
    r.connection = log.connection;
    r.bytes_received = s.bytes_to_upstream;
    r.bytes_sent = s.bytes_to_client;
    r.remote_addr = log.client_ip;
    r.remote_port = log.client_port;
    r.server_addr = log.local_ip;
    r.server_port = log.local_port;
    const config::Server& server = s.listener->server;
    r.server = static_cast<uint16_t>(&server - routes.cfg->servers.data());
    const size_t n_logs = std::min<size_t>(server.settings.access_log.size(), mgmt::kMaxAccessLogsPerServer);
    r.logs = static_cast<uint16_t>((1u << n_logs) - 1);
    r.status = log.status;
    r.core = static_cast<uint8_t>(ring.core());
    r.n_upstreams = log.n_upstreams;
    std::memcpy(r.upstreams, log.upstreams, sizeof r.upstreams);
    // The bytes relayed are the last upstream's: the others never got to
    // the relay.
    if (log.n_upstreams > 0 && log.upstreams[log.n_upstreams - 1].connect_us != UINT32_MAX) {
        r.upstream_bytes_sent = s.bytes_to_upstream;
        r.upstream_bytes_received = s.bytes_to_client;
    }
    if (s.has_proxy_header) {
        r.flags |= mgmt::kRecordProxyHeader;
        r.pp_src_addr = s.pp_src_ip;
        r.pp_src_port = s.pp_src_port;
        r.pp_dst_addr = s.pp_dst_ip;
        r.pp_dst_port = s.pp_dst_port;
        if (!server.settings.set_real_ip_from.empty()) r.flags |= mgmt::kRecordRealIp;
    }
    if (const auto* t = std::get_if<proxy::TlsServerTransport>(&s.client.storage)) {
        r.flags |= mgmt::kRecordTls;
        copy(r.name, r.name_len, sizeof r.name, t->endpoint.sni());
        if (t->endpoint.established()) {
            SSL* ssl = t->endpoint.ssl();
            r.flags |= mgmt::kRecordTlsDone;
            r.ssl_version = static_cast<uint16_t>(SSL_version(ssl));
            if (const char* c = SSL_get_cipher_name(ssl)) copy(r.cipher, r.cipher_len, sizeof r.cipher, c);
            if (SSL_session_reused(ssl)) r.flags |= mgmt::kRecordSessionReused;
        }
    }
    if (s.port && s.port->preread) r.flags |= mgmt::kRecordPrereadRan;
    if (s.has_hello) {
        r.flags |= mgmt::kRecordPreread;
        r.preread_version = s.hello.version;
        // One ClientHello: the name TLS saw is the name preread read.
        if (!(r.flags & mgmt::kRecordTls)) copy(r.name, r.name_len, sizeof r.name, s.hello.server_name());
        copy_alpn(r, s.hello.alpn_protocols(), s.hello.alpn_truncated);
    }
}

std::vector<config::Diagnostic> access_log_problems(const config::Config& cfg) {
    std::vector<config::Diagnostic> out;
    auto error = [&](const config::Location& loc, const std::string& msg) {
        out.push_back(config::Diagnostic{config::Severity::kError, loc, msg});
    };
    auto maps = proxy::Maps::build(cfg);
    // Every variable a format or condition names is either formatted from
    // the record or one the dataplane's expressions evaluate over it.
    auto check = [&](const std::string& value, const config::Location& loc, const char* what) {
        auto parts = mgmt::split_log_value(value);
        if (!parts) {
            error(loc, std::string(what) + ": " + parts.error());
            return;
        }
        for (const auto& p : *parts) {
            if (!p.variable || mgmt::is_access_log_variable(p.text)) continue;
            auto e = proxy::Expression::compile("$" + p.text, maps ? maps->get() : nullptr);
            if (!e) error(loc, std::string(what) + ": the access log cannot write " + e.error());
        }
    };
    for (const auto& f : cfg.log_formats) check(f.format, f.loc, "log_format");
    for (const auto& srv : cfg.servers) {
        const auto& logs = srv.settings.access_log;
        if (logs.size() > mgmt::kMaxAccessLogsPerServer) {
            error(logs[mgmt::kMaxAccessLogsPerServer].loc,
                  "more than " + std::to_string(mgmt::kMaxAccessLogsPerServer) + " \"access_log\" in one server");
        }
        for (const auto& l : logs) {
            if (l.gzip_level > 0) {
                error(l.loc, "\"access_log ... gzip\" is not implemented: terminus-mgmtd writes plain files "
                             "(compress them when rotating)");
            }
            if (!l.if_condition.empty()) check(l.if_condition, l.loc, "access_log if=");
        }
    }
    // Each error once: servers inherit stream{}'s access_log.
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return std::tie(a.loc.file, a.loc.line, a.loc.column, a.message) <
               std::tie(b.loc.file, b.loc.line, b.loc.column, b.message);
    });
    out.erase(std::unique(out.begin(), out.end(),
                          [](const auto& a, const auto& b) {
                              return a.loc.file == b.loc.file && a.loc.line == b.loc.line &&
                                     a.loc.column == b.loc.column && a.message == b.message;
                          }),
              out.end());
    return out;
}

}  // namespace terminus::dataplane
