// The statistics segment: what a writer publishes per core, a reader in
// another mapping sums; renderers for people, scripts and Prometheus.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "mgmt/stats.h"

namespace terminus::mgmt {
namespace {

std::vector<StatDef> defs() {
    return {{"tcp", "accepts", "connections accepted", StatKind::kCounter},
            {"tcp", "conns_established", "connections established", StatKind::kGauge},
            {"proxy", "bytes", "bytes relayed", StatKind::kCounter}};
}

std::string instance() { return "unit-" + std::to_string(getpid()); }

TEST(Stats, ReaderSumsWhatEachCorePublished) {
    auto w = StatsWriter::create(instance(), defs(), 2, 1'000'000'000);
    ASSERT_TRUE(w.ok()) << w.error();
    const uint64_t core0[] = {5, 2, 1000};
    const uint64_t core1[] = {7, 1, 24};
    w->publish(0, core0, 3);
    w->publish(1, core1, 3);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_EQ(s->cores, 2u);
    EXPECT_EQ(s->pid, getpid());
    ASSERT_EQ(s->stats.size(), 3u);
    EXPECT_EQ(s->stats[0].def.name, "accepts");
    EXPECT_EQ(s->stats[0].total, 12u);
    EXPECT_EQ(s->stats[0].per_core, (std::vector<uint64_t>{5, 7}));
    EXPECT_EQ(s->stats[1].def.kind, StatKind::kGauge);
    EXPECT_EQ(s->stats[1].total, 3u);
    EXPECT_EQ(s->stats[2].total, 1024u);
}

TEST(Stats, MissingSegmentSaysTerminusdIsNotRunning) {
    auto s = read_stats("no-such-instance");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error(), "terminusd is not running as instance \"no-such-instance\" "
                         "(no /dev/shm/terminus-no-such-instance.stats)");
}

TEST(Stats, SegmentGoesAwayWithTheWriter) {
    { auto w = StatsWriter::create(instance(), defs(), 1, 1); ASSERT_TRUE(w.ok()); }
    EXPECT_FALSE(read_stats(instance()).ok());
}

TEST(Stats, ForeignFileIsRefused) {
    const std::string path = stats_path(instance());
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(std::string(256, 'x').c_str(), f);
    std::fclose(f);
    auto s = read_stats(instance());
    unlink(path.c_str());
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().find("has another layout"), std::string::npos);
}

TEST(Stats, PrometheusNamesCountersTotalAndGaugesPlain) {
    auto w = StatsWriter::create(instance(), defs(), 1, 1);
    ASSERT_TRUE(w.ok());
    const uint64_t v[] = {3, 1, 9};
    w->publish(0, v, 3);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok());
    const std::string p = render_prometheus(*s);
    EXPECT_NE(p.find("# TYPE terminus_tcp_accepts_total counter\n"
                     "terminus_tcp_accepts_total{core=\"0\"} 3\n"),
              std::string::npos);
    EXPECT_NE(p.find("# TYPE terminus_tcp_conns_established gauge\n"
                     "terminus_tcp_conns_established{core=\"0\"} 1\n"),
              std::string::npos);
}

TEST(Stats, JsonGroupsByModule) {
    auto w = StatsWriter::create(instance(), defs(), 1, 1);
    ASSERT_TRUE(w.ok());
    const uint64_t v[] = {3, 1, 9};
    w->publish(0, v, 3);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok());
    const std::string j = render_json(*s);
    EXPECT_NE(j.find("\"tcp\": {\"accepts\": {\"total\": 3, \"per_core\": [3]}, "
                     "\"conns_established\": {\"total\": 1, \"per_core\": [1]}}, "
                     "\"proxy\": {\"bytes\": {\"total\": 9, \"per_core\": [9]}}"),
              std::string::npos)
        << j;
}

TEST(Stats, LabelledCountersKeepTheirInstance) {
    std::vector<StatDef> d = {
        {"tls", "handshakes_full", "full handshakes", StatKind::kCounter},
        {"tls_server", "failed_timeout", "timeouts", StatKind::kCounter, "server", "/etc/t.conf:12"},
        {"tls_server", "failed_malformed", "garbage", StatKind::kCounter, "server", "/etc/t.conf:12"},
        {"tls_server", "failed_timeout", "timeouts", StatKind::kCounter, "server", "/etc/\"odd\".conf:30"},
        {"tls_server", "failed_malformed", "garbage", StatKind::kCounter, "server", "/etc/\"odd\".conf:30"}};
    auto w = StatsWriter::create(instance(), d, 1, 1);
    ASSERT_TRUE(w.ok());
    const uint64_t v[] = {10, 1, 2, 3, 4};
    w->publish(0, v, 5);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->stats[1].def.label_key, "server");
    EXPECT_EQ(s->stats[1].def.label_value, "/etc/t.conf:12");
    // Prometheus: one family per name, each instance a label.
    const std::string p = render_prometheus(*s);
    EXPECT_NE(p.find("# TYPE terminus_tls_server_failed_timeout_total counter\n"
                     "terminus_tls_server_failed_timeout_total{core=\"0\",server=\"/etc/t.conf:12\"} 1\n"
                     "terminus_tls_server_failed_timeout_total{core=\"0\",server=\"/etc/\\\"odd\\\".conf:30\"} 3\n"),
              std::string::npos)
        << p;
    EXPECT_EQ(p.find("# TYPE terminus_tls_server_failed_timeout_total", p.find("failed_timeout_total{")),
              std::string::npos)
        << "one TYPE line per family";
    // JSON: one object per instance.
    const std::string j = render_json(*s);
    EXPECT_NE(j.find("\"tls_server\": {\"/etc/t.conf:12\": {\"failed_timeout\": {\"total\": 1, \"per_core\": [1]}, "
                     "\"failed_malformed\": {\"total\": 2, \"per_core\": [2]}}, \"/etc/\\\"odd\\\".conf:30\": {"),
              std::string::npos)
        << j;
    // The table heads each instance.
    EXPECT_NE(render_table(*s, false, nullptr, 0).find("tls_server server /etc/t.conf:12\n"), std::string::npos);
}

TEST(Stats, TableShowsThousandsSeparatorsAndRates) {
    auto w = StatsWriter::create(instance(), defs(), 1, 1);
    ASSERT_TRUE(w.ok());
    const uint64_t before[] = {1000, 0, 0};
    w->publish(0, before, 3);
    auto a = read_stats(instance());
    const uint64_t after[] = {3000, 0, 0};
    w->publish(0, after, 3);
    auto b = read_stats(instance());
    ASSERT_TRUE(a.ok() && b.ok());
    const std::string t = render_table(*b, false, &*a, 2.0);
    EXPECT_NE(t.find("3,000"), std::string::npos) << t;
    EXPECT_NE(t.find("1000/s"), std::string::npos) << t;
}

// States (an upstream server's "up", "unhealthy"...): the one core that
// knows publishes 1 + the index, the others 0; every output shows the name.
std::vector<StatDef> state_defs() {
    return {{"upstream", "state", "why it takes connections or not", StatKind::kState, "server", "b/198.18.0.1:80",
             {"up", "down", "unhealthy"}},
            {"upstream", "checks", "health checks done", StatKind::kCounter, "server", "b/198.18.0.1:80"},
            {"upstream", "state", "why it takes connections or not", StatKind::kState, "server", "b/198.18.0.1:81",
             {"up", "down", "unhealthy"}}};
}

TEST(Stats, StatesKeepTheirNamesAcrossTheSegment) {
    auto w = StatsWriter::create(instance(), state_defs(), 2, 1);
    ASSERT_TRUE(w.ok()) << w.error();
    const uint64_t core0[] = {3, 12, 0};  // unhealthy; the second server not reported
    const uint64_t core1[] = {0, 0, 0};
    w->publish(0, core0, 3);
    w->publish(1, core1, 3);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_EQ(s->stats[0].def.kind, StatKind::kState);
    EXPECT_EQ(s->stats[0].def.states, (std::vector<std::string>{"up", "down", "unhealthy"}));
    EXPECT_EQ(s->stats[0].state(), "unhealthy");
    EXPECT_EQ(s->stats[2].state(), "");
    EXPECT_TRUE(s->stats[1].def.states.empty());
}

TEST(Stats, StatesRenderAsNames) {
    auto w = StatsWriter::create(instance(), state_defs(), 2, 1);
    ASSERT_TRUE(w.ok());
    const uint64_t core0[] = {3, 12, 1};
    const uint64_t core1[] = {0, 0, 0};
    w->publish(0, core0, 3);
    w->publish(1, core1, 3);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok());
    const std::string t = render_table(*s, true, nullptr, 0);
    EXPECT_NE(t.find("upstream server b/198.18.0.1:80\n"
                     "  state                               unhealthy\n"
                     "  checks                                     12  12  0\n"),
              std::string::npos)
        << t;
    const std::string j = render_json(*s);
    EXPECT_NE(j.find("\"upstream\": {\"b/198.18.0.1:80\": {\"state\": \"unhealthy\", "
                     "\"checks\": {\"total\": 12, \"per_core\": [12, 0]}}, "
                     "\"b/198.18.0.1:81\": {\"state\": \"up\"}}"),
              std::string::npos)
        << j;
    // Prometheus: a state set, one sample per state, not per core.
    const std::string p = render_prometheus(*s);
    EXPECT_NE(p.find("# TYPE terminus_upstream_state gauge\n"
                     "terminus_upstream_state{state=\"up\",server=\"b/198.18.0.1:80\"} 0\n"
                     "terminus_upstream_state{state=\"down\",server=\"b/198.18.0.1:80\"} 0\n"
                     "terminus_upstream_state{state=\"unhealthy\",server=\"b/198.18.0.1:80\"} 1\n"
                     "terminus_upstream_state{state=\"up\",server=\"b/198.18.0.1:81\"} 1\n"),
              std::string::npos)
        << p;
}

TEST(Stats, AStateValueWithoutANameShowsAQuestionMark) {
    auto w = StatsWriter::create(instance(), state_defs(), 1, 1);
    ASSERT_TRUE(w.ok());
    const uint64_t v[] = {9, 0, 0};
    w->publish(0, v, 3);
    auto s = read_stats(instance());
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->stats[0].state(), "?");
}

}  // namespace
}  // namespace terminus::mgmt
