#!/usr/bin/env python3
"""Prints COUNT (default 1) distinct free loopback TCP ports, space-separated.

They are chosen below the kernel's ephemeral range: a free ephemeral port may be taken by any
outgoing connection between this choice and the server's bind; one below the range can only be
taken by another listener (and the servers started with it retry on "address in use")."""
import random
import socket
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
ports = []
while len(ports) < count:
    port = random.randint(10000, max(10001, low - 1))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    if port not in ports:
        ports.append(port)
print(" ".join(map(str, ports)))
