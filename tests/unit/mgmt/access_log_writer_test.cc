// terminus-mgmtd's access log writer on a real segment and real files:
// lines written at the end of a turn without buffer=, held until full or
// until flush= with it, reopened files after a rename (logrotate), if=,
// several access_log lines per server, records of a configuration it must
// read again or has never seen, and write errors that do not stop it.
#include "mgmt/access_log_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dataplane/access_log.h"

namespace terminus::mgmt {
namespace {

using namespace std::chrono_literals;
using Clock = AccessLogWriter::Clock;

class AccessLogWriterTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("tal-writer-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        segment_ = "/dev/shm/terminus-unit-writer-" + std::to_string(::getpid()) + ".log";
        auto s = dataplane::AccessLogSegment::create("unit", 1, 64 * 1024, 2'000'000'000, segment_);
        ASSERT_TRUE(s) << (s ? "" : s.error());
        seg_ = std::move(*s);
    }
    void TearDown() override {
        writer_.reset();
        seg_.reset();
        std::filesystem::remove_all(dir_);
    }

    std::string path(const std::string& f) const { return (dir_ / f).string(); }

    std::shared_ptr<const config::Config> load(const std::string& stream_body) {
        auto r = config::load_string("stream {\n" + stream_body + "\n}\n", path("t.conf"));
        std::string why;
        for (const auto& d : r.diagnostics) why += d.to_string() + "\n";
        EXPECT_TRUE(r.ok()) << why;
        return r.config;
    }

    void start(const std::string& stream_body) {
        AccessLogWriter::Options o;
        o.segment = segment_;
        o.context = LogContext{"h", "v", 1};
        o.reread = [this] { return reread_ ? load(*reread_) : nullptr; };
        o.log = [this](errlog::Level, const std::string& m) { said_ += m + "\n"; };
        writer_ = std::make_unique<AccessLogWriter>(std::move(o));
        cfg_ = load(stream_body);
        ASSERT_TRUE(cfg_);
        ASSERT_EQ(writer_->configure(cfg_), "");
    }

    // A session of server SERVER of the current configuration.
    void push(uint16_t status, uint16_t server = 0, uint64_t config = 0) {
        AccessRecord r{};
        r.magic = kAccessRecordMagic;
        r.config = config ? config : access_log_signature(*cfg_);
        r.status = status;
        r.server = server;
        r.logs = 0xffff;
        r.remote_addr = 0xC6120001;
        ASSERT_TRUE(seg_->ring(0).push(r, 0));
    }

    std::string read(const std::string& f) const {
        std::ifstream in(path(f));
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    std::filesystem::path dir_;
    std::string segment_;
    std::unique_ptr<dataplane::AccessLogSegment> seg_;
    std::unique_ptr<AccessLogWriter> writer_;
    std::shared_ptr<const config::Config> cfg_;
    std::optional<std::string> reread_;
    std::string said_;
};

std::string server(const std::string& logs) { return "server { listen 80; proxy_pass 198.18.0.1:9; " + logs + " }"; }

TEST_F(AccessLogWriterTest, UnbufferedLinesAreWrittenAtTheEndOfTheTurn) {
    start("log_format s '$status $remote_addr';\n" + server("access_log " + path("a.log") + " s;"));
    const auto now = Clock::now();
    EXPECT_EQ(writer_->poll(now), 0u);  // attaches; nothing yet
    push(200);
    push(502);
    EXPECT_EQ(writer_->poll(now), 2u);
    EXPECT_EQ(read("a.log"), "200 198.18.0.1\n502 198.18.0.1\n");
    struct stat st{};
    ASSERT_EQ(::stat(path("a.log").c_str(), &st), 0);
    const mode_t mask = ::umask(0);
    ::umask(mask);
    EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask) << std::oct << st.st_mode;
}

TEST_F(AccessLogWriterTest, BufferedLinesWaitUntilTheBufferIsFull) {
    // Each line is "200 " and nine "0.000", and its newline: 50 bytes.
    start("log_format s '$status $msec$msec$msec$msec$msec$msec$msec$msec$msec';\n" +
          server("access_log " + path("b.log") + " s buffer=1k;"));
    auto now = Clock::now();
    writer_->poll(now);
    for (int i = 0; i < 8; ++i) push(200);
    writer_->poll(now);
    EXPECT_EQ(read("b.log"), "") << "under 1k: held";
    for (int i = 0; i < 16; ++i) push(200);
    writer_->poll(now);
    const std::string got = read("b.log");
    EXPECT_EQ(got.size(), 20u * 50) << "the 21st line did not fit: the 20 before it went in one write";
    writer_->flush();
    const std::string all = read("b.log");
    EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 24);
}

TEST_F(AccessLogWriterTest, FlushTimeWritesWhatWaitedThatLong) {
    start("log_format s '$status';\n" + server("access_log " + path("f.log") + " s buffer=64k flush=2s;"));
    auto now = Clock::now();
    writer_->poll(now);
    push(200);
    writer_->poll(now);
    EXPECT_EQ(read("f.log"), "");
    writer_->poll(now + 1900ms);
    EXPECT_EQ(read("f.log"), "");
    writer_->poll(now + 2s);
    EXPECT_EQ(read("f.log"), "200\n");
}

TEST_F(AccessLogWriterTest, ReopenAfterARenameWritesANewFile) {
    start("log_format s '$status';\n" + server("access_log " + path("r.log") + " s;"));
    auto now = Clock::now();
    writer_->poll(now);
    push(200);
    writer_->poll(now);
    std::filesystem::rename(path("r.log"), path("r.log.1"));
    push(400);
    writer_->poll(now);
    EXPECT_EQ(read("r.log.1"), "200\n400\n") << "until reopened, the old file";
    writer_->reopen();
    push(403);
    writer_->poll(now);
    EXPECT_EQ(read("r.log"), "403\n");
    EXPECT_EQ(read("r.log.1"), "200\n400\n");
}

TEST_F(AccessLogWriterTest, SeveralLogsConditionsAndOff) {
    start("log_format s '$status';\nlog_format j escape=json '{\"s\":\"$status\"}';\n"
          "map $remote_addr $lab { ~^198\\.18\\. 1; default 0; }\n"
          "access_log " + path("all.log") + " s;\n" +
          server("access_log " + path("one.log") + " s; access_log " + path("j.log") + " j if=$lab;") + "\n" +
          "server { listen 81; proxy_pass 198.18.0.1:9; }\n"
          "server { listen 82; proxy_pass 198.18.0.1:9; access_log off; }");
    auto now = Clock::now();
    writer_->poll(now);
    push(200, 0);
    push(200, 1);  // inherits stream{}'s
    writer_->poll(now);
    EXPECT_EQ(read("one.log"), "200\n");
    EXPECT_EQ(read("j.log"), "{\"s\":\"200\"}\n");
    EXPECT_EQ(read("all.log"), "200\n") << "server 0 replaces what it inherits";
    // A client not in the lab: if= leaves the json line out.
    AccessRecord r{};
    r.magic = kAccessRecordMagic;
    r.config = access_log_signature(*cfg_);
    r.status = 503;
    r.logs = 0xffff;
    r.remote_addr = 0x0a000001;
    ASSERT_TRUE(seg_->ring(0).push(r, 0));
    writer_->poll(now);
    EXPECT_EQ(read("one.log"), "200\n503\n");
    EXPECT_EQ(read("j.log"), "{\"s\":\"200\"}\n");
    EXPECT_EQ(writer_->counters().skipped_if, 1u);
}

TEST_F(AccessLogWriterTest, RecordsOfAConfigurationItReadsAgain) {
    start("log_format s 'old $status';\n" + server("access_log " + path("a.log") + " s;"));
    auto now = Clock::now();
    writer_->poll(now);
    // terminusd reloaded a file that now says "new": mgmtd reads it again.
    const std::string now_file = "log_format s 'new $status';\n" + server("access_log " + path("a.log") + " s;");
    reread_ = now_file;
    const uint64_t sig = access_log_signature(*load(now_file));
    push(200, 0, sig);
    push(200);  // a session of the old generation, ending later
    writer_->poll(now);
    EXPECT_EQ(read("a.log"), "new 200\nold 200\n");
    EXPECT_EQ(writer_->counters().unknown_config, 0u);
}

TEST_F(AccessLogWriterTest, ANeverSeenConfigurationUsesTheNewestAndSaysSo) {
    start("log_format s '$status';\n" + server("access_log " + path("a.log") + " s;"));
    auto now = Clock::now();
    writer_->poll(now);
    push(200, 0, 0x1234);
    push(201, 0, 0x1234);
    push(200, 7);  // a server block the configuration does not have
    writer_->poll(now);
    EXPECT_EQ(read("a.log"), "200\n201\n");
    EXPECT_EQ(writer_->counters().unknown_config, 2u);
    EXPECT_EQ(writer_->counters().bad_server, 1u);
    EXPECT_NE(said_.find("never read"), std::string::npos) << said_;
    EXPECT_EQ(said_.find("never read"), said_.rfind("never read")) << "said once";
}

TEST_F(AccessLogWriterTest, AFailedWriteIsLoggedAndTheWriterGoesOn) {
    if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
    start("log_format s '$status';\n" + server("access_log /dev/full s; access_log " + path("ok.log") + " s;"));
    auto now = Clock::now();
    writer_->poll(now);
    push(200);
    push(200);
    writer_->poll(now);
    push(200);
    writer_->poll(now);
    EXPECT_EQ(read("ok.log"), "200\n200\n200\n");
    EXPECT_EQ(writer_->counters().write_errors, 2u);
    EXPECT_NE(said_.find("write failed"), std::string::npos) << said_;
    EXPECT_EQ(said_.find("write failed"), said_.rfind("write failed")) << "once a minute";
}

TEST_F(AccessLogWriterTest, AFormatItCannotWriteRefusesTheConfiguration) {
    start("log_format s '$status';\n" + server("access_log " + path("a.log") + " s;"));
    auto bad = load("log_format s '$ssl_client_s_dn';\n" + server("access_log " + path("a.log") + " s;"));
    const std::string err = writer_->configure(bad);
    EXPECT_NE(err.find("$ssl_client_s_dn"), std::string::npos) << err;
    EXPECT_NE(err.find("t.conf:"), std::string::npos) << err;
    auto now = Clock::now();
    writer_->poll(now);
    push(200);
    writer_->poll(now);
    EXPECT_EQ(read("a.log"), "200\n") << "the configuration before stays";
}

TEST_F(AccessLogWriterTest, ARestartedProducerIsFollowed) {
    start("log_format s '$status';\n" + server("access_log " + path("a.log") + " s;"));
    auto now = Clock::now();
    writer_->poll(now);
    push(200);
    seg_.reset();  // terminusd exits with a record not drained
    auto s = dataplane::AccessLogSegment::create("unit", 1, 64 * 1024, 2'000'000'000, segment_);
    ASSERT_TRUE(s);
    seg_ = std::move(*s);
    push(201);
    writer_->poll(now);
    writer_->poll(now);
    EXPECT_EQ(read("a.log"), "200\n201\n");
}

}  // namespace
}  // namespace terminus::mgmt
