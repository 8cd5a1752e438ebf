"""Hosts made of Linux network namespaces, for tests of links between hosts.

Each host is a namespace with one address of its own (a /32 on its loopback,
the address the deployment file gives it) and a veth link to every other
host; a host route sends each peer's address over their link. Cutting a
link takes both of its ends down, as a pulled cable would; restoring brings
them up and puts the routes back (the kernel drops a route when its device
goes down). Traffic never leaves the namespaces.

Needs root and iproute2; `unavailable()` says why they cannot be made.
Names carry the test's pid, so that `sweep()` can remove what a run killed
by ctest's timeout left behind, and `remove()` removes everything made
(deleting a namespace deletes its veth ends)."""

import itertools
import os
import shutil
import subprocess


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


def unavailable():
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    probe = f"tpnsprobe{os.getpid()}"
    r = ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot make a network namespace: {r.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def sweep(prefix):
    """Removes namespaces named <prefix><pid><letter> whose pid is gone."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        pid = name[len(prefix):-1]
        if name.startswith(prefix) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            ip("netns", "del", name, check=False)


class Hosts:
    """Namespaces named <prefix><pid><a|b|c...> for the hosts `names`, host i
    at 10.<net>.0.<i+1> (`address(name)`), every pair linked."""

    def __init__(self, prefix, names, net=217):
        assert len(prefix) + 7 + 1 <= 15, "a namespace and interface name holds at most 15 characters"
        self.prefix = prefix
        self.names = list(names)
        pid = os.getpid()
        self.ns = {h: f"{prefix}{pid}{chr(ord('a') + i)}" for i, h in enumerate(self.names)}
        self.addr = {h: f"10.{net}.0.{i + 1}" for i, h in enumerate(self.names)}
        self.links = {}  # frozenset(a, b) -> {host: (ifname, link address)}
        octet = pid % 250 + 1
        for n, (a, b) in enumerate(itertools.combinations(self.names, 2)):
            base = 4 * n
            self.links[frozenset((a, b))] = {
                a: (f"{self.ns[a]}{chr(ord('a') + self.names.index(b))}", f"10.{net + 1}.{octet}.{base + 1}"),
                b: (f"{self.ns[b]}{chr(ord('a') + self.names.index(a))}", f"10.{net + 1}.{octet}.{base + 2}"),
            }
        self.made = []

    def address(self, host):
        return self.addr[host]

    def make(self):
        for h in self.names:
            ip("netns", "add", self.ns[h])
            self.made.append(self.ns[h])
            ip("-n", self.ns[h], "link", "set", "lo", "up")
            ip("-n", self.ns[h], "addr", "add", f"{self.addr[h]}/32", "dev", "lo")
        for pair, ends in self.links.items():
            a, b = sorted(pair, key=self.names.index)
            ip("-n", self.ns[a], "link", "add", ends[a][0], "type", "veth", "peer", "name", ends[b][0],
               "netns", self.ns[b])
            for h in (a, b):
                ip("-n", self.ns[h], "addr", "add", f"{ends[h][1]}/30", "dev", ends[h][0])
            self.restore(a, b)

    def _link(self, a, b):
        return self.links[frozenset((a, b))]

    def cut(self, a, b):
        for h, (ifname, _) in self._link(a, b).items():
            ip("-n", self.ns[h], "link", "set", ifname, "down")

    def restore(self, a, b):
        ends = self._link(a, b)
        for h, (ifname, _) in ends.items():
            ip("-n", self.ns[h], "link", "set", ifname, "up")
        for h, (ifname, _) in ends.items():
            peer = b if h == a else a
            ip("-n", self.ns[h], "route", "replace", f"{self.addr[peer]}/32", "via", ends[peer][1], "dev", ifname,
               "src", self.addr[h])

    def command(self, host, argv):
        """`argv` run inside `host`'s namespace."""
        return ["ip", "netns", "exec", self.ns[host], *argv]

    def remove(self):
        for ns in self.made:
            ip("netns", "del", ns, check=False)
        self.made = []
