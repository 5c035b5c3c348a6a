// Receive and build functions for Ethernet, ARP, IPv4 and ICMP, on the
// frames of one core. Private to dataplane/.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

namespace terminus::dataplane {
struct Lcore;
}

namespace terminus::dataplane::net {

// ARP (RFC 826). M starts at the Ethernet header. FROM_CORE: flooded by
// the core that received it, to learn from only.
void arp_input(Lcore& lc, unsigned port, rte_mbuf* m, bool from_core);
// Sends a request for IP on PORT (or, with IP == our address, a
// gratuitous ARP announcing it).
void arp_request(Lcore& lc, unsigned port, uint32_t ip);
// Resends due requests and drops packets whose address never resolved.
bool arp_timer(Lcore& lc, uint64_t now);

// IPv4 (RFC 791, RFC 1122 3.2.1). M starts at the Ethernet header.
void ipv4_input(Lcore& lc, unsigned port, rte_mbuf* m, bool from_core);

// ICMP (RFC 792, RFC 1122 3.2.2). M starts at the Ethernet header; the
// IPv4 header that follows is IHL bytes long and already checked.
void icmp_input(Lcore& lc, unsigned port, rte_mbuf* m, unsigned ihl);

}  // namespace terminus::dataplane::net
