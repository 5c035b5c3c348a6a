// terminus-mgmtd: the management process. It reads the configuration
// terminusd reads, serves terminusd's statistics to Prometheus
// (mgmt { metrics }), writes the access log from terminusd's rings
// (mgmt/access_log_writer.h), owns the session ticket keys and forwards
// reloads (mgmt/control_push.h: over terminusd's control socket). It never
// touches packets and terminusd never depends on it: either may be
// restarted while the other runs.
//
// Everything but the control socket is a handler on one EventLoop
// (mgmt/event_loop.h): signals, the metrics endpoint, the access log
// writer's periodic drain, each set up and torn down by reconfigure() when
// a configuration is taken. The control-socket client has a thread of its
// own, since terminusd's answer to a reload waits for every core.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "config/config.h"
#include "mgmt/access_log_record.h"
#include "mgmt/access_log_writer.h"
#include "mgmt/control_push.h"
#include "mgmt/error_log.h"
#include "mgmt/event_loop.h"
#include "mgmt/metrics.h"
#include "mgmt/metrics_endpoint.h"
#include "mgmt/stats.h"

namespace terminus::mgmt {
namespace {

constexpr const char* kDefaultConfig = "/etc/terminus/terminus.conf";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: terminus-mgmtd [-t] [-c FILE] [-n NAME]\n"
                 "  -c FILE  configuration file, the one terminusd reads (default %s)\n"
                 "  -n NAME  the terminusd instance whose statistics it serves (terminusd -n;\n"
                 "           default \"default\")\n"
                 "  -t       test the configuration and exit\n"
                 "  -v       print the version and exit\n"
                 "signals: SIGTERM, SIGINT exit; SIGHUP re-reads the configuration and asks\n"
                 "terminusd to reload it; SIGUSR1 reopens the logs\n",
                 kDefaultConfig);
}

// One line per event, through the error log (mgmt/error_log.h): on stderr
// "terminus-mgmtd: message", in an error_log file with nginx's time and level.
void log_at(errlog::Level l, const std::string& s) { errlog::report_at(l, "terminus-mgmtd", "%s", s.c_str()); }
void log_line(const std::string& s) { log_at(errlog::Level::kNotice, s); }

std::string metrics_where(const config::MgmtConfig& m) {
    if (!m.metrics) return "off";
    return config::ipv4_to_string(m.metrics->first) + ":" + std::to_string(m.metrics->second);
}

class Mgmtd {
  public:
    Mgmtd(std::string path, std::string instance) : path_(std::move(path)), instance_(std::move(instance)) {}

    // Takes CFG: opens what it names. False (and nothing changed) when
    // something it names cannot be had, such as the metrics address.
    bool reconfigure(std::shared_ptr<const config::Config> cfg);
    int run();

  private:
    void reload();
    std::string scrape();

    std::string path_;
    std::string instance_;
    EventLoop loop_;
    std::shared_ptr<const config::Config> cfg_;
    std::unique_ptr<MetricsEndpoint> metrics_;
    std::unique_ptr<AccessLogWriter> access_log_;
    std::unique_ptr<ControlPusher> pusher_;
    int up_ = -1;       // terminusd seen at the last scrape: -1 not scraped yet
    std::string down_;  // why not, then
};

bool Mgmtd::reconfigure(std::shared_ptr<const config::Config> cfg) {
    // The access log first: a format it cannot write refuses the whole
    // configuration before anything changed.
    if (!access_log_) {
        AccessLogWriter::Options o;
        o.segment = access_log_path(instance_);
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        o.context.hostname = host;
        o.context.version = TERMINUS_VERSION;
        o.reread = [this]() -> std::shared_ptr<const config::Config> {
            auto r = config::load_file(path_);
            return r.ok() ? r.config : nullptr;
        };
        o.log = log_at;
        access_log_ = std::make_unique<AccessLogWriter>(std::move(o));
    }
    if (const std::string err = access_log_->configure(cfg); !err.empty()) {
        log_at(errlog::Level::kError, err);
        return false;
    }
    const auto& want = cfg->mgmt.metrics;
    const bool same = metrics_ && want && metrics_->addr() == want->first && metrics_->port() == want->second;
    std::unique_ptr<MetricsEndpoint> endpoint;
    if (want && !same) {
        // The new address first: if it cannot be had, the old one serves on.
        auto m = MetricsEndpoint::open(
            loop_, want->first, want->second, [this] { return scrape(); }, log_line);
        if (!m) {
            log_line(m.error());
            return false;
        }
        endpoint = std::move(*m);
    }
    if (!same) {
        if (metrics_) log_line("metrics: no longer on " + metrics_->where());
        metrics_ = std::move(endpoint);
        if (metrics_) {
            log_line("metrics: serving http://" + metrics_->where() + "/metrics");
        } else {
            log_line("metrics: off (no mgmt { metrics ADDRESS:PORT; })");
        }
    }
    if (const std::string err = errlog::configure(errlog::main_of(*cfg)); !err.empty()) {
        log_at(errlog::Level::kError, err + " (the error log stays where it was)");
    }
    if (!pusher_) pusher_ = std::make_unique<ControlPusher>(log_at);
    pusher_->configure({cfg->mgmt.control, cfg->mgmt.ticket_key_rotation});
    cfg_ = std::move(cfg);
    return true;
}

void Mgmtd::reload() {
    auto r = config::load_file(path_);
    for (const auto& d : r.diagnostics) log_line(d.to_string());
    if (!r.ok()) {
        log_line("SIGHUP: configuration file " + path_ + " test failed (" + std::to_string(r.error_count()) +
                 (r.error_count() == 1 ? " error" : " errors") + "): the running configuration stays");
        return;
    }
    if (!reconfigure(r.config)) {
        log_line("SIGHUP: configuration file " + path_ + " refused: the running configuration stays");
        return;
    }
    log_line("SIGHUP: configuration file " + path_ + " taken (metrics " + metrics_where(cfg_->mgmt) +
             "); asking terminusd to reload");
    // terminusd builds the generation (its certificates, SSL_CTXs and
    // listeners live in its address space) and answers; the answer is
    // logged here, and a refusal leaves terminusd's running one serving.
    pusher_->forward_reload();
}

std::string Mgmtd::scrape() {
    // Read afresh each time: terminusd may have restarted, or a reload
    // replaced the segment at the same path.
    auto snap = read_stats(instance_);
    std::string down = snap.ok() ? "" : snap.error();
    // A terminusd killed with SIGKILL leaves its segment behind, frozen:
    // its pid says whether anyone still writes it (EPERM: someone does).
    if (snap.ok() && snap->pid > 0 && ::kill(snap->pid, 0) != 0 && errno == ESRCH) {
        down = "terminusd pid " + std::to_string(snap->pid) + " of instance \"" + instance_ + "\" is gone, its " +
               stats_path(instance_) + " left behind";
    }
    const int up = down.empty() ? 1 : 0;
    // One line when terminusd comes or goes, or goes another way.
    if (up != up_ || down != down_) {
        log_line(up ? "terminusd instance \"" + instance_ + "\" is up (pid " + std::to_string(snap->pid) + ", " +
                          std::to_string(snap->cores) + (snap->cores == 1 ? " core)" : " cores)")
                    : down + ": scrapes answer terminus_up 0");
        up_ = up;
        down_ = down;
    }
    const ExporterProcess self = read_exporter_process();
    return render_metrics(up ? &*snap : nullptr, &self);
}

int Mgmtd::run() {
    // Every send uses MSG_NOSIGNAL; this is for whatever else writes to a
    // socket the peer closed.
    ::signal(SIGPIPE, SIG_IGN);
    for (int sig : {SIGTERM, SIGINT}) {
        const std::string err = loop_.on_signal(sig, [this](int s) {
            log_line(std::string(s == SIGTERM ? "SIGTERM" : "SIGINT") + ": exiting");
            loop_.stop();
        });
        if (!err.empty()) {
            log_line(err);
            return 1;
        }
    }
    std::string err = loop_.on_signal(SIGHUP, [this](int) { reload(); });
    if (err.empty()) {
        err = loop_.on_signal(SIGUSR1, [this](int) {
            // logrotate moved the files: what is buffered goes to the old
            // ones, the next lines to new ones.
            const int failed = errlog::reopen();
            if (access_log_) access_log_->reopen();
            log_line("SIGUSR1: reopening logs (the error log and every access_log file)");
            if (failed) {
                log_at(errlog::Level::kAlert,
                       "SIGUSR1: " + std::to_string(failed) + " error log file(s) could not be reopened");
            }
        });
    }
    if (!err.empty()) {
        log_line(err);
        return 1;
    }
    log_line("running (pid " + std::to_string(::getpid()) + "): configuration " + path_ + ", terminusd instance \"" +
             instance_ + "\", metrics " + metrics_where(cfg_->mgmt) + ", access log from " + access_log_path(instance_));
    errlog::started();
    access_log_->start(loop_);
    err = loop_.run();
    access_log_->poll(EventLoop::Clock::now());  // what the rings still hold
    access_log_->flush();
    if (!err.empty()) {
        log_line(err);
        return 1;
    }
    return 0;
}

int mgmtd_main(int argc, char** argv) {
    errlog::set_program("terminus-mgmtd");
    std::string path = kDefaultConfig, instance = "default";
    bool test = false;
    int opt;
    while ((opt = getopt(argc, argv, "tc:n:vh")) != -1) {
        switch (opt) {
            case 't': test = true; break;
            case 'c': path = optarg; break;
            case 'n': instance = optarg; break;
            case 'v': std::printf("terminus-mgmtd version " TERMINUS_VERSION "\n"); return 0;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        std::fprintf(stderr, "terminus-mgmtd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    // As terminusd prints them: FILE:LINE:COLUMN: error: ...
    auto r = config::load_file(path);
    for (const auto& d : r.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    if (!r.ok()) {
        std::fprintf(stderr, "terminus-mgmtd: configuration file %s test failed (%zu error%s)\n", path.c_str(),
                     r.error_count(), r.error_count() == 1 ? "" : "s");
        return 1;
    }
    if (test) {
        std::fprintf(stderr, "terminus-mgmtd: configuration file %s test is successful\n", path.c_str());
        return 0;
    }
    Mgmtd m(path, instance);
    if (!m.reconfigure(r.config)) return 1;
    return m.run();
}

}  // namespace
}  // namespace terminus::mgmt

int main(int argc, char** argv) {
    try {
        return terminus::mgmt::mgmtd_main(argc, argv);
    } catch (const std::exception& e) {
        // mgmt/ may throw (std::bad_alloc, the standard library); it stops here.
        std::fprintf(stderr, "terminus-mgmtd: %s\n", e.what());
        return 1;
    }
}
