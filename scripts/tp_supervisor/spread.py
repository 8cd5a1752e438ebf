"""A strategy group's journals when its shards are spread over hosts.

Scaling a group to n restarts every instance; the new instance k adopts
each departed shard's journal <group>-j.journal with j >= n and j % n == k
(strategy_node.cpp, adopt_departed), reading it from its own run dir. On one
host every journal is in that run dir. Across hosts a journal sits on the
disk of the host whose shard wrote it, and its adopter j % n may now run on
another host (instance k runs on hosts[k % len(hosts)]), where it would
never see the file: the journal's unacked signals would be neither resent
nor given up (dead-lettered), only forgotten.

The rule (docs/ARCHITECTURE.md, "Several machines"): a journal is adopted
on the disk it is on. Before this host starts its new instances, each local
journal whose owner or adopter runs elsewhere is renamed to a free
<group>-j'.journal whose adopter (j' % n) is one of this host's new
instances, so that one of them adopts it; the acks still reach it (an
adopter subscribes to the ack topics its pending signals name). A host that
keeps no instance of the group keeps its journals as they are; tpctl
therefore refuses to scale a group below one instance per host of its
`hosts`, so that this cannot happen to a journal written under the file's
placement."""

import os
import re


def journal_name(group: str, j: int) -> str:
    return f"{group}-{j}.journal"


def local_journals(run_dir: str, group: str) -> list:
    """The shard numbers j of the <group>-j.journal files in run_dir."""
    pattern = re.compile(rf"^{re.escape(group)}-(\d+)\.journal$")
    try:
        names = os.listdir(run_dir)
    except OSError:
        return []
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


def plan(present, n: int, local) -> tuple:
    """(renames [(j, j')], left [j]) for the journals `present` on this disk
    when this host runs instances `local` of n. A journal stays where it is
    when the instance that reads it runs here: its owner j (j < n) or its
    adopter j % n. Any other goes, in turn, to one of `local` as a free
    j' = k + m * n (m >= 1), which k adopts; with no local instance it is
    left."""
    local = sorted(local)
    here = set(local)
    taken = set(present)
    renames, left = [], []
    turn = 0
    for j in sorted(present):
        reader = j if j < n else j % n
        if reader in here:
            continue
        if not local:
            left.append(j)
            continue
        k = local[turn % len(local)]
        turn += 1
        target = k + n
        while target in taken:
            target += n
        taken.add(target)
        renames.append((j, target))
    return renames, left


def rehome(run_dir: str, group: str, n: int, local) -> tuple:
    """Applies plan() to run_dir (the group's local instances are stopped:
    nobody holds these files); returns (renames, left) as file names."""
    renames, left = plan(local_journals(run_dir, group), n, local)
    done = []
    for j, target in renames:
        src, dst = (os.path.join(run_dir, journal_name(group, x)) for x in (j, target))
        os.rename(src, dst)   # never over a file: plan() picks a free name
        done.append((journal_name(group, j), journal_name(group, target)))
    return done, [journal_name(group, j) for j in left]
