"""The test stacks' ports: below the kernel's ephemeral range, and never handed out twice."""

from __future__ import annotations

import socket

from chaos.stack import free_port


def _ephemeral_low() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0])


def test_ports_are_free_distinct_and_below_what_port_0_hands_out():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert max(ports) < _ephemeral_low()  # a server's "any free port" can never land on one of them
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))  # free when handed out
