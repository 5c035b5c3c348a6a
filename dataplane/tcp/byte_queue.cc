#include "dataplane/tcp/byte_queue.h"

#include <cstring>

namespace terminus::tcp {

void bq_append(ByteQueue& q, rte_mbuf* m) {
    uint32_t bytes = 0;
    rte_mbuf* last = m;
    for (rte_mbuf* s = m; s; s = s->next) {
        bytes += s->data_len;
        last = s;
    }
    if (bytes == 0) {
        rte_pktmbuf_free(m);
        return;
    }
    if (q.tail) {
        q.tail->next = m;
    } else {
        q.head = m;
    }
    q.tail = last;
    q.bytes += bytes;
}

void bq_copy(const ByteQueue& q, uint32_t offset, uint32_t len, void* dst) {
    auto* out = static_cast<uint8_t*>(dst);
    const rte_mbuf* s = q.head;
    while (s && offset >= s->data_len) {
        offset -= s->data_len;
        s = s->next;
    }
    while (s && len > 0) {
        const uint32_t n = s->data_len - offset < len ? s->data_len - offset : len;
        std::memcpy(out, rte_pktmbuf_mtod_offset(s, const uint8_t*, offset), n);
        out += n;
        len -= n;
        offset = 0;
        s = s->next;
    }
}

void bq_consume(ByteQueue& q, uint32_t n) {
    if (n > q.bytes) n = q.bytes;
    q.bytes -= n;
    rte_mbuf* s = q.head;
    while (s && n > 0) {
        if (s->data_len <= n) {
            n -= s->data_len;
            rte_mbuf* next = s->next;
            s->next = nullptr;
            s->nb_segs = 1;
            rte_pktmbuf_free_seg(s);
            s = next;
        } else {
            s->data_off = static_cast<uint16_t>(s->data_off + n);
            s->data_len = static_cast<uint16_t>(s->data_len - n);
            n = 0;
        }
    }
    // Segments emptied by a read of exactly their length.
    while (s && s->data_len == 0) {
        rte_mbuf* next = s->next;
        s->next = nullptr;
        s->nb_segs = 1;
        rte_pktmbuf_free_seg(s);
        s = next;
    }
    q.head = s;
    if (!s) q.tail = nullptr;
}

uint32_t bq_write(ByteQueue& q, rte_mempool* pool, const void* src, uint32_t len) {
    const auto* in = static_cast<const uint8_t*>(src);
    uint32_t done = 0;
    if (q.tail && RTE_MBUF_DIRECT(q.tail) && rte_mbuf_refcnt_read(q.tail) == 1) {
        const uint32_t room = rte_pktmbuf_tailroom(q.tail);
        const uint32_t n = room < len ? room : len;
        if (n) {
            std::memcpy(rte_pktmbuf_mtod_offset(q.tail, uint8_t*, q.tail->data_len), in, n);
            q.tail->data_len = static_cast<uint16_t>(q.tail->data_len + n);
            q.bytes += n;
            done += n;
        }
    }
    while (done < len) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool);
        if (!m) break;
        const uint32_t room = rte_pktmbuf_tailroom(m);
        const uint32_t n = room < len - done ? room : len - done;
        std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), in + done, n);
        m->data_len = static_cast<uint16_t>(n);
        m->pkt_len = n;
        bq_append(q, m);
        done += n;
    }
    return done;
}

uint32_t bq_move(ByteQueue& from, ByteQueue& to, rte_mempool* pool, uint32_t n) {
    uint32_t moved = 0;
    while (moved < n && from.head) {
        rte_mbuf* s = from.head;
        if (s->data_len == 0) {  // emptied by a read of its exact length
            from.head = s->next;
            s->next = nullptr;
            rte_pktmbuf_free_seg(s);
            continue;
        }
        if (s->data_len > n - moved) {
            // Split: copy the part that goes, keep the rest.
            const uint32_t part = n - moved;
            const uint32_t w = bq_write(to, pool, rte_pktmbuf_mtod(s, const uint8_t*), part);
            bq_consume(from, w);
            moved += w;
            break;
        }
        from.head = s->next;
        from.bytes -= s->data_len;
        s->next = nullptr;
        s->nb_segs = 1;
        s->pkt_len = s->data_len;
        moved += s->data_len;
        if (to.tail) {
            to.tail->next = s;
        } else {
            to.head = s;
        }
        to.tail = s;
        to.bytes += s->data_len;
    }
    if (!from.head) from.tail = nullptr;
    return moved;
}

void bq_clear(ByteQueue& q) {
    if (q.head) rte_pktmbuf_free(q.head);
    q = ByteQueue{};
}

}  // namespace terminus::tcp
