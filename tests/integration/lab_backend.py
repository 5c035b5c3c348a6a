#!/usr/bin/env python3
"""Backends for the lab: echo servers on ADDR:PORT... (each connection's
bytes come back; a FIN from the client is answered with a FIN once
everything is echoed). PORT:after-eof replies only once the client has
half-closed, with everything it sent. PORT:log echoes and prints
"accepted PORT" for every connection, for tests that check where a
balancer sent them. Usage: lab_backend.py ADDR PORT[:MODE]..."""
import socket
import sys
import threading


def handle(c):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        c.close()


def handle_after_eof(c):
    try:
        data = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        c.close()


log_lock = threading.Lock()


def serve(addr, port, handler=handle, log=False):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1024)
    while True:
        c, _ = s.accept()
        if log:
            with log_lock:  # one whole line per connection, whichever port
                sys.stdout.write("accepted %d\n" % port)
                sys.stdout.flush()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def main():
    addr = sys.argv[1]
    for p in sys.argv[2:]:
        port, _, mode = p.partition(":")
        h = handle_after_eof if mode == "after-eof" else handle
        threading.Thread(target=serve, args=(addr, int(port), h, mode == "log"), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
