#include "mgmt/error_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <mutex>

namespace terminus::errlog {

namespace {

constexpr size_t kMaxFiles = 32;
constexpr size_t kMaxPath = 1024;

// The files in use, in fixed storage so that reopen() can walk them from
// a signal handler: an entry is complete before `count` includes it.
struct File {
    char path[kMaxPath];
    int fd;
    bool is_stderr;  // the main log's file: its descriptor is 2
};
File g_files[kMaxFiles];
std::atomic<size_t> g_file_count{0};

Target g_main;
Target g_targets[kMaxTargets];
size_t g_target_count = 0;
std::mutex g_mutex;  // target() and configure(), never a core
const char* g_program = "terminus";
int g_orig_stderr = -1;  // the stderr the process started with
std::atomic<bool> g_started{false};
std::atomic<int> g_configured_level{static_cast<int>(Level::kInfo)};

struct MainInit {
    // Before configure(): stderr, from info up (what terminusd has always
    // written: its start-up report and rate-limited failures).
    MainInit() { g_main.level.store(static_cast<int>(Level::kInfo)); }
} g_main_init;

int open_log(const char* path) {
    return ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

// The file for PATH, opened when new; -1 with errno when it cannot be.
int file_for(const std::string& path) {
    const size_t n = g_file_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
        if (path == g_files[i].path) return static_cast<int>(i);
    }
    if (n == kMaxFiles || path.size() >= kMaxPath) {
        errno = ENFILE;
        return -1;
    }
    const int fd = open_log(path.c_str());
    if (fd < 0) return -1;
    File& f = g_files[n];
    std::memcpy(f.path, path.c_str(), path.size() + 1);
    f.fd = fd;
    f.is_stderr = false;
    g_file_count.store(n + 1, std::memory_order_release);
    return static_cast<int>(n);
}

// Writes all of BUF to FD, as far as the descriptor takes it.
void write_all(int fd, const char* buf, size_t len) {
    while (len > 0) {
        const ssize_t w = ::write(fd, buf, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;  // nowhere left to say it
        buf += w;
        len -= static_cast<size_t>(w);
    }
}

}  // namespace

void set_program(const char* name) { g_program = name; }

Target& main_target() { return g_main; }

// The main file no longer is stderr: it gets a descriptor of its own
// (other targets may still write to it).
void detach_main_file() {
    if (g_main.file < 0) return;
    File& f = g_files[g_main.file];
    if (!f.is_stderr) return;
    const int fd = open_log(f.path);
    f.fd = fd >= 0 ? fd : ::dup(STDERR_FILENO);
    f.is_stderr = false;
}

std::string configure(const config::ErrorLog& where) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_orig_stderr < 0) g_orig_stderr = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (where.path == "stderr") {
        if (g_main.file >= 0) {
            detach_main_file();
            if (g_orig_stderr >= 0) ::dup2(g_orig_stderr, STDERR_FILENO);
        }
        g_main.file = -1;
    } else {
        const int i = file_for(where.path);
        if (i < 0) return "error_log " + where.path + ": " + std::strerror(errno);
        // The file becomes stderr: what anything else writes there lands
        // in it too, and reopen() moves both at once.
        File& f = g_files[i];
        if (!f.is_stderr) {
            if (::dup2(f.fd, STDERR_FILENO) < 0) return "error_log " + where.path + ": " + std::strerror(errno);
            if (g_main.file >= 0 && g_main.file != i) detach_main_file();
            ::close(f.fd);
            f.fd = STDERR_FILENO;
            f.is_stderr = true;
        }
        g_main.file = i;
    }
    g_configured_level.store(static_cast<int>(where.level), std::memory_order_relaxed);
    const int held = std::min(static_cast<int>(where.level), static_cast<int>(Level::kNotice));
    g_main.level.store(g_started.load(std::memory_order_relaxed) ? static_cast<int>(where.level) : held,
                       std::memory_order_relaxed);
    return "";
}

const Target* target(const config::ErrorLog& where, std::string* why) {
    std::lock_guard<std::mutex> lock(g_mutex);
    int file = -1;
    if (where.path != "stderr") {
        file = file_for(where.path);
        if (file < 0) {
            if (why) *why = "error_log " + where.path + ": " + std::strerror(errno);
            return nullptr;
        }
    }
    for (size_t i = 0; i < g_target_count; ++i) {
        Target& t = g_targets[i];
        if (t.file == file && t.level.load(std::memory_order_relaxed) == static_cast<int>(where.level)) return &t;
    }
    if (g_target_count == kMaxTargets) {
        if (why) *why = "error_log " + where.path + ": more than " + std::to_string(kMaxTargets) + " error logs";
        return nullptr;
    }
    Target& t = g_targets[g_target_count++];
    t.file = file;
    t.level.store(static_cast<int>(where.level), std::memory_order_relaxed);
    return &t;
}

namespace {

void emit(const Target& t, Level l, const char* program, bool tag, const char* fmt, va_list ap) {
    char buf[2048];
    size_t n = 0;
    int fd = STDERR_FILENO;
    if (t.file >= 0) {
        fd = g_files[t.file].fd;
        // nginx's error log line: "2024/06/01 12:00:00 [error] 1234#0: ".
        timeval tv{};
        ::gettimeofday(&tv, nullptr);
        tm lt{};
        ::localtime_r(&tv.tv_sec, &lt);
        n = std::strftime(buf, sizeof buf, "%Y/%m/%d %H:%M:%S ", &lt);
        const int w = std::snprintf(buf + n, sizeof buf - n, "[%s] %d#0: ", config::to_string(l), static_cast<int>(::getpid()));
        if (w > 0) n += static_cast<size_t>(w);
    } else {
        const int w = tag ? std::snprintf(buf, sizeof buf, "%s: [%s] ", program, config::to_string(l))
                          : std::snprintf(buf, sizeof buf, "%s: ", program);
        if (w > 0) n = static_cast<size_t>(w);
    }
    if (n < sizeof buf) {
        const int w = std::vsnprintf(buf + n, sizeof buf - n, fmt, ap);
        if (w > 0) n += static_cast<size_t>(w);
    }
    if (n > sizeof buf - 2) n = sizeof buf - 2;  // a truncated line still ends
    buf[n++] = '\n';
    write_all(fd, buf, n);
}

}  // namespace

void vwrite(const Target& t, Level l, const char* fmt, va_list ap) {
    if (t.enabled(l)) emit(t, l, g_program, true, fmt, ap);
}

void vreport(Level l, const char* program, const char* fmt, va_list ap) {
    if (g_main.enabled(l) || !g_started.load(std::memory_order_relaxed)) emit(g_main, l, program, false, fmt, ap);
}

void report(const char* program, const char* fmt, va_list ap) { vreport(Level::kNotice, program, fmt, ap); }

void report_at(Level l, const char* program, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(l, program, fmt, ap);
    va_end(ap);
}

config::ErrorLog main_of(const config::Config& cfg) {
    for (const auto& w : cfg.written) {
        if (w.name == "error_log" && w.block == "the top level") return cfg.error_log;
    }
    return config::ErrorLog{"stderr", Level::kInfo};
}

void started() {
    g_started.store(true, std::memory_order_relaxed);
    g_main.level.store(g_configured_level.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void write(Level l, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vwrite(g_main, l, fmt, ap);
    va_end(ap);
}

void write(const Target& t, Level l, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vwrite(t, l, fmt, ap);
    va_end(ap);
}

int reopen() {
    // Only async-signal-safe calls: open, dup2, close.
    int failed = 0;
    const size_t n = g_file_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) {
        File& f = g_files[i];
        const int fd = open_log(f.path);
        if (fd < 0) {
            ++failed;
            continue;
        }
        if (::dup2(fd, f.fd) < 0) ++failed;
        ::close(fd);
    }
    return failed;
}

}  // namespace terminus::errlog
