#include "mgmt/stats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <ctime>

namespace terminus::mgmt {

namespace {

// Segment layout: Header, then n_stats Entry records, then for each core a
// row of n_stats uint64_t values, each row on its own cache lines.
struct Header {
    uint32_t magic;
    uint32_t version;
    uint32_t n_stats;
    uint32_t cores;
    uint64_t tsc_hz;
    int64_t started_unix;
    int32_t pid;
    uint32_t reserved;
    uint64_t generation;  // bumped when the writer (re)starts
};

struct Entry {
    char group[16];
    char name[48];
    char help[96];
    char label_key[16];
    char label_value[112];
    char states[96];  // kState: the names, comma-separated
    uint8_t kind;
    uint8_t pad[7];
};

constexpr size_t align64(size_t v) { return (v + 63) & ~size_t{63}; }

size_t rows_offset(size_t n_stats) { return align64(sizeof(Header) + n_stats * sizeof(Entry)); }
size_t row_size(size_t n_stats) { return align64(n_stats * sizeof(uint64_t)); }

void copy_str(char* dst, size_t cap, const std::string& s) {
    const size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    std::memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

// The end of S when it does not fit (a label's path keeps its file name).
void copy_tail(char* dst, size_t cap, const std::string& s) {
    copy_str(dst, cap, s.size() < cap ? s : s.substr(s.size() - (cap - 1)));
}

// A label value as JSON and the Prometheus text format quote it.
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string with_commas(uint64_t v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
    return s;
}

}  // namespace

std::string stats_path(const std::string& instance) { return "/dev/shm/terminus-" + instance + ".stats"; }

Result<StatsWriter> StatsWriter::create(const std::string& instance, const std::vector<StatDef>& defs,
                                        unsigned cores, uint64_t tsc_hz, bool staged, int64_t started_unix) {
    if (cores == 0 || cores > kStatsMaxCores) return make_error("statistics: bad core count");
    StatsWriter w;
    w.live_path_ = stats_path(instance);
    w.path_ = staged ? w.live_path_ + ".next" : w.live_path_;
    w.n_stats_ = defs.size();
    w.cores_ = cores;
    w.len_ = rows_offset(defs.size()) + cores * row_size(defs.size());
    // A fresh file each start: readers of an old segment see it vanish.
    ::unlink(w.path_.c_str());
    const int fd = ::open(w.path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return make_error("statistics: cannot create " + w.path_ + ": " + std::strerror(errno));
    if (::ftruncate(fd, static_cast<off_t>(w.len_)) != 0) {
        const int e = errno;
        ::close(fd);
        return make_error("statistics: cannot size " + w.path_ + ": " + std::strerror(e));
    }
    void* p = ::mmap(nullptr, w.len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return make_error("statistics: cannot map " + w.path_ + ": " + std::strerror(errno));
    w.base_ = p;
    auto* h = static_cast<Header*>(p);
    auto* e = reinterpret_cast<Entry*>(h + 1);
    for (size_t i = 0; i < defs.size(); ++i) {
        copy_str(e[i].group, sizeof e[i].group, defs[i].group);
        copy_str(e[i].name, sizeof e[i].name, defs[i].name);
        copy_str(e[i].help, sizeof e[i].help, defs[i].help);
        copy_str(e[i].label_key, sizeof e[i].label_key, defs[i].label_key);
        copy_tail(e[i].label_value, sizeof e[i].label_value, defs[i].label_value);
        std::string states;
        for (const auto& st : defs[i].states) states += (states.empty() ? "" : ",") + st;
        copy_str(e[i].states, sizeof e[i].states, states);
        e[i].kind = static_cast<uint8_t>(defs[i].kind);
    }
    h->n_stats = static_cast<uint32_t>(defs.size());
    h->cores = cores;
    h->tsc_hz = tsc_hz;
    h->started_unix = started_unix ? started_unix : static_cast<int64_t>(std::time(nullptr));
    h->pid = static_cast<int32_t>(::getpid());
    h->version = kStatsVersion;
    __atomic_store_n(&h->magic, kStatsMagic, __ATOMIC_RELEASE);  // complete from here on
    return w;
}

StatsWriter::StatsWriter(StatsWriter&& o) noexcept
    : path_(std::move(o.path_)),
      live_path_(std::move(o.live_path_)),
      base_(o.base_),
      len_(o.len_),
      n_stats_(o.n_stats_),
      cores_(o.cores_) {
    o.base_ = nullptr;
}

bool StatsWriter::go_live() {
    if (path_ == live_path_) return true;
    if (::rename(path_.c_str(), live_path_.c_str()) != 0) return false;
    path_ = live_path_;
    return true;
}

StatsWriter::~StatsWriter() {
    if (!base_) return;
    ::munmap(base_, len_);
    if (!path_.empty()) ::unlink(path_.c_str());
}

void StatsWriter::publish(unsigned core, const uint64_t* values, size_t n) {
    if (core >= cores_ || !base_) return;
    auto* row = reinterpret_cast<uint64_t*>(static_cast<char*>(base_) + rows_offset(n_stats_) +
                                            core * row_size(n_stats_));
    if (n > n_stats_) n = n_stats_;
    for (size_t i = 0; i < n; ++i) __atomic_store_n(&row[i], values[i], __ATOMIC_RELAXED);
}

Result<Snapshot> read_stats(const std::string& instance) {
    const std::string path = stats_path(instance);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return make_error(errno == ENOENT ? "terminusd is not running as instance \"" + instance +
                                                "\" (no " + path + ")"
                                          : "cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st{};
    ::fstat(fd, &st);
    const size_t len = static_cast<size_t>(st.st_size);
    if (len < sizeof(Header)) {
        ::close(fd);
        return make_error(path + " is not a Terminus statistics segment");
    }
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return make_error("cannot map " + path + ": " + std::strerror(errno));
    const auto* h = static_cast<const Header*>(p);
    Result<Snapshot> out = make_error("");
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != kStatsMagic || h->version != kStatsVersion ||
        h->cores == 0 || h->cores > kStatsMaxCores ||
        rows_offset(h->n_stats) + h->cores * row_size(h->n_stats) > len) {
        out = make_error(path + " has another layout (version " + std::to_string(h->version) +
                         "): use the terminusctl of the running terminusd");
    } else {
        Snapshot s;
        s.cores = h->cores;
        s.tsc_hz = h->tsc_hz;
        s.started_unix = h->started_unix;
        s.pid = h->pid;
        const auto* e = reinterpret_cast<const Entry*>(h + 1);
        for (uint32_t i = 0; i < h->n_stats; ++i) {
            StatValue v;
            v.def.group = std::string(e[i].group, strnlen(e[i].group, sizeof e[i].group));
            v.def.name = std::string(e[i].name, strnlen(e[i].name, sizeof e[i].name));
            v.def.help = std::string(e[i].help, strnlen(e[i].help, sizeof e[i].help));
            v.def.label_key = std::string(e[i].label_key, strnlen(e[i].label_key, sizeof e[i].label_key));
            v.def.label_value = std::string(e[i].label_value, strnlen(e[i].label_value, sizeof e[i].label_value));
            v.def.kind = static_cast<StatKind>(e[i].kind);
            const std::string states(e[i].states, strnlen(e[i].states, sizeof e[i].states));
            for (size_t at = 0; !states.empty() && at <= states.size();) {
                const size_t comma = std::min(states.find(',', at), states.size());
                v.def.states.push_back(states.substr(at, comma - at));
                at = comma + 1;
            }
            for (uint32_t c = 0; c < h->cores; ++c) {
                const auto* row = reinterpret_cast<const uint64_t*>(static_cast<const char*>(p) +
                                                                    rows_offset(h->n_stats) +
                                                                    c * row_size(h->n_stats));
                const uint64_t val = __atomic_load_n(&row[i], __ATOMIC_RELAXED);
                v.per_core.push_back(val);
                v.total += val;
            }
            s.stats.push_back(std::move(v));
        }
        out = std::move(s);
    }
    ::munmap(p, len);
    return out;
}

std::string StatValue::state() const {
    if (total == 0) return "";
    return total <= def.states.size() ? def.states[total - 1] : "?";
}

std::string render_table(const Snapshot& s, bool per_core, const Snapshot* prev, double interval) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "terminusd pid %d, %u core%s\n", s.pid, s.cores, s.cores == 1 ? "" : "s");
    out += line;
    std::string group, label;
    for (size_t i = 0; i < s.stats.size(); ++i) {
        const StatValue& v = s.stats[i];
        if (v.def.group != group || v.def.label_value != label) {
            group = v.def.group;
            label = v.def.label_value;
            out += "\n" + group + (label.empty() ? "" : " " + v.def.label_key + " " + label) + "\n";
        }
        if (v.def.kind == StatKind::kState) {
            std::snprintf(line, sizeof line, "  %-26s %18s\n", v.def.name.c_str(), v.state().c_str());
            out += line;
            continue;
        }
        std::string cores;
        if (per_core) {
            for (uint64_t c : v.per_core) cores += "  " + with_commas(c);
        }
        std::string rate;
        if (prev && i < prev->stats.size() && v.def.kind == StatKind::kCounter && interval > 0) {
            const double d = static_cast<double>(v.total - prev->stats[i].total) / interval;
            char r[64];
            std::snprintf(r, sizeof r, "  %12.0f/s", d);
            rate = r;
        }
        std::snprintf(line, sizeof line, "  %-26s %18s%s%s\n", v.def.name.c_str(),
                      with_commas(v.total).c_str(), rate.c_str(), cores.c_str());
        out += line;
    }
    return out;
}

std::string render_json(const Snapshot& s) {
    std::string out = "{\"pid\": " + std::to_string(s.pid) + ", \"cores\": " + std::to_string(s.cores) +
                      ", \"started\": " + std::to_string(s.started_unix) + ", \"stats\": {";
    // Labelled counters nest one level more: {"tls_server": {"FILE:LINE":
    // {"failed_timeout": ...}}}.
    std::string group, label;
    bool first_group = true, first = true, in_label = false;
    for (const StatValue& v : s.stats) {
        if (v.def.group != group) {
            if (in_label) out += "}";
            if (!first_group) out += "}";
            out += std::string(first_group ? "" : ", ") + "\"" + v.def.group + "\": {";
            group = v.def.group;
            label.clear();
            in_label = false;
            first_group = false;
            first = true;
        }
        if (!v.def.label_value.empty() && (!in_label || v.def.label_value != label)) {
            if (in_label) out += "}";
            out += std::string(in_label ? ", " : "") + quoted(v.def.label_value) + ": {";
            label = v.def.label_value;
            in_label = true;
            first = true;
        }
        if (v.def.kind == StatKind::kState) {
            // A state is one value, not a sum over cores: its name.
            out += std::string(first ? "" : ", ") + "\"" + v.def.name + "\": " + quoted(v.state());
            first = false;
            continue;
        }
        out += std::string(first ? "" : ", ") + "\"" + v.def.name + "\": {\"total\": " +
               std::to_string(v.total) + ", \"per_core\": [";
        for (size_t c = 0; c < v.per_core.size(); ++c) {
            out += (c ? ", " : "") + std::to_string(v.per_core[c]);
        }
        out += "]}";
        first = false;
    }
    if (in_label) out += "}";
    if (!first_group) out += "}";
    out += "}}\n";
    return out;
}

std::string render_prometheus(const Snapshot& s) {
    // One family per name, its samples together (the text format wants
    // them contiguous), labelled ones after each other.
    std::string out;
    std::vector<bool> done(s.stats.size(), false);
    for (size_t i = 0; i < s.stats.size(); ++i) {
        if (done[i]) continue;
        const StatValue& v = s.stats[i];
        const bool counter = v.def.kind == StatKind::kCounter;
        const std::string name = "terminus_" + v.def.group + "_" + v.def.name + (counter ? "_total" : "");
        out += "# HELP " + name + " " + v.def.help + "\n";
        out += "# TYPE " + name + (counter ? " counter\n" : " gauge\n");
        for (size_t j = i; j < s.stats.size(); ++j) {
            const StatValue& w = s.stats[j];
            if (done[j] || w.def.group != v.def.group || w.def.name != v.def.name) continue;
            done[j] = true;
            const std::string label =
                w.def.label_value.empty() ? "" : "," + w.def.label_key + "=" + quoted(w.def.label_value);
            if (w.def.kind == StatKind::kState) {
                // A state set, as Prometheus writes enums: one sample per
                // state, 1 for the current one. Not per core.
                const std::string current = w.state();
                for (const auto& st : w.def.states) {
                    out += name + "{state=" + quoted(st) + label + "} " + (st == current ? "1" : "0") + "\n";
                }
                continue;
            }
            for (size_t c = 0; c < w.per_core.size(); ++c) {
                out += name + "{core=\"" + std::to_string(c) + "\"" + label + "} " + std::to_string(w.per_core[c]) +
                       "\n";
            }
        }
    }
    return out;
}

}  // namespace terminus::mgmt
