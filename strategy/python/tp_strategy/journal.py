"""At-least-once delivery of signals, in Python: the signal journal file, the
unacked signals with their resend timers, and signal ids unique across
restarts. The SAME file format and behaviour as the C++ SignalJournal
(strategy/include/strategy/signal_journal.hpp), so that a journal written by
either runtime is replayed, adopted and reconciled by the other and by the
tools (tests/chaos/chaoslib.py, tpctl):

  B <boot_ms>   an instance started with this boot time (ms)
  S <hex>       a signal: its msgpack TradingSignal payload in lowercase hex
  A <signal_id> the signal was acked (any SignalAck status)
  X <signal_id> the signal was given up (dead-lettered "unacked")

One record per line, each written by one os.write() on an O_APPEND
descriptor; an exclusive flock is held for the journal's whole life. No
fsync, as in C++: a record is in the page cache once write() returns, so it
survives kill -9 of this process but not a power loss. Replay: every S
without a later A/X for its id is pending; an unreadable committed line is
kept in Replay.unreadable (never skipped silently); a torn last line (no
newline: a crash mid-write) is appended to <path>.torn and cut off. A failed
append leaves nothing behind (ftruncate back to the last good offset).
Not thread-safe: one owner, the runtime's loop."""

from __future__ import annotations

import errno as errno_mod
import fcntl
import logging
import math
import os
import re

import msgpack

from .wire import check_terms as _check_terms

log = logging.getLogger("tp_strategy.journal")

MAX_ID_LENGTH = 128
DEFAULT_COMPACT_BYTES = 4 * 1024 * 1024
_LOAD_CHUNK = 256 * 1024  # bytes read at a time at start
# In the replay's state: an id acked (or given up) whose signal record has
# not been read (yet); and a missing key.
_CLOSED_UNSEEN = object()
_ABSENT = object()
SIGNAL_TYPE = 3
SCHEMA_VERSION = 1
# TradingSignal fields, wire order (docs/PROTOCOL.md): index into the
# decoded array after [type, version].
SIGNAL_FIELDS = ("signal_id", "strategy", "instance", "instrument", "action", "quantity",
                 "trigger_price", "confidence", "created_ts_ns", "expires_ts_ns",
                 "causation_seq", "causation_ts_ns")
# The optional appended fields (the order's terms) and their values when
# absent: market, limit_price 0, IOC, good_till_ns 0.
SIGNAL_TERMS = (("order_type", 0), ("limit_price", 0.0), ("time_in_force", 0), ("good_till_ns", 0))


class JournalLocked(RuntimeError):
    """Another process (or another SignalJournal here) holds the journal's lock."""


class JournalError(RuntimeError):
    pass


def choose_boot_ms(now_ms: int, last_boot_ms: int) -> int:
    """Now, but always after the journal's last boot: ids cannot collide with
    a previous run's even when the clock stepped back."""
    return now_ms if now_ms > last_boot_ms else last_boot_ms + 1


class SignalIdGenerator:
    """Mints `<group>.<shard>.<boot_ms>.<n>`, n = 1, 2, ..."""

    __slots__ = ("prefix", "boot_ms", "n")

    def __init__(self, group: str, shard: int, boot_ms: int):
        self.prefix = f"{group}.{shard}.{boot_ms}."
        self.boot_ms = boot_ms
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return self.prefix + str(self.n)


_BOOT = re.compile(r"-?[0-9]+")
_HEX = frozenset("0123456789abcdefABCDEF")


def _plausible_id(sid: str) -> bool:
    return 0 < len(sid) <= MAX_ID_LENGTH and all(" " < c < "\x7f" for c in sid)


def decode_signal(payload: bytes):
    """The TradingSignal in `payload` as a dict, or None when it is not one
    (what the C++ decoder would refuse: wrong type/version, a missing or
    mistyped field)."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:  # noqa: BLE001 - anything msgpack refuses is unreadable
        return None
    if not isinstance(obj, list) or len(obj) < 2 + len(SIGNAL_FIELDS):
        return None
    if obj[0] != SIGNAL_TYPE or obj[1] != SCHEMA_VERSION:
        return None
    s = dict(zip(SIGNAL_FIELDS, obj[2:2 + len(SIGNAL_FIELDS)]))
    for f in ("signal_id", "strategy", "instrument"):
        if type(s[f]) is not str or not s[f] or len(s[f].encode()) > MAX_ID_LENGTH:
            return None
    for f, lo, hi in (("instance", 0, 2**32 - 1), ("action", 1, 2), ("created_ts_ns", -2**63, 2**63 - 1),
                      ("expires_ts_ns", -2**63, 2**63 - 1), ("causation_seq", 0, 2**64 - 1),
                      ("causation_ts_ns", -2**63, 2**63 - 1)):
        if type(s[f]) is not int or not lo <= s[f] <= hi:
            return None
    for f in ("quantity", "trigger_price", "confidence"):
        if type(s[f]) not in (int, float):
            return None
        s[f] = float(s[f])
    # What the C++ validate(TradingSignal) refuses, the C++ replay cannot read.
    inst = s["instrument"]
    if len(inst.encode()) > 32 or any(c <= " " or c > "~" or c == "." for c in inst):
        return None
    if not (0 < s["quantity"] < math.inf and 0 < s["trigger_price"] < math.inf and 0 <= s["confidence"] <= 1):
        return None
    if s["expires_ts_ns"] < s["created_ts_ns"]:
        return None
    extra = obj[2 + len(SIGNAL_FIELDS):]
    for i, (f, default) in enumerate(SIGNAL_TERMS):
        s[f] = extra[i] if i < len(extra) else default
    if type(s["order_type"]) is not int or type(s["time_in_force"]) is not int or type(s["good_till_ns"]) is not int:
        return None
    if type(s["limit_price"]) not in (int, float) or not -2**63 <= s["good_till_ns"] < 2**63:
        return None
    s["limit_price"] = float(s["limit_price"])
    if _check_terms(s["order_type"], s["limit_price"], s["time_in_force"], s["good_till_ns"]) is not None:
        return None
    return s


def recover_signal_id(hex_text: str) -> str:
    """The signal id held by an S record's (possibly garbled or cut) hex: the
    third element of the payload's array. Empty when none can be recovered.
    Walks the bytes by hand, as the C++ recover_signal_id does."""
    data = bytearray()
    for i in range(0, len(hex_text) - 1, 2):
        pair = hex_text[i:i + 2]
        if not (pair[0] in _HEX and pair[1] in _HEX):
            break
        data.append(int(pair, 16))

    def at(i):
        return data[i] if i < len(data) else -1

    p = 0
    a = at(p)
    if 0x91 <= a <= 0x9F:
        p += 1
    elif a == 0xDC:
        p += 3
    elif a == 0xDD:
        p += 5
    else:
        return ""
    if at(p) == 3:
        p += 1
    elif at(p) == 0xCC and at(p + 1) == 3:
        p += 2
    else:
        return ""
    v = at(p)
    if 0 <= v < 0x80:
        p += 1
    elif 0xCC <= v <= 0xCF:
        p += 1 + (1 << (v - 0xCC))
    else:
        return ""
    t = at(p)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        p += 1
    elif t == 0xD9 and at(p + 1) >= 0:
        n = at(p + 1)
        p += 2
    elif t == 0xDA and at(p + 2) >= 0:
        n = at(p + 1) << 8 | at(p + 2)
        p += 3
    else:
        return ""
    if p + n > len(data):
        return ""
    try:
        sid = bytes(data[p:p + n]).decode("ascii")
    except UnicodeDecodeError:
        return ""
    return sid if _plausible_id(sid) else ""


class UnreadableRecord:
    __slots__ = ("offset", "raw", "signal_id", "settled")

    def __init__(self, offset, raw, signal_id="", settled=False):
        self.offset, self.raw, self.signal_id, self.settled = offset, raw, signal_id, settled


class Replay:
    def __init__(self):
        self.pending = []            # decoded signals (dicts), journal order
        self.pending_payloads = []   # their bytes, same order
        self.last_boot_ms = 0
        self.records = 0
        self.unreadable = []
        self.torn = None

    @property
    def bad_records(self):
        return len(self.unreadable)

    @property
    def torn_tail(self):
        return self.torn is not None


class SignalJournal:
    OWN, ADOPT = "own", "adopt"

    def __init__(self, path: str, compact_bytes: int = DEFAULT_COMPACT_BYTES, mode: str = "own"):
        self.path = path
        self.compact_bytes = compact_bytes
        self.fd = -1
        self.size = 0
        self.tail_dirty = False
        self.last_errno = 0
        self.failed_writes = 0
        self.replay = Replay()
        self._open_locked(mode)
        try:
            self._load()
        except BaseException:
            os.close(self.fd)
            self.fd = -1
            raise

    @property
    def torn_path(self):
        return self.path + ".torn"

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)  # also releases the lock
            self.fd = -1

    def _open_locked(self, mode):
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if mode == self.OWN else 0)
        # The lock belongs to an inode and the name may move on (a holder's
        # compaction renames a new file over it): the locked file must still
        # be the one the path names.
        for _ in range(16):
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as e:
                raise JournalError(f"signal journal {self.path}: cannot open: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno_mod.EWOULDBLOCK, errno_mod.EAGAIN):
                    raise JournalLocked(
                        f"signal journal {self.path}: in use by another process (its flock is held: a "
                        "running instance of this shard, or the instance that adopted it)") from None
                if e.errno == errno_mod.EINTR:
                    continue
                raise JournalError(f"signal journal {self.path}: cannot lock: {e.strerror}") from None
            try:
                by_fd, by_path = os.fstat(fd), os.stat(self.path)
                same = (by_fd.st_dev, by_fd.st_ino) == (by_path.st_dev, by_path.st_ino)
            except OSError:
                same = False
            if same:
                self.fd = fd
                self.size = by_fd.st_size
                return
            os.close(fd)
        raise JournalError(f"signal journal {self.path}: replaced over and over while being opened")

    def _load(self):
        # Read in pieces, and per signal only its id and, while it is open,
        # its payload: a journal near compact_bytes holds some 20,000
        # signals, and reading it whole and decoding each into a dict took
        # a restarted strategy's peak RSS from 22 MB to 55 MB (budget 30).
        r = self.replay
        state = {}  # signal id -> its payload while open, None once acked or given up (journal order)
        pos = 0               # the file offset of buf[0]
        buf = bytearray()     # read, not yet replayed: the start of a record
        while pos + len(buf) < self.size:
            b = os.pread(self.fd, min(_LOAD_CHUNK, self.size - pos - len(buf)), pos + len(buf))
            if not b:
                break
            buf += b
            start = 0
            while (nl := buf.find(b"\n", start)) >= 0:
                self._replay_record(pos + start, bytes(buf[start:nl]), state)
                start = nl + 1
            pos += start
            del buf[:start]
        if buf:
            self._cut_torn_tail(pos, bytes(buf))
        for bad in r.unreadable:
            if bad.signal_id:
                bad.settled = bad.signal_id in state
        if r.torn is not None and r.torn.signal_id:
            r.torn.settled = r.torn.signal_id in state
        if r.unreadable:
            with_id = sum(1 for b in r.unreadable if b.signal_id)
            log.warning("signal journal %s: %d unreadable record(s) (%d with a recoverable signal id), first at "
                        "offset %d", self.path, len(r.unreadable), with_id, r.unreadable[0].offset)
        for payload in state.values():
            if payload is not None and payload is not _CLOSED_UNSEEN:
                r.pending.append(decode_signal(payload))
                r.pending_payloads.append(payload)

    def _replay_record(self, offset, line, state):
        """One whole record (without its newline) into `state`; an
        unreadable one is kept aside in the replay."""
        r = self.replay
        good = len(line) >= 3 and line[1:2] == b" "
        arg = line[2:] if good else b""
        if good:
            kind = line[:1]
            if kind == b"B":
                try:
                    text = arg.decode("ascii")
                    good = _BOOT.fullmatch(text) is not None and -2**63 <= int(text) < 2**63
                    if good:
                        r.last_boot_ms = max(r.last_boot_ms, int(text))
                except UnicodeDecodeError:
                    good = False
            elif kind == b"S":
                try:
                    payload = bytes.fromhex(arg.decode("ascii")) if len(arg) % 2 == 0 else None
                except (ValueError, UnicodeDecodeError):
                    payload = None
                # bytes.fromhex skips spaces; the C++ reader does not.
                if payload is not None and len(payload) * 2 != len(arg):
                    payload = None
                sig = decode_signal(payload) if payload is not None else None
                if sig is None:
                    good = False
                else:
                    sid = sig["signal_id"]
                    was = state.get(sid, _ABSENT)
                    if was is _ABSENT:
                        state[sid] = payload
                    elif was is _CLOSED_UNSEEN:
                        # Acked before its signal record: still open, in the
                        # journal order of that record.
                        del state[sid]
                        state[sid] = payload
            elif kind in (b"A", b"X"):
                try:
                    sid = arg.decode("ascii")
                    good = _plausible_id(sid)
                except UnicodeDecodeError:
                    good = False
                if good:
                    state[sid] = None if state.get(sid, _ABSENT) not in (_ABSENT, _CLOSED_UNSEEN) else _CLOSED_UNSEEN
            else:
                good = False
        if good:
            r.records += 1
            return
        bad = UnreadableRecord(offset, line)
        if len(line) > 2:
            bad.signal_id = recover_signal_id(line[2:].decode("latin-1"))
        r.unreadable.append(bad)

    def _cut_torn_tail(self, pos, line):
        """A last record without its newline (a write cut short by a crash):
        set aside in the .torn file and cut off, the journal continuing from
        `pos`."""
        r = self.replay
        torn = UnreadableRecord(pos, line)
        if len(line) > 2 and line[:2] == b"S ":
            torn.signal_id = recover_signal_id(line[2:].decode("latin-1"))
        aside = b"offset=%d bytes=%d raw=" % (pos, len(line)) + line + b"\n"
        kept = False
        try:
            side = os.open(self.torn_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(side, aside)
                kept = True
            finally:
                os.close(side)
        except OSError:
            pass
        log.warning("signal journal %s: torn last record at offset %d (%d bytes, a write cut short by a "
                    "crash, never sent)%s; %s; the journal continues from offset %d", self.path, pos,
                    len(line), f", signal {torn.signal_id}" if torn.signal_id else "",
                    f"set aside in {self.torn_path}" if kept else f"COULD NOT be set aside in "
                    f"{self.torn_path}", pos)
        try:
            os.ftruncate(self.fd, pos)
        except OSError as e:
            raise JournalError(f"signal journal {self.path}: cannot cut off a torn record: "
                               f"{e.strerror}") from None
        self.size = pos
        r.torn = torn

    def _failed(self, err):
        self.last_errno = err or 0
        self.failed_writes += 1
        return False

    def _append_line(self, line: bytes) -> bool:
        if self.fd < 0:
            return self._failed(errno_mod.EBADF)
        if self.tail_dirty:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError as e:
                return self._failed(e.errno)
            self.tail_dirty = False
        view = memoryview(line)
        written = 0
        try:
            while written < len(line):
                written += os.write(self.fd, view[written:])
        except OSError as e:
            # A short write (the disk filled up mid-record) left part of the
            # record: cut back so that the file stays whole lines.
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                self.tail_dirty = True
            return self._failed(e.errno)
        self.size += len(line)
        return True

    def append_boot(self, boot_ms: int) -> bool:
        return self._append_line(b"B %d\n" % boot_ms)

    def append_signal(self, payload: bytes) -> bool:
        return self._append_line(b"S " + payload.hex().encode() + b"\n")

    def append_acked(self, signal_id: str) -> bool:
        return self._append_line(b"A " + signal_id.encode() + b"\n")

    def append_given_up(self, signal_id: str) -> bool:
        return self._append_line(b"X " + signal_id.encode() + b"\n")

    def should_compact(self) -> bool:
        return self.size > self.compact_bytes

    def compact(self, boot_ms: int, pending_payloads) -> bool:
        """Rewrites the file as one B record and the pending payloads (temp
        file, locked before it takes the name, then rename)."""
        content = b"B %d\n" % boot_ms + b"".join(b"S " + p.hex().encode() + b"\n" for p in pending_payloads)
        tmp = self.path + ".tmp"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as e:
            return self._failed(e.errno)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            view, done = memoryview(content), 0
            while done < len(content):
                done += os.write(fd, view[done:])
            os.rename(tmp, self.path)
        except OSError as e:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return self._failed(e.errno)
        # The old inode is unlinked now; closing it drops its lock.
        os.close(self.fd)
        self.fd = fd
        self.size = len(content)
        self.tail_dirty = False
        if self.size * 2 > self.compact_bytes:
            self.compact_bytes = self.size * 2
        return True


class PendingSignal:
    __slots__ = ("signal_id", "payload", "expires_ns", "next_send_ns")

    def __init__(self, signal_id, payload, expires_ns, next_send_ns):
        self.signal_id, self.payload, self.expires_ns, self.next_send_ns = \
            signal_id, payload, expires_ns, next_send_ns


class SignalOutbox:
    """The unacked signals of one journal and their resend timers; journals
    every change (the C++ SignalOutbox's rules: add journals first and refuses
    when the record fails; a failed A/X record is owed and retried)."""

    DEFAULT_GIVE_UP_NS = 60_000_000_000

    def __init__(self, journal: SignalJournal, resend_ns: int, give_up_after_expiry_ns: int = DEFAULT_GIVE_UP_NS):
        self.journal = journal
        self.resend_ns = resend_ns
        self.give_up_ns = give_up_after_expiry_ns
        self.pending = {}   # signal_id -> PendingSignal (insertion order)
        self.owed = []      # [(given_up, signal_id)] settled in memory, not yet journaled

    def __len__(self):
        return len(self.pending)

    def __contains__(self, sid):
        return sid in self.pending

    def restore(self, now_ns: int):
        r = self.journal.replay
        for s, p in zip(r.pending, r.pending_payloads):
            self.pending[s["signal_id"]] = PendingSignal(s["signal_id"], p, s["expires_ts_ns"], now_ns)

    def add(self, signal_id: str, payload: bytes, expires_ns: int, now_ns: int) -> bool:
        if not self.journal.append_signal(payload):
            return False
        self.pending[signal_id] = PendingSignal(signal_id, payload, expires_ns, now_ns + self.resend_ns)
        return True

    def ack(self, signal_id: str) -> bool:
        p = self.pending.pop(signal_id, None)
        if p is None:
            return False
        if not self.journal.append_acked(signal_id):
            self.owed.append((False, signal_id))
        return True

    def retry_owed(self) -> int:
        written = 0
        for given_up, sid in self.owed:
            ok = self.journal.append_given_up(sid) if given_up else self.journal.append_acked(sid)
            if not ok:
                break
            written += 1
        del self.owed[:written]
        return len(self.owed)

    def resend_due(self, now_ns: int, send) -> int:
        sent = 0
        for p in self.pending.values():
            if p.next_send_ns > now_ns:
                continue
            if send(p):
                sent += 1
            p.next_send_ns = now_ns + self.resend_ns
        return sent

    def give_up(self, now_ns: int):
        out = []
        for sid in [sid for sid, p in self.pending.items() if now_ns - p.expires_ns >= self.give_up_ns]:
            if not self.journal.append_given_up(sid):
                self.owed.append((True, sid))
            out.append(self.pending.pop(sid))
        return out

    def maybe_compact(self, boot_ms: int) -> bool:
        return self.journal.should_compact() and self.compact(boot_ms)

    def compact(self, boot_ms: int) -> bool:
        if not self.journal.compact(boot_ms, [p.payload for p in self.pending.values()]):
            return False
        self.owed.clear()
        return True
