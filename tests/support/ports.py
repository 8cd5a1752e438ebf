"""Free tcp ports for the Python tests that run programs on tcp (CURVE,
metrics servers, supervisors): ports below the kernel's ephemeral range, so
that the programs' own outgoing connections cannot take one between the
pick and the bind, and every endpoint set explicitly (left out, reports and
control would be the orders port + 2 and + 3, which nobody picked)."""

import random
import socket

ENDPOINT_NAMES = ("ticks", "signals", "order_events", "orders", "dead_letters", "reports", "control")


def _listenable(port, address="127.0.0.1"):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
            return True
        except OSError:
            return False


def free_port_base(count, low=20000, high=32000, addresses=("127.0.0.1",)):
    """A port P such that P .. P+count-1 are all free now on every one of
    `addresses` (for a supervisor's metrics.port and its offsets, or a
    deployment's endpoints, on one or several loopback "hosts")."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        if all(_listenable(base + i, a) for i in range(count) for a in addresses):
            return base
    raise AssertionError(f"no {count} free ports in a row in {low}..{high} on {', '.join(addresses)}")


def free_port(addresses=("127.0.0.1",)):
    """One port free on every one of `addresses` (a metrics server, a
    Prometheus)."""
    return free_port_base(1, addresses=addresses)


def tcp_endpoints(address="127.0.0.1"):
    """{name: "tcp://address:port"} for every endpoint of a deployment on one
    host, on consecutive free ports."""
    base = free_port_base(len(ENDPOINT_NAMES), addresses=(address,))
    return {name: f"tcp://{address}:{base + i}" for i, name in enumerate(ENDPOINT_NAMES)}
