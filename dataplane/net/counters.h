// Network-layer counters of one core. One writer (the core); the
// statistics segment publishes them.
#pragma once

#include <cstdint>

namespace terminus::dataplane::net {

// Every reason a frame is dropped, with its printable name (one list).
#define TERMINUS_NET_COUNTERS(X)                                                  \
    X(rx_frames, "frames received from the NIC")                                  \
    X(rx_bytes, "bytes received from the NIC")                                    \
    X(tx_frames, "frames sent")                                                   \
    X(tx_bytes, "bytes sent")                                                     \
    X(tx_dropped, "frames dropped because the TX queue was full")                 \
    X(nombuf, "frames not built because the mempool was empty")                   \
    X(handoffs_in, "frames handed over by another core")                          \
    X(handoffs_out, "frames handed to another core")                              \
    X(handoff_full, "frames dropped because a core-to-core ring was full")        \
    X(ring_full_packet, "frames for their flow's owner dropped: its ring was full") \
    X(ring_full_arp, "ARP frames not flooded to a core: its ring was full")     \
    X(ring_full_session_entry, "session-cache entries not sent to a core: its ring was full") \
    X(ring_full_upstream_session, "upstream sessions not sent to a core: its ring was full") \
    X(ring_full_config_generation, "configuration generations not sent to a core: its ring was full") \
    X(ring_full_generation_ack, "generation acknowledgements not sent to the control thread: its ring was full") \
    X(ring_full_query, "session queries not sent to a core: its ring was full") \
    X(ring_full_query_done, "session query answers not sent to the control thread: its ring was full") \
    X(eth_bad, "frames too short for Ethernet")                                   \
    X(eth_unknown_type, "frames of an EtherType other than IPv4 and ARP")         \
    X(eth_not_for_us, "frames for another MAC address")                           \
    X(arp_bad, "malformed ARP packets")                                           \
    X(arp_requests_answered, "ARP requests for our address answered")             \
    X(arp_replies, "ARP replies learned")                                         \
    X(arp_requests_sent, "ARP requests sent")                                     \
    X(arp_queue_full, "packets dropped waiting for ARP resolution")               \
    X(arp_unresolved, "packets dropped when ARP resolution timed out")            \
    X(ip_bad_header, "IPv4 packets with a bad version, length or header length")  \
    X(ip_bad_checksum, "IPv4 packets with a bad header checksum")                 \
    X(ip_fragments, "IPv4 fragments (dropped)")                                   \
    X(ip_options, "IPv4 packets with options (accepted)")                         \
    X(ip_not_for_us, "IPv4 packets for another address")                          \
    X(ip_unknown_protocol, "IPv4 packets of a protocol other than ICMP and TCP")  \
    X(icmp_bad, "malformed ICMP messages")                                        \
    X(icmp_echo_answered, "ICMP echo requests answered")                          \
    X(icmp_frag_needed, "ICMP fragmentation-needed messages received")            \
    X(icmp_other, "other ICMP messages (ignored)")                                \
    X(tcp_segments, "TCP segments received")                                      \
    X(tcp_unhandled, "TCP segments dropped: no TCP stack on this core")           \
    X(loop_iterations, "poll loop iterations")                                    \
    X(loop_busy_iterations, "poll loop iterations that did work")                 \
    X(loop_cycles, "TSC cycles spent in the poll loop")                           \
    X(loop_busy_cycles, "TSC cycles spent in iterations that did work")

struct NetCounters {
#define TERMINUS_X(name, help) uint64_t name = 0;
    TERMINUS_NET_COUNTERS(TERMINUS_X)
#undef TERMINUS_X
};

}  // namespace terminus::dataplane::net
