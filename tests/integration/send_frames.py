#!/usr/bin/env python3
"""Sends hostile and malformed frames to DST_MAC on IFACE through an
AF_PACKET socket: a bad IPv4 header checksum, a bad IPv4 version, a
truncated IPv4 header, an IPv4 fragment, an unknown EtherType, a short ARP
packet, a bad ICMP checksum, and ICMP fragmentation-needed (whole and
truncated). Usage: send_frames.py IFACE DST_MAC SRC_IP DST_IP"""
import socket
import struct
import sys

from labnet import csum


def ipv4(src, dst, payload, proto=1, frag=0, version=4, fix_csum=True):
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | 5, 0, 20 + len(payload), 1, frag,
                      64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    c = csum(hdr) if fix_csum else 0x1234
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def icmp_echo(good=True):
    body = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"terminus"
    c = csum(body) if good else 0x4321
    return body[:2] + struct.pack("!H", c) + body[4:]


def frag_needed(src, dst, mtu):
    """ICMP type 3 code 4 quoting a TCP segment DST:80 -> SRC:5555 that DST
    (Terminus) supposedly sent, with the next-hop MTU (RFC 1191)."""
    quoted_tcp = struct.pack("!HHI", 80, 5555, 12345)
    quoted_ip = ipv4(dst, src, quoted_tcp, proto=6)
    body = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quoted_ip[:28]
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    return body


def main():
    iface, dst_mac, src_ip, dst_ip = sys.argv[1:5]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    eth = lambda etype: dmac + src_mac + struct.pack("!H", etype)
    frames = [
        eth(0x0800) + ipv4(src_ip, dst_ip, icmp_echo(), fix_csum=False),  # ip_bad_checksum
        eth(0x0800) + ipv4(src_ip, dst_ip, icmp_echo(), version=6),       # ip_bad_header
        eth(0x0800) + b"\x45\x00\x00",                                    # ip_bad_header
        eth(0x0800) + ipv4(src_ip, dst_ip, icmp_echo(), frag=0x2000),     # ip_fragments
        eth(0x88B5) + b"\0" * 46,                                         # eth_unknown_type
        eth(0x0806) + b"\0\1\x08\0",                                      # arp_bad
        eth(0x0800) + ipv4(src_ip, dst_ip, icmp_echo(good=False)),        # icmp_bad
        eth(0x0800) + ipv4(src_ip, dst_ip, frag_needed(src_ip, dst_ip, 1280)),  # icmp_frag_needed
        eth(0x0800) + ipv4(src_ip, dst_ip, frag_needed(src_ip, dst_ip, 1280)[:12]),  # too short to name a flow
    ]
    for f in frames:
        s.send(f.ljust(60, b"\0"))


if __name__ == "__main__":
    main()
