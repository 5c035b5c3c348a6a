#include "mgmt/access_log_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mgmt/event_loop.h"

namespace terminus::mgmt {

namespace {
constexpr size_t kBurst = 64;
int open_log(const std::string& path) { return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640); }
}  // namespace

AccessLogWriter::AccessLogWriter(Options o) : o_(std::move(o)), burst_(kBurst) {}

AccessLogWriter::~AccessLogWriter() {
    flush();
    for (auto& [path, f] : files_) {
        if (f->fd >= 0) ::close(f->fd);
    }
}

void AccessLogWriter::say(errlog::Level l, const std::string& m) const {
    if (o_.log) o_.log(l, m);
}

std::string AccessLogWriter::configure(std::shared_ptr<const config::Config> cfg) {
    auto lc = LogConfig::build(std::move(cfg));
    if (!lc) return lc.error();
    const uint64_t sig = (*lc)->signature();
    // The same configuration again moves to the front; the oldest goes.
    configs_.erase(std::remove_if(configs_.begin(), configs_.end(),
                                  [&](const auto& c) { return c->signature() == sig; }),
                   configs_.end());
    configs_.push_front(std::move(*lc));
    while (configs_.size() > kKeptConfigs) configs_.pop_back();
    open_files(*configs_.front(), true);
    return "";
}

AccessLogWriter::File* AccessLogWriter::file(const std::string& path) {
    auto it = files_.find(path);
    return it == files_.end() ? nullptr : it->second.get();
}

void AccessLogWriter::open_files(const LogConfig& lc, bool newest) {
    // Per path: the largest buffer and the shortest flush of the lines
    // that name it (nginx has one buffer per file too).
    std::map<std::string, std::pair<size_t, Millis>> want;
    for (size_t s = 0; s < lc.config().servers.size(); ++s) {
        for (const auto& line : lc.lines(s)) {
            auto& [cap, flush] = want[line.log->path];
            cap = std::max<size_t>(cap, line.log->buffer);
            if (line.log->flush.count() > 0 && (flush.count() == 0 || line.log->flush < flush)) flush = line.log->flush;
        }
    }
    const auto now = Clock::now();
    for (const auto& [path, size] : want) {
        File* f = file(path);
        if (!f) {
            auto nf = std::make_unique<File>();
            nf->path = path;
            nf->fd = open_log(path);
            if (nf->fd < 0) {
                say(errlog::Level::kError, "access_log " + path + ": cannot open: " + std::strerror(errno));
                nf->errored = true;
                nf->error_logged = now;
            }
            f = nf.get();
            files_.emplace(path, std::move(nf));
        } else if (!newest) {
            continue;  // an older configuration does not resize a file in use
        }
        if (f->buf.size() > size.first) write_out(*f, now);
        f->cap = size.first;
        f->flush = size.second;
    }
}

void AccessLogWriter::attach(Clock::time_point now) {
    if (now < next_attach_) return;
    next_attach_ = now + std::chrono::seconds(1);
    auto r = AccessLogReader::open(o_.segment);
    if (!r) {
        if (r.error() != attach_error_) {
            say(errlog::Level::kNotice, "access log: " + r.error() + "; retrying every second");
            attach_error_ = r.error();
        }
        return;
    }
    reader_ = std::move(*r);
    attach_error_.clear();
    say(errlog::Level::kNotice, "access log: reading " + reader_->path() + " (terminusd pid " +
                                    std::to_string(reader_->pid()) + ", " + std::to_string(reader_->cores()) +
                                    " cores, " + std::to_string(reader_->ring_count() - 1) + " records per core)");
}

const LogConfig* AccessLogWriter::config_for(const AccessRecord& r, Clock::time_point now) {
    for (const auto& c : configs_) {
        if (c->signature() == r.config) return c.get();
    }
    // terminusd took a configuration this writer has not seen: the file
    // as it is now may be it.
    if (o_.reread && now >= reread_at_) {
        reread_at_ = now + std::chrono::seconds(1);
        if (auto cfg = o_.reread()) {
            auto lc = LogConfig::build(cfg);
            if (lc && (*lc)->signature() == r.config) {
                say(errlog::Level::kNotice, "access log: terminusd generation " + std::to_string(r.generation) +
                                                " logs with the configuration file as it reads now");
                // The newest there is: terminusd took it after this writer's.
                configs_.push_front(std::move(*lc));
                while (configs_.size() > kKeptConfigs) configs_.pop_back();
                open_files(*configs_.front(), true);
                return configs_.front().get();
            }
        }
    }
    if (configs_.empty()) return nullptr;
    ++counters_.unknown_config;
    if (std::find(warned_.begin(), warned_.end(), r.config) == warned_.end()) {
        warned_.push_back(r.config);
        say(errlog::Level::kWarn, "access log: terminusd generation " + std::to_string(r.generation) +
                                      " was served by a configuration this terminus-mgmtd never read (the file "
                                      "changed since?): its sessions are written with the newest one");
    }
    return configs_.front().get();
}

void AccessLogWriter::write_record(const AccessRecord& r, Clock::time_point now) {
    const LogConfig* lc = config_for(r, now);
    if (!lc) return;
    if (r.server >= lc->config().servers.size()) {
        ++counters_.bad_server;
        return;
    }
    const auto& lines = lc->lines(r.server);
    for (size_t i = 0; i < lines.size(); ++i) {
        if (!(r.logs & (1u << i))) continue;
        const auto& line = lines[i];
        if (line.condition && !line.condition->holds(r, o_.context)) {
            ++counters_.skipped_if;
            continue;
        }
        File* f = file(line.log->path);
        if (!f) continue;
        line_.clear();
        line.format->format(r, o_.context, line_);
        line_ += '\n';
        append(*f, line_, now);
        ++counters_.lines;
    }
}

void AccessLogWriter::append(File& f, const std::string& line, Clock::time_point now) {
    if (f.cap > 0 && !f.buf.empty() && f.buf.size() + line.size() > f.cap) write_out(f, now);
    if (f.buf.empty()) f.since = now;
    f.buf += line;
    if (f.cap > 0 && f.buf.size() >= f.cap) write_out(f, now);
}

void AccessLogWriter::write_out(File& f, Clock::time_point now) {
    if (f.buf.empty()) return;
    size_t done = 0;
    int err = 0;
    if (f.fd < 0) {
        f.fd = open_log(f.path);  // it could not be opened before: try again
        if (f.fd < 0) err = errno;
    }
    while (f.fd >= 0 && done < f.buf.size()) {
        const ssize_t w = ::write(f.fd, f.buf.data() + done, f.buf.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            err = w < 0 ? errno : ENOSPC;
            break;
        }
        done += static_cast<size_t>(w);
    }
    if (done < f.buf.size()) {
        ++counters_.write_errors;
        if (!f.errored || now - f.error_logged >= std::chrono::seconds(60)) {
            say(errlog::Level::kAlert, "access_log " + f.path + ": write failed after " + std::to_string(done) +
                                           " of " + std::to_string(f.buf.size()) + " bytes: " + std::strerror(err) +
                                           " (the lines are lost; said at most once a minute)");
            f.error_logged = now;
        }
        f.errored = true;
    } else {
        f.errored = false;
    }
    f.buf.clear();
}

size_t AccessLogWriter::poll(Clock::time_point now) {
    if (!reader_) attach(now);
    size_t taken = 0;
    if (reader_) {
        while (taken < o_.max_per_turn) {
            const size_t n = reader_->drain(burst_.data(), std::min(kBurst, o_.max_per_turn - taken));
            for (size_t i = 0; i < n; ++i) write_record(burst_[i], now);
            taken += n;
            if (n == 0) break;
        }
        counters_.records += taken;
        if (reader_->corrupt()) {
            say(errlog::Level::kError, "access log: " + reader_->path() + " is corrupt (its rings no longer match "
                                                                          "its header): reading it again");
            invalid_base_ += reader_->invalid();
            reader_.reset();
            next_attach_ = now + std::chrono::seconds(1);
        } else if (taken < o_.max_per_turn && reader_->replaced()) {
            // Everything the old segment held is written: on to the new one.
            say(errlog::Level::kNotice, "access log: " + reader_->path() + " was replaced or removed (terminusd pid " +
                                            std::to_string(reader_->pid()) + " restarted or exited)");
            invalid_base_ += reader_->invalid();
            reader_.reset();
            next_attach_ = now;
            attach(now);
        }
    }
    for (auto& [path, f] : files_) {
        if (f->buf.empty()) continue;
        if (f->cap == 0 || (f->flush.count() > 0 && now - f->since >= f->flush)) write_out(*f, now);
    }
    return taken;
}

void AccessLogWriter::start(EventLoop& loop) {
    loop.every(o_.period, [this, &loop] { poll(loop.now()); });
}

void AccessLogWriter::flush() {
    const auto now = Clock::now();
    for (auto& [path, f] : files_) write_out(*f, now);
}

void AccessLogWriter::reopen() {
    flush();
    for (auto& [path, f] : files_) {
        const int fd = open_log(path);
        if (fd < 0) {
            say(errlog::Level::kAlert, "access_log " + path + ": cannot reopen: " + std::strerror(errno) +
                                           " (writing to the old file)");
            continue;
        }
        if (f->fd >= 0) ::close(f->fd);
        f->fd = fd;
    }
}

}  // namespace terminus::mgmt
