// terminus-mgmtd's access log writer: a periodic handler on its EventLoop
// that drains terminusd's rings (mgmt/access_log_reader.h), formats each
// record with the log_format of the configuration that served it, and
// writes the lines to their files, as nginx's stream log module does:
//
//   * each file is opened O_WRONLY|O_APPEND|O_CREAT, mode 0640, once per
//     path however many access_log lines name it;
//   * with buffer=SIZE, lines gather until the next one does not fit, or
//     until flush=TIME has passed since the oldest, or the file is
//     reopened, or mgmtd exits; without it, what a turn drained is written
//     at the end of the turn (one write(2) per file per turn, not per line);
//   * reopen() (SIGUSR1) writes what is buffered, then opens every path
//     again: after logrotate moved a file, new lines go to a new one;
//   * a failed write is logged (at most once a minute per file, as nginx)
//     and the lines are lost; it never stops the writer.
//
// Which configuration a record takes its format from: its config
// signature (mgmt/access_log_record.h) among the configurations this
// writer has held (the newest, from start-up or SIGHUP, and up to
// kKeptConfigs before it, since sessions of an old generation end long
// after a reload). An unknown signature makes the writer read the file
// again (at most once a second; terminusctl reload reloads terminusd
// only); if that does not match either, the record is written with the
// newest configuration and a warning says so once per signature.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "mgmt/access_log_format.h"
#include "mgmt/access_log_reader.h"
#include "mgmt/error_log.h"

namespace terminus::mgmt {

class EventLoop;

class AccessLogWriter {
  public:
    using Clock = std::chrono::steady_clock;
    using Millis = std::chrono::milliseconds;

    struct Options {
        std::string segment;            // the segment's path (access_log_path(instance))
        Millis period{10};              // how often the rings are drained
        size_t max_per_turn = 1 << 16;  // records one turn takes at most, for the loop's other handlers
        LogContext context;             // $hostname, $nginx_version
        // Reads the configuration file again (for a signature not seen);
        // null, or a result that is null, when it cannot.
        std::function<std::shared_ptr<const config::Config>()> reread;
        // Where the writer's own messages go.
        std::function<void(errlog::Level, const std::string&)> log;
    };

    explicit AccessLogWriter(Options o);
    ~AccessLogWriter();  // writes what is buffered
    AccessLogWriter(const AccessLogWriter&) = delete;
    AccessLogWriter& operator=(const AccessLogWriter&) = delete;

    // Takes CFG as the newest configuration: compiles its formats and
    // opens the files it names (buffers sized as it says). Returns "" or
    // why not (a format it cannot write); then nothing changed.
    std::string configure(std::shared_ptr<const config::Config> cfg);

    // One turn at NOW: (re)attaches the segment when needed, drains up to
    // max_per_turn records, writes their lines, flushes what is due.
    // Returns the records taken.
    size_t poll(Clock::time_point now);
    // Registers poll() on LOOP every period.
    void start(EventLoop& loop);

    // Writes every buffer, then opens every file again (SIGUSR1).
    void reopen();
    // Writes every buffer.
    void flush();

    struct Counters {
        uint64_t records = 0;         // taken from the rings
        uint64_t lines = 0;           // written (or buffered)
        uint64_t skipped_if = 0;      // lines an if= condition left out
        uint64_t unknown_config = 0;  // records written with the newest configuration instead of theirs
        uint64_t bad_server = 0;      // records naming a server block their configuration lacks
        uint64_t write_errors = 0;
    };
    const Counters& counters() const { return counters_; }
    uint64_t invalid_records() const { return invalid_base_ + (reader_ ? reader_->invalid() : 0); }
    bool attached() const { return reader_ != nullptr; }

    static constexpr size_t kKeptConfigs = 16;

  private:
    struct File {
        std::string path;
        int fd = -1;
        std::string buf;
        size_t cap = 0;             // buffer=; 0: written at the end of each turn
        Millis flush{0};            // flush=; 0: only when full
        Clock::time_point since{};  // when the oldest buffered line came
        Clock::time_point error_logged{};
        bool errored = false;
    };

    File* file(const std::string& path);
    void open_files(const LogConfig& lc, bool newest);
    const LogConfig* config_for(const AccessRecord& r, Clock::time_point now);
    void write_record(const AccessRecord& r, Clock::time_point now);
    void append(File& f, const std::string& line, Clock::time_point now);
    void write_out(File& f, Clock::time_point now);
    void attach(Clock::time_point now);
    void say(errlog::Level l, const std::string& m) const;

    Options o_;
    std::deque<std::unique_ptr<LogConfig>> configs_;  // front: the newest
    std::map<std::string, std::unique_ptr<File>> files_;
    std::unique_ptr<AccessLogReader> reader_;
    std::vector<AccessRecord> burst_;
    Clock::time_point next_attach_{};
    Clock::time_point reread_at_{};
    std::string attach_error_;      // the last reason it could not attach (said once)
    std::vector<uint64_t> warned_;  // signatures written with the newest configuration
    std::string line_;
    uint64_t invalid_base_ = 0;
    Counters counters_;
};

}  // namespace terminus::mgmt
