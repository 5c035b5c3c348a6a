#!/usr/bin/env python3
"""Sends COUNT TCP SYNs from SRC_IP with random source ports to DST:PORT
through a raw socket (the kernel is told not to answer the SYN-ACKs by the
test's nftables rule). Usage: syn_flood.py SRC_IP DST_IP PORT COUNT"""
import random
import socket
import struct
import sys

from labnet import csum


def main():
    src, dst, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    rnd = random.Random(4987)
    for _ in range(count):
        sport = rnd.randint(20000, 60000)
        seq = rnd.getrandbits(32)
        tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        s.sendto(ip + tcp, (dst, 0))


if __name__ == "__main__":
    main()
