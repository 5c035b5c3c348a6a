// A queue of bytes held in mbuf segments linked through their next
// pointers: the receive queue of a connection, and its send queue from
// SND.UNA on. Only BYTES counts: the head's pkt_len and nb_segs are not
// kept, as these chains are never handed to a NIC. Private to dataplane/.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "dataplane/tcp/tcp.h"

namespace terminus::tcp {

// Takes M (all its segments) and appends its data.
void bq_append(ByteQueue& q, rte_mbuf* m);
// Copies LEN bytes starting OFFSET bytes into the queue to DST.
void bq_copy(const ByteQueue& q, uint32_t offset, uint32_t len, void* dst);
// Drops the first N bytes, freeing segments as they empty.
void bq_consume(ByteQueue& q, uint32_t n);
// Appends LEN bytes from SRC, filling the tail segment first and taking new
// ones from POOL; returns how many bytes fit (fewer when the pool is empty).
uint32_t bq_write(ByteQueue& q, rte_mempool* pool, const void* src, uint32_t len);
void bq_clear(ByteQueue& q);
// Moves the first N bytes of FROM to the end of TO: whole segments are
// relinked (no copy), a segment split by N has its part copied with
// bq_write. Returns how many bytes moved (fewer when POOL is empty).
uint32_t bq_move(ByteQueue& from, ByteQueue& to, rte_mempool* pool, uint32_t n);

}  // namespace terminus::tcp
