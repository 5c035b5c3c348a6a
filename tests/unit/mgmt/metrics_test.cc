// The Prometheus exposition terminus-mgmtd serves: a snapshot made by hand
// is rendered, then read back by a strict parser of the text format
// (0.0.4), and its series checked by name and labels.
#include "mgmt/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace terminus::mgmt {
namespace {

// ---------------------------------------------------------------------------
// A strict reader of the text format: every line is # HELP, # TYPE or a
// sample NAME{LABELS} VALUE; a family's HELP and TYPE come once, before
// its samples, which are contiguous; no series repeats.

struct Series {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct Parsed {
    std::map<std::string, std::string> help;  // unescaped
    std::map<std::string, std::string> type;
    std::vector<Series> series;
    std::vector<std::string> errors;

    // The value of the one series NAME with exactly LABELS, or NaN-like
    // failure via `found`.
    const Series* find(const std::string& name, const std::map<std::string, std::string>& labels) const {
        for (const auto& s : series) {
            if (s.name == name && s.labels == labels) return &s;
        }
        return nullptr;
    }
    size_t count(const std::string& name) const {
        size_t n = 0;
        for (const auto& s : series) n += s.name == name;
        return n;
    }
};

bool valid_name(const std::string& s, bool colon) {
    if (s.empty()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

// Reads {k="v",...} from LINE at AT (just past '{'); AT ends past '}'.
bool parse_labels(const std::string& line, size_t& at, std::map<std::string, std::string>& out, std::string& err) {
    if (at < line.size() && line[at] == '}') {
        ++at;
        return true;
    }
    for (;;) {
        const size_t eq = line.find('=', at);
        if (eq == std::string::npos) return err = "label without =", false;
        const std::string key = line.substr(at, eq - at);
        if (!valid_name(key, false)) return err = "bad label name \"" + key + "\"", false;
        if (eq + 1 >= line.size() || line[eq + 1] != '"') return err = "label value not quoted", false;
        std::string value;
        size_t i = eq + 2;
        for (;; ++i) {
            if (i >= line.size()) return err = "unterminated label value", false;
            const char c = line[i];
            if (c == '"') break;
            if (c == '\\') {
                if (i + 1 >= line.size()) return err = "dangling backslash", false;
                const char e = line[++i];
                if (e == '\\')
                    value += '\\';
                else if (e == '"')
                    value += '"';
                else if (e == 'n')
                    value += '\n';
                else
                    return err = std::string("bad escape \\") + e, false;
                continue;
            }
            if (c == '\n') return err = "raw line feed in a label value", false;
            value += c;
        }
        if (!out.emplace(key, value).second) return err = "label \"" + key + "\" twice", false;
        at = i + 1;
        if (at < line.size() && line[at] == ',') {
            ++at;
            if (at < line.size() && line[at] == '}') return ++at, true;  // a trailing comma is allowed
            continue;
        }
        if (at < line.size() && line[at] == '}') return ++at, true;
        return err = "expected , or } after a label", false;
    }
}

std::string unescape_help(const std::string& s, std::string& err) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        if (i + 1 >= s.size()) return err = "dangling backslash in HELP", out;
        const char e = s[++i];
        if (e == '\\')
            out += '\\';
        else if (e == 'n')
            out += '\n';
        else
            err = std::string("bad escape \\") + e + " in HELP";
    }
    return out;
}

Parsed parse(const std::string& text) {
    Parsed p;
    if (!text.empty() && text.back() != '\n') p.errors.push_back("no final line feed");
    std::istringstream in(text);
    std::string line;
    std::set<std::string> closed;  // families whose samples ended
    std::string current;           // the family of the last sample
    std::set<std::string> seen_series;
    size_t lineno = 0;
    auto fail = [&](const std::string& why) {
        p.errors.push_back("line " + std::to_string(lineno) + ": " + why + ": " + line);
    };
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty()) {
            fail("empty line");
            continue;
        }
        if (line[0] == '#') {
            std::istringstream w(line);
            std::string hash, kind, name;
            w >> hash >> kind >> name;
            if (hash != "#" || (kind != "HELP" && kind != "TYPE") || !valid_name(name, true)) {
                fail("a comment that is neither HELP nor TYPE");
                continue;
            }
            const bool sampled =
                std::any_of(p.series.begin(), p.series.end(), [&](const Series& s) { return s.name == name; });
            if (sampled) {
                fail(kind + " after the family's samples");
            }
            const std::string rest = line.size() > 7 + name.size() + 1 ? line.substr(7 + name.size() + 1) : "";
            if (kind == "HELP") {
                std::string err;
                if (!p.help.emplace(name, unescape_help(rest, err)).second) fail("HELP twice");
                if (!err.empty()) fail(err);
            } else {
                if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
                    rest != "untyped") {
                    fail("unknown TYPE");
                }
                if (!p.type.emplace(name, rest).second) fail("TYPE twice");
            }
            continue;
        }
        Series s;
        size_t at = 0;
        while (at < line.size() && line[at] != '{' && line[at] != ' ') ++at;
        s.name = line.substr(0, at);
        if (!valid_name(s.name, true)) {
            fail("bad metric name");
            continue;
        }
        if (at < line.size() && line[at] == '{') {
            ++at;
            std::string err;
            if (!parse_labels(line, at, s.labels, err)) {
                fail(err);
                continue;
            }
        }
        if (at >= line.size() || line[at] != ' ') {
            fail("no space before the value");
            continue;
        }
        const std::string value = line.substr(at + 1);
        if (value.empty() || value.find(' ') != std::string::npos) {
            fail("value missing, or a timestamp (never written here)");
            continue;
        }
        char* end = nullptr;
        errno = 0;
        s.value = std::strtod(value.c_str(), &end);
        if (*end != '\0' || errno != 0) {
            fail("value is not a number");
            continue;
        }
        // The family: for these types, the sample name itself.
        if (!p.help.count(s.name)) fail("no HELP before the sample");
        if (!p.type.count(s.name)) fail("no TYPE before the sample");
        if (s.name != current) {
            if (closed.count(s.name)) fail("family's samples not contiguous");
            if (!current.empty()) closed.insert(current);
            current = s.name;
        }
        std::string key = s.name;
        for (const auto& [k, v] : s.labels) key += "\x01" + k + "\x02" + v;
        if (!seen_series.insert(key).second) fail("series repeated");
        p.series.push_back(std::move(s));
    }
    return p;
}

std::string errors_of(const Parsed& p) {
    std::string out;
    for (const auto& e : p.errors) out += e + "\n";
    return out;
}

// ---------------------------------------------------------------------------
// Snapshots made by hand, shaped as terminusd's publish.cc makes them.

StatValue stat(std::string group, std::string name, StatKind kind, std::vector<uint64_t> per_core,
               std::string label_key = "", std::string label_value = "", std::vector<std::string> states = {},
               std::string help = "") {
    StatValue v;
    v.def.group = std::move(group);
    v.def.name = std::move(name);
    v.def.help = help.empty() ? "help of " + v.def.name : std::move(help);
    v.def.kind = kind;
    v.def.label_key = std::move(label_key);
    v.def.label_value = std::move(label_value);
    v.def.states = std::move(states);
    v.per_core = std::move(per_core);
    for (uint64_t c : v.per_core) v.total += c;
    return v;
}

const std::vector<std::string> kPeerStates = {"up", "down", "unavail", "unhealthy", "checking"};
const std::vector<std::string> kCheckResults = {"none", "passed", "refused", "timeout"};

Snapshot sample() {
    using K = StatKind;
    Snapshot s;
    s.cores = 2;
    s.tsc_hz = 2'000'000'000;
    s.started_unix = 1'700'000'000;
    s.pid = 4242;
    s.stats = {
        stat("net", "rx_frames", K::kCounter, {5, 7}, "", "", {}, "frames received from the NIC"),
        stat("loop", "iterations", K::kCounter, {100, 200}),
        stat("loop", "cycles", K::kCounter, {4'000'000'000, 6'000'000'000}),
        stat("loop", "busy_cycles", K::kCounter, {1'000'000'000, 4'000'000'000}),
        stat("tcp", "accepts", K::kCounter, {3, 4}),
        stat("tcp", "conns_established", K::kGauge, {2, 1}),
        stat("tcp", "conns_time_wait", K::kGauge, {0, 5}),
        stat("proxy", "accepts", K::kCounter, {10, 11}),
        stat("proxy", "sessions_active", K::kGauge, {1, 2}),
        stat("tls", "handshakes_full", K::kCounter, {6, 0}),
        stat("tls", "failed_timeout", K::kCounter, {1, 2}),
        stat("tls", "failed_malformed", K::kCounter, {0, 4}),
        stat("memory", "mbufs_in_use", K::kGauge, {512, 0}),
        stat("upstream", "state", K::kState, {1, 0}, "server", "echo/198.18.0.1:9001", kPeerStates),
        stat("upstream", "conns", K::kGauge, {3, 0}, "server", "echo/198.18.0.1:9001"),
        stat("upstream", "fails", K::kGauge, {1, 0}, "server", "echo/198.18.0.1:9001"),
        stat("upstream", "checks", K::kCounter, {40, 0}, "server", "echo/198.18.0.1:9001"),
        stat("upstream", "checks_failed", K::kCounter, {2, 0}, "server", "echo/198.18.0.1:9001"),
        stat("upstream", "last_check", K::kState, {2, 0}, "server", "echo/198.18.0.1:9001", kCheckResults),
        // Not reported by any core: every state 0.
        stat("upstream", "state", K::kState, {0, 0}, "server", "echo/198.18.0.1:9002", kPeerStates),
        stat("tls_server", "failed_timeout", K::kCounter, {1, 1}, "server", "/etc/terminus/t.conf:12"),
        stat("tls_server", "failed_malformed", K::kCounter, {0, 4}, "server", "/etc/terminus/t.conf:12"),
        stat("tls_server", "failed_timeout", K::kCounter, {0, 1}, "server", "/etc/terminus/t.conf:30"),
        stat("tls_server", "failed_malformed", K::kCounter, {0, 0}, "server", "/etc/terminus/t.conf:30"),
        stat("upstream_tls", "handshakes_full", K::kCounter, {8, 9}),
        stat("upstream_tls", "failed_unknown_ca", K::kCounter, {1, 0}),
        stat("upstream_tls", "failed_name_mismatch", K::kCounter, {0, 3}),
        stat("proxy_ssl_peer", "handshakes_full", K::kCounter, {2, 3}, "server", "secure/10.0.0.1:443"),
        stat("proxy_ssl_peer", "handshakes_resumed", K::kCounter, {1, 1}, "server", "secure/10.0.0.1:443"),
        stat("proxy_ssl_peer", "handshakes_full", K::kCounter, {1, 0}, "server", "10.0.0.2:443"),
    };
    return s;
}

double value(const Parsed& p, const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    const Series* s = p.find(name, labels);
    EXPECT_NE(s, nullptr) << name << " with " << labels.size() << " labels is missing";
    return s ? s->value : -1;
}

TEST(Metrics, ExpositionParsesStrictly) {
    const Snapshot s = sample();
    const ExporterProcess self{1'700'000'100.5, 0.25, 4096, 8192, 7, 1024};
    const Parsed p = parse(render_metrics(&s, &self));
    EXPECT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_GT(p.series.size(), 40u);
    // Counters end in _total and are typed so; nothing else is.
    for (const auto& [name, type] : p.type) {
        const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
        EXPECT_EQ(type, total ? "counter" : "gauge") << name;
    }
}

TEST(Metrics, ProcessAndUp) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_up"), 1);
    EXPECT_EQ(value(p, "terminus_process_start_time_seconds"), 1'700'000'000);
    EXPECT_EQ(value(p, "terminus_process_cores"), 2);
    EXPECT_EQ(value(p, "terminus_process_pid"), 4242);
    EXPECT_EQ(p.count("process_cpu_seconds_total"), 0u);  // no exporter given
}

TEST(Metrics, NotRunningIsUpZeroWithTheExportersProcess) {
    const ExporterProcess self{1'700'000'100.5, 0.25, 4096, 8192, 7, 1024};
    const std::string text = render_metrics(nullptr, &self);
    const Parsed p = parse(text);
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_up"), 0);
    EXPECT_EQ(value(p, "process_start_time_seconds"), 1'700'000'100.5);
    EXPECT_EQ(value(p, "process_cpu_seconds_total"), 0.25);
    EXPECT_EQ(value(p, "process_resident_memory_bytes"), 4096);
    EXPECT_EQ(value(p, "process_open_fds"), 7);
    EXPECT_EQ(value(p, "process_max_fds"), 1024);
    EXPECT_EQ(text.find("terminus_process_"), std::string::npos);
}

TEST(Metrics, CountersAreSummedOverCoresWithTheSegmentsHelp) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_net_rx_frames_total"), 12);
    EXPECT_EQ(p.help.at("terminus_net_rx_frames_total"), "frames received from the NIC");
    EXPECT_EQ(value(p, "terminus_loop_iterations_total"), 300);
    EXPECT_EQ(value(p, "terminus_tcp_accepts_total"), 7);
    EXPECT_EQ(value(p, "terminus_proxy_accepts_total"), 21);
    EXPECT_EQ(value(p, "terminus_proxy_sessions_active"), 3);
    EXPECT_EQ(p.type.at("terminus_proxy_sessions_active"), "gauge");
    EXPECT_EQ(value(p, "terminus_tls_handshakes_full_total"), 6);
    EXPECT_EQ(value(p, "terminus_memory_mbufs_in_use"), 512);
    EXPECT_EQ(value(p, "terminus_upstream_tls_handshakes_full_total"), 17);
    // Summed series carry no core label.
    for (const auto& se : p.series) {
        if (se.name.rfind("terminus_core_", 0) != 0) {
            EXPECT_EQ(se.labels.count("core"), 0u) << se.name;
        }
    }
}

TEST(Metrics, TcpConnectionsByState) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    EXPECT_EQ(value(p, "terminus_tcp_connections", {{"state", "ESTABLISHED"}}), 3);
    EXPECT_EQ(value(p, "terminus_tcp_connections", {{"state", "TIME_WAIT"}}), 5);
    EXPECT_EQ(p.count("terminus_tcp_conns_established"), 0u);
}

TEST(Metrics, PerCoreLoopSecondsOnly) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_core_busy_seconds_total", {{"core", "0"}}), 0.5);
    EXPECT_EQ(value(p, "terminus_core_busy_seconds_total", {{"core", "1"}}), 2);
    EXPECT_EQ(value(p, "terminus_core_poll_seconds_total", {{"core", "1"}}), 3);
    EXPECT_EQ(p.count("terminus_core_busy_seconds_total"), 2u);
    // The summed cycle counters are there too.
    EXPECT_EQ(value(p, "terminus_loop_busy_cycles_total"), 5'000'000'000.0);
}

TEST(Metrics, TlsHandshakeFailuresByServerBlockAndReason) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    const std::string f = "terminus_tls_handshake_failures_total";
    EXPECT_EQ(value(p, f, {{"server", "/etc/terminus/t.conf:12"}, {"reason", "timeout"}}), 2);
    EXPECT_EQ(value(p, f, {{"server", "/etc/terminus/t.conf:12"}, {"reason", "malformed"}}), 4);
    EXPECT_EQ(value(p, f, {{"server", "/etc/terminus/t.conf:30"}, {"reason", "timeout"}}), 1);
    EXPECT_EQ(value(p, f, {{"server", "/etc/terminus/t.conf:30"}, {"reason", "malformed"}}), 0);
    EXPECT_EQ(p.count(f), 4u);
    EXPECT_EQ(p.type.at(f), "counter");
    // The per-core sums are not repeated under names of their own.
    EXPECT_EQ(p.count("terminus_tls_failed_timeout_total"), 0u);
    const std::string u = "terminus_upstream_tls_handshake_failures_total";
    EXPECT_EQ(value(p, u, {{"reason", "unknown_ca"}}), 1);
    EXPECT_EQ(value(p, u, {{"reason", "name_mismatch"}}), 3);
}

TEST(Metrics, UpstreamServersAsHaproxyServers) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    const std::map<std::string, std::string> srv = {{"proxy", "echo"}, {"server", "198.18.0.1:9001"}};
    EXPECT_EQ(value(p, "terminus_server_current_sessions", srv), 3);
    EXPECT_EQ(value(p, "terminus_server_current_failures", srv), 1);
    EXPECT_EQ(value(p, "terminus_server_checks_total", srv), 40);
    EXPECT_EQ(value(p, "terminus_server_check_failures_total", srv), 2);
    const std::map<std::string, std::string> tls = {{"proxy", "secure"}, {"server", "10.0.0.1:443"}};
    EXPECT_EQ(value(p, "terminus_server_tls_handshakes_full_total", tls), 5);
    EXPECT_EQ(value(p, "terminus_server_tls_handshakes_resumed_total", tls), 2);
    // proxy_pass ADDRESS:PORT: nginx's implicit upstream, named by the address.
    EXPECT_EQ(
        value(p, "terminus_server_tls_handshakes_full_total", {{"proxy", "10.0.0.2:443"}, {"server", "10.0.0.2:443"}}),
        1);
}

TEST(Metrics, StateIsOneSeriesPerStateWithTheCurrentOneAtOne) {
    const Snapshot s = sample();
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    for (const auto& st : {"UP", "DOWN", "UNAVAIL", "UNHEALTHY", "CHECKING"}) {
        EXPECT_EQ(value(p, "terminus_server_status", {{"proxy", "echo"}, {"server", "198.18.0.1:9001"}, {"state", st}}),
                  std::string(st) == "UP" ? 1 : 0)
            << st;
        // A server no core reported: no state is 1.
        EXPECT_EQ(value(p, "terminus_server_status", {{"proxy", "echo"}, {"server", "198.18.0.1:9002"}, {"state", st}}),
                  0)
            << st;
    }
    EXPECT_EQ(p.count("terminus_server_status"), 10u);
    EXPECT_EQ(value(p, "terminus_server_check_status",
                    {{"proxy", "echo"}, {"server", "198.18.0.1:9001"}, {"state", "PASSED"}}),
              1);
    EXPECT_EQ(
        value(p, "terminus_server_check_status", {{"proxy", "echo"}, {"server", "198.18.0.1:9001"}, {"state", "NONE"}}),
        0);
}

TEST(Metrics, StateWithAValueWithoutANameIsNoState) {
    Snapshot s = sample();
    s.stats = {stat("upstream", "state", StatKind::kState, {9, 0}, "server", "g/1.2.3.4:5", kPeerStates)};
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    ASSERT_EQ(p.count("terminus_server_status"), 5u);
    for (const auto& se : p.series) {
        if (se.name == "terminus_server_status") {
            EXPECT_EQ(se.value, 0) << se.labels.at("state");
        }
    }
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
    Snapshot s = sample();
    const std::string odd = "/srv/a \"quoted\" dir\\with\\backslashes\nand a line feed.conf:7";
    s.stats = {stat("tls_server", "failed_timeout", StatKind::kCounter, {1, 0}, "server", odd),
               stat("net", "rx_frames", StatKind::kCounter, {1, 0}, "", "", {}, "a \\ backslash\nand a line feed")};
    const std::string text = render_metrics(&s, nullptr);
    EXPECT_NE(text.find("server=\"/srv/a \\\"quoted\\\" dir\\\\with\\\\backslashes\\nand a line feed.conf:7\""),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("# HELP terminus_net_rx_frames_total a \\\\ backslash\\nand a line feed\n"), std::string::npos);
    const Parsed p = parse(text);
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_tls_handshake_failures_total", {{"server", odd}, {"reason", "timeout"}}), 1);
    EXPECT_EQ(p.help.at("terminus_net_rx_frames_total"), "a \\ backslash\nand a line feed");
    EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    EXPECT_EQ(escape_help("a\"b\\c\nd"), "a\"b\\\\c\\nd");
}

TEST(Metrics, EntriesGivingOneSeriesAreSummed) {
    Snapshot s = sample();
    // Two server lines for one address in one group.
    s.stats = {stat("upstream", "conns", StatKind::kGauge, {2, 0}, "server", "g/1.2.3.4:5"),
               stat("upstream", "conns", StatKind::kGauge, {3, 0}, "server", "g/1.2.3.4:5")};
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_server_current_sessions", {{"proxy", "g"}, {"server", "1.2.3.4:5"}}), 5);
}

TEST(Metrics, UnknownGroupsFollowTheGenericRule) {
    Snapshot s = sample();
    s.stats = {stat("future", "widgets", StatKind::kCounter, {1, 2}),
               stat("future", "mode", StatKind::kState, {2, 0}, "zone", "a-b", {"calm", "busy"}),
               stat("future.x", "odd-name", StatKind::kGauge, {4, 0})};
    const Parsed p = parse(render_metrics(&s, nullptr));
    ASSERT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(value(p, "terminus_future_widgets_total"), 3);
    EXPECT_EQ(value(p, "terminus_future_mode", {{"zone", "a-b"}, {"state", "BUSY"}}), 1);
    EXPECT_EQ(value(p, "terminus_future_mode", {{"zone", "a-b"}, {"state", "CALM"}}), 0);
    EXPECT_EQ(value(p, "terminus_future_x_odd_name"), 4);
}

TEST(Metrics, StrictParserRefusesWhatIsWrong) {
    // The checks above mean something only if the parser catches these.
    EXPECT_FALSE(parse("x 1\n").errors.empty());                                   // no HELP/TYPE
    EXPECT_FALSE(parse("# HELP x h\n# TYPE x gauge\nx 1\nx 2\n").errors.empty());  // repeated
    EXPECT_FALSE(parse("# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 1\n")
                     .errors.empty());                                                    // not contiguous
    EXPECT_FALSE(parse("# HELP x h\n# TYPE x gauge\nx{a=\"b\\q\"} 1\n").errors.empty());  // bad escape
    EXPECT_FALSE(parse("# HELP x h\n# TYPE x gauge\nx{a=b} 1\n").errors.empty());         // unquoted
    EXPECT_FALSE(parse("# HELP x h\n# TYPE x gauge\nx one\n").errors.empty());            // not a number
    EXPECT_FALSE(parse("# HELP x h\n# TYPE x gauge\nx 1").errors.empty());                // no final line feed
    EXPECT_TRUE(parse("# HELP x h\n# TYPE x gauge\nx{a=\"b\",c=\"\\\"\"} 1.5\n").errors.empty());
}

}  // namespace
}  // namespace terminus::mgmt
