// The error log of terminusd and terminus-mgmtd, as nginx's error_log:
// a path ("stderr" or a file, opened O_APPEND|O_CREAT, mode 0640) and a
// level (debug info notice warn error crit alert emerg); messages below
// the level are not written, nor even formatted.
//
// The main-level error_log is the process's: its file is also made the
// process's stderr (nginx's ngx_log_redirect_stderr), so that what other
// code writes to stderr lands there too, and reopen() (SIGUSR1) swaps the
// descriptor under every writer at once. stream{}- and server{}-level
// error_logs are targets of their own (target()), for the messages about
// that server's sessions, as nginx writes those to the server's log.
//
// Lines: on stderr "PROGRAM: [LEVEL] message"; in a file nginx's
// "YYYY/MM/DD HH:MM:SS [LEVEL] PID#0: message". Each line is one write(2);
// callers on a dataplane core rate-limit what they log (one syscall per
// line written; a line below the level costs one comparison).
//
// The start-up report (report(): "PROGRAM: message" on stderr, notice in
// a file) is written whatever the level until started() — it says what
// the process found and why it could not start — and at notice after.
#pragma once

#include <atomic>
#include <cstdarg>
#include <string>

#include "config/config.h"

namespace terminus::errlog {

using Level = config::LogLevel;

// Where a target writes and from which level. Stable for the process's
// life once target() returned it (never freed: a handful per process).
struct Target {
    int file = -1;  // index of its file; -1: stderr
    std::atomic<int> level{static_cast<int>(Level::kError)};
    bool enabled(Level l) const { return static_cast<int>(l) >= level.load(std::memory_order_relaxed); }
};

// The name lines on stderr begin with ("terminusd").
void set_program(const char* name);

// The process's error log: stderr at "error" until configure() says
// otherwise (before it, every level from notice up is written, so that
// start-up lines are seen).
Target& main_target();
inline bool enabled(Level l) { return main_target().enabled(l); }

// Makes WHERE the main error log: opens the file (or takes stderr) and
// sets the level (held at notice until started()). The file becomes the
// process's stderr. Returns "" or why the file cannot be opened (the
// previous log stays).
std::string configure(const config::ErrorLog& where);
// Start-up is over: the configured level applies to everything.
void started();
// The main error log CFG asks for: its top-level error_log when it writes
// one, stderr from info up otherwise (what both programs always wrote).
config::ErrorLog main_of(const config::Config& cfg);

// A target for a stream{} or server{} error_log: the same file as another
// target when the path is the same (one descriptor per path). Null, with
// the reason in WHY, when the file cannot be opened or kMaxTargets are in
// use. Thread-safe (a mutex: for the control thread, never a core).
const Target* target(const config::ErrorLog& where, std::string* why = nullptr);
constexpr size_t kMaxTargets = 64;

__attribute__((format(printf, 2, 3))) void write(Level l, const char* fmt, ...);
__attribute__((format(printf, 3, 4))) void write(const Target& t, Level l, const char* fmt, ...);
void vwrite(const Target& t, Level l, const char* fmt, va_list ap);
// A line of the start-up (and exit) report: notice, no level tag on
// stderr, PROGRAM as its prefix there.
void report(const char* program, const char* fmt, va_list ap);
// The same at level L (terminus-mgmtd's lines, which keep the form they
// have always had on stderr: "terminus-mgmtd: message").
void vreport(Level l, const char* program, const char* fmt, va_list ap);
__attribute__((format(printf, 3, 4))) void report_at(Level l, const char* program, const char* fmt, ...);

// Reopens every file (logrotate's SIGUSR1): each path is opened again and
// its new descriptor dup2()ed over the old one, so writers on other
// threads never see a closed descriptor. Async-signal-safe: callable from
// a signal handler. Returns how many files failed to reopen (they keep
// their old descriptor).
int reopen();

}  // namespace terminus::errlog
