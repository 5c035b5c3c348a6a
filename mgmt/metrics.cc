#include "mgmt/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

namespace terminus::mgmt {

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A sample's value: counts stay integers (a double would round them past
// 2^53); seconds are doubles.
struct Value {
    bool is_double = false;
    uint64_t u = 0;
    double d = 0;
};

struct Family {
    std::string name;
    std::string help;
    const char* type = "gauge";
    std::vector<std::pair<std::string, Value>> samples;  // rendered labels, value
    std::unordered_map<std::string, size_t> index;       // rendered labels -> sample
};

// The families in the order they first appear, each named once.
class Exposition {
  public:
    Family& family(const std::string& name, const std::string& help, bool counter) {
        auto it = by_name_.find(name);
        if (it != by_name_.end()) return families_[it->second];
        by_name_.emplace(name, families_.size());
        Family& f = families_.emplace_back();
        f.name = name;
        f.help = help;
        f.type = counter ? "counter" : "gauge";
        return f;
    }

    // Two entries that come out as the same series (two server lines for
    // one address, two server blocks on one line) are summed, so that the
    // exposition never repeats a series.
    static void add(Family& f, const Labels& labels, Value v) {
        std::string l;
        for (const auto& [k, val] : labels) {
            l += (l.empty() ? "{" : ",") + k + "=\"" + escape_label_value(val) + "\"";
        }
        if (!l.empty()) l += "}";
        auto it = f.index.find(l);
        if (it == f.index.end()) {
            f.index.emplace(l, f.samples.size());
            f.samples.emplace_back(std::move(l), v);
            return;
        }
        Value& have = f.samples[it->second].second;
        if (have.is_double || v.is_double) {
            have.d = (have.is_double ? have.d : static_cast<double>(have.u)) +
                     (v.is_double ? v.d : static_cast<double>(v.u));
            have.is_double = true;
        } else {
            have.u += v.u;
        }
    }

    std::string text() const {
        std::string out;
        out.reserve(families_.size() * 160);
        char num[64];
        for (const Family& f : families_) {
            if (f.samples.empty()) continue;
            out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
            out += "# TYPE " + f.name + " " + f.type + "\n";
            for (const auto& [labels, v] : f.samples) {
                // The shortest text that reads back as the same value.
                const auto r = v.is_double ? std::to_chars(num, num + sizeof num, v.d)
                                           : std::to_chars(num, num + sizeof num, v.u);
                out += f.name;
                out += labels;
                out += ' ';
                out.append(num, r.ptr);
                out += '\n';
            }
        }
        return out;
    }

  private:
    std::vector<Family> families_;
    std::unordered_map<std::string, size_t> by_name_;
};

Value count(uint64_t u) { return Value{false, u, 0}; }
Value seconds(double d) { return Value{true, 0, d}; }

// A metric or label name from the segment's words: [a-zA-Z0-9_] kept,
// anything else an underscore.
std::string name_part(const std::string& s) {
    std::string out = s;
    for (char& c : out) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) c = '_';
    }
    return out;
}

std::string upper(const std::string& s) {
    std::string out = s;
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c == '-') c = '_';
    }
    return out;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// A state set, HAProxy's way: one series per state, 1 for the current
// one; none is 1 when no core reported it.
void add_states(Family& f, const StatValue& v, const Labels& labels) {
    const std::string current = v.state();
    for (const auto& st : v.def.states) {
        Labels l = labels;
        l.emplace_back("state", upper(st));
        Exposition::add(f, l, count(st == current ? 1 : 0));
    }
}

// Anything without a rule of its own: terminus_<group>_<name>[_total],
// summed over cores, with the segment's label when it has one.
void add_generic(Exposition& e, const StatValue& v, const std::string& prefix, const Labels& labels) {
    const bool counter = v.def.kind == StatKind::kCounter;
    Family& f = e.family(prefix + name_part(v.def.name) + (counter ? "_total" : ""), v.def.help, counter);
    if (v.def.kind == StatKind::kState) {
        add_states(f, v, labels);
    } else {
        Exposition::add(f, labels, count(v.total));
    }
}

Labels segment_label(const StatValue& v) {
    if (v.def.label_key.empty()) return {};
    return {{name_part(v.def.label_key), v.def.label_value}};
}

// "GROUP/HOST:PORT" as HAProxy labels a server: proxy="GROUP",
// server="HOST:PORT". A server with no group (proxy_pass ADDRESS:PORT)
// is named after its address, as nginx names that implicit upstream.
Labels server_labels(const std::string& where) {
    const size_t slash = where.rfind('/');
    if (slash == std::string::npos) return {{"proxy", where}, {"server", where}};
    return {{"proxy", where.substr(0, slash)}, {"server", where.substr(slash + 1)}};
}

// group upstream: one upstream server's state, connections, failures and
// health checks.
void add_upstream(Exposition& e, const StatValue& v) {
    const Labels labels = server_labels(v.def.label_value);
    const std::string& n = v.def.name;
    if (n == "state") {
        add_states(
            e.family("terminus_server_status", "the server's state (" + v.def.help + "); one series per state", false),
            v, labels);
    } else if (n == "last_check") {
        add_states(e.family("terminus_server_check_status", v.def.help + "; one series per result", false), v, labels);
    } else if (n == "conns") {
        Exposition::add(e.family("terminus_server_current_sessions", v.def.help, false), labels, count(v.total));
    } else if (n == "fails") {
        Exposition::add(e.family("terminus_server_current_failures", v.def.help, false), labels, count(v.total));
    } else if (n == "checks") {
        Exposition::add(e.family("terminus_server_checks_total", v.def.help, true), labels, count(v.total));
    } else if (n == "checks_failed") {
        Exposition::add(e.family("terminus_server_check_failures_total", v.def.help, true), labels, count(v.total));
    } else {
        add_generic(e, v, "terminus_server_", labels);
    }
}

void add_stat(Exposition& e, const StatValue& v) {
    const std::string& g = v.def.group;
    const std::string& n = v.def.name;
    if (g == "upstream" && !v.def.label_value.empty()) {
        add_upstream(e, v);
    } else if (g == "tls_server" && starts_with(n, "failed_")) {
        Family& f = e.family("terminus_tls_handshake_failures_total",
                             "TLS handshakes that failed, by server block (FILE:LINE) and reason", true);
        Exposition::add(f, {{"server", v.def.label_value}, {"reason", n.substr(7)}}, count(v.total));
    } else if (g == "tls" && starts_with(n, "failed_") && v.def.label_value.empty()) {
        // The sum of tls_server's over server blocks (every handshake is
        // counted against its server block): left to sum without (server).
    } else if (g == "upstream_tls" && starts_with(n, "failed_") && v.def.label_value.empty()) {
        Family& f = e.family("terminus_upstream_tls_handshake_failures_total",
                             "TLS handshakes with upstream servers that failed, by reason", true);
        Exposition::add(f, {{"reason", n.substr(7)}}, count(v.total));
    } else if (g == "proxy_ssl_peer" && !v.def.label_value.empty()) {
        add_generic(e, v, "terminus_server_tls_", server_labels(v.def.label_value));
    } else if (g == "tcp" && starts_with(n, "conns_") && v.def.kind == StatKind::kGauge && v.def.label_value.empty()) {
        Exposition::add(e.family("terminus_tcp_connections", "TCP connections by state", false),
                        {{"state", upper(n.substr(6))}}, count(v.total));
    } else {
        add_generic(e, v, "terminus_" + name_part(g) + "_", segment_label(v));
    }
}

// The poll loop's cycles per core, as seconds: utilisation is
// rate(terminus_core_busy_seconds_total[1m]), core by core.
void add_core_seconds(Exposition& e, const Snapshot& s) {
    if (s.tsc_hz == 0) return;
    const double hz = static_cast<double>(s.tsc_hz);
    for (const StatValue& v : s.stats) {
        if (v.def.group != "loop" || !v.def.label_value.empty()) continue;
        const char* name = v.def.name == "busy_cycles" ? "terminus_core_busy_seconds_total"
                           : v.def.name == "cycles"    ? "terminus_core_poll_seconds_total"
                                                       : nullptr;
        if (!name) continue;
        Family& f =
            e.family(name,
                     v.def.name == "busy_cycles" ? "seconds this core's poll loop spent in iterations that did work"
                                                 : "seconds this core's poll loop ran",
                     true);
        for (size_t c = 0; c < v.per_core.size(); ++c) {
            Exposition::add(f, {{"core", std::to_string(c)}}, seconds(static_cast<double>(v.per_core[c]) / hz));
        }
    }
}

void add_exporter(Exposition& e, const ExporterProcess& p) {
    Exposition::add(
        e.family("process_start_time_seconds", "start time of terminus-mgmtd since the epoch in seconds", false), {},
        seconds(p.start_time_seconds));
    Exposition::add(
        e.family("process_cpu_seconds_total", "user and system CPU time of terminus-mgmtd in seconds", true), {},
        seconds(p.cpu_seconds));
    Exposition::add(e.family("process_resident_memory_bytes", "resident memory of terminus-mgmtd in bytes", false), {},
                    count(p.resident_memory_bytes));
    Exposition::add(e.family("process_virtual_memory_bytes", "virtual memory of terminus-mgmtd in bytes", false), {},
                    count(p.virtual_memory_bytes));
    Exposition::add(e.family("process_open_fds", "open file descriptors of terminus-mgmtd", false), {},
                    count(p.open_fds));
    Exposition::add(e.family("process_max_fds", "file descriptor limit of terminus-mgmtd", false), {},
                    count(p.max_fds));
}

// The CPU time, memory and start time proc(5) gives in /proc/self/stat.
void read_proc_stat(ExporterProcess& p) {
    const long tick = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (tick <= 0 || page <= 0 || !std::getline(stat, line)) return;
    // The name in parentheses may hold spaces: count from the last ')',
    // after which comes field 3 (state).
    const size_t close = line.rfind(')');
    if (close == std::string::npos) return;
    std::istringstream in(line.substr(close + 1));
    std::vector<uint64_t> f(3, 0);  // fields 1 and 2 are before it
    for (std::string w; in >> w;) f.push_back(std::strtoull(w.c_str(), nullptr, 10));
    if (f.size() <= 24) return;
    // 14 utime, 15 stime and 22 starttime in clock ticks; 23 vsize in
    // bytes; 24 rss in pages.
    p.cpu_seconds = static_cast<double>(f[14] + f[15]) / static_cast<double>(tick);
    p.virtual_memory_bytes = f[23];
    p.resident_memory_bytes = f[24] * static_cast<uint64_t>(page);
    std::ifstream boot("/proc/stat");
    for (std::string l; std::getline(boot, l);) {
        if (l.rfind("btime ", 0) == 0) {
            p.start_time_seconds = static_cast<double>(std::strtoull(l.c_str() + 6, nullptr, 10)) +
                                   static_cast<double>(f[22]) / static_cast<double>(tick);
            break;
        }
    }
}

}  // namespace

std::string escape_label_value(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string escape_help(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string render_metrics(const Snapshot* s, const ExporterProcess* exporter) {
    Exposition e;
    Exposition::add(e.family("terminus_up",
                             "1 when terminusd's statistics segment was read, 0 when terminusd is not running", false),
                    {}, count(s ? 1 : 0));
    if (s) {
        Exposition::add(e.family("terminus_process_start_time_seconds",
                                 "start time of terminusd since the epoch in seconds", false),
                        {}, count(static_cast<uint64_t>(s->started_unix < 0 ? 0 : s->started_unix)));
        Exposition::add(e.family("terminus_process_cores", "poll-mode cores terminusd runs", false), {},
                        count(s->cores));
        Exposition::add(e.family("terminus_process_pid", "process id of terminusd", false), {},
                        count(static_cast<uint64_t>(s->pid < 0 ? 0 : s->pid)));
        for (const StatValue& v : s->stats) add_stat(e, v);
        add_core_seconds(e, *s);
    }
    if (exporter) add_exporter(e, *exporter);
    return e.text();
}

ExporterProcess read_exporter_process() {
    ExporterProcess p;
    read_proc_stat(p);
    if (DIR* d = ::opendir("/proc/self/fd")) {
        uint64_t n = 0;
        while (const dirent* de = ::readdir(d)) {
            if (de->d_name[0] != '.') ++n;
        }
        ::closedir(d);
        p.open_fds = n > 0 ? n - 1 : 0;  // not the one opendir holds
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) p.max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : rl.rlim_cur;
    return p;
}

}  // namespace terminus::mgmt
