#include "mgmt/access_log_reader.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// Headers only: the single-consumer dequeue is inline and reads nothing
// but the ring itself.
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <cerrno>
#include <cstring>

#include "mgmt/access_log_format.h"

namespace terminus::mgmt {

Result<std::unique_ptr<AccessLogReader>> AccessLogReader::open(const std::string& path) {
    std::unique_ptr<AccessLogReader> r(new AccessLogReader());
    r->path_ = path;
    r->fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (r->fd_ < 0) return make_error(path + ": " + std::strerror(errno));
    if (::flock(r->fd_, LOCK_EX | LOCK_NB) != 0) {
        return make_error(path + ": another terminus-mgmtd reads it (" + std::strerror(errno) + ")");
    }
    struct stat st{};
    if (::fstat(r->fd_, &st) != 0) return make_error(path + ": " + std::strerror(errno));
    r->dev_ = st.st_dev;
    r->ino_ = st.st_ino;
    r->len_ = static_cast<size_t>(st.st_size);
    if (r->len_ < sizeof(AccessLogHeader)) return make_error(path + ": too short for an access log segment");
    void* p = ::mmap(nullptr, r->len_, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd_, 0);
    if (p == MAP_FAILED) return make_error(path + ": " + std::strerror(errno));
    r->base_ = p;
    const auto* h = static_cast<const AccessLogHeader*>(p);
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != kAccessLogMagic) {
        return make_error(path + ": not an access log segment (or not ready yet)");
    }
    if (h->version != kAccessLogVersion || h->record_size != sizeof(AccessRecord)) {
        return make_error(path + ": access log layout " + std::to_string(h->version) + " with " +
                          std::to_string(h->record_size) + "-byte records; this terminus-mgmtd reads layout " +
                          std::to_string(kAccessLogVersion) + " with " + std::to_string(sizeof(AccessRecord)));
    }
    // What the header says is copied once: the checks below and every
    // drain use these, whatever the header says later.
    r->cores_ = h->cores;
    r->count_ = h->ring_count;
    r->offset_ = h->ring_offset;
    r->stride_ = h->ring_stride;
    r->pid_ = h->pid;
    const uint64_t ring_min = sizeof(rte_ring) + uint64_t{r->count_} * sizeof(AccessRecord);
    if (r->cores_ == 0 || r->cores_ > kAccessLogMaxCores || r->count_ < 2 || (r->count_ & (r->count_ - 1)) != 0 ||
        r->count_ > (1u << 24) || r->offset_ < sizeof(AccessLogHeader) || r->offset_ % 64 != 0 ||
        r->stride_ < ring_min || r->stride_ % 64 != 0 || r->offset_ + r->stride_ * r->cores_ > r->len_) {
        return make_error(path + ": the header describes rings that do not fit the file");
    }
    if (!r->layout_ok()) return make_error(path + ": a ring's size does not match the header");
    return r;
}

AccessLogReader::~AccessLogReader() {
    if (base_) ::munmap(base_, len_);
    if (fd_ >= 0) ::close(fd_);  // and the lock with it
}

bool AccessLogReader::layout_ok() const {
    for (unsigned c = 0; c < cores_; ++c) {
        const auto* ring = reinterpret_cast<const rte_ring*>(static_cast<const char*>(base_) + offset_ + stride_ * c);
        if (ring->size != count_ || ring->mask != count_ - 1 || ring->capacity != count_ - 1) return false;
    }
    return true;
}

size_t AccessLogReader::drain(AccessRecord* out, size_t max) {
    if (corrupt_ || !layout_ok()) {
        corrupt_ = true;
        return 0;
    }
    size_t got = 0;
    // Round robin from where the last drain stopped, so that one busy core
    // does not starve the others' rings.
    for (unsigned k = 0; k < cores_ && got < max; ++k) {
        const unsigned c = (next_core_ + k) % cores_;
        auto* ring = reinterpret_cast<rte_ring*>(static_cast<char*>(base_) + offset_ + stride_ * c);
        // Never more than the ring holds in one go: the copy then cannot
        // pass its slots whatever its indexes say.
        const auto want = static_cast<unsigned>(std::min<size_t>(max - got, count_ - 1));
        const unsigned n = rte_ring_sc_dequeue_burst_elem(ring, out + got, sizeof(AccessRecord), want, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            AccessRecord& rec = out[got];
            if (record_valid(rec) && rec.core == c) {
                ++got;
            } else {
                ++invalid_;
                if (i + 1 < n) std::memmove(&rec, &out[got + 1], sizeof(AccessRecord) * (n - i - 1));
            }
        }
    }
    next_core_ = cores_ ? (next_core_ + 1) % cores_ : 0;
    return got;
}

bool AccessLogReader::replaced() const {
    struct stat st{};
    if (::stat(path_.c_str(), &st) != 0) return true;
    return st.st_dev != dev_ || st.st_ino != ino_;
}

}  // namespace terminus::mgmt
