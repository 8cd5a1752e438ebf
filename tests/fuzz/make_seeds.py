#!/usr/bin/env python3
"""Writes the seed corpus for the decoder fuzz targets: a valid message of
each type, the same with an appended field, and a few hostile shapes; the
differential target gets each type's valid, extended and truncated seeds.
Usage: make_seeds.py [message name...] (default: every message of
test_vectors.EXPECTED; naming some leaves the others' seeds as they are).
Found crashes are added beside the seeds by hand (crash-<sha1>)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "proto"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import tp_proto  # noqa: E402
os.environ.setdefault("TP_PROTO_VECTORS", "")
from test_vectors import EXPECTED  # noqa: E402

HOSTILE = {
    "array32_bomb": b"\xdd\xff\xff\xff\xff",
    "map32_bomb": b"\xdf\xff\xff\xff\xff",
    "str32_bomb": b"\xdb\xff\xff\xff\xff",
    "bin32_bomb": b"\xc6\xff\xff\xff\xff",
    "deep_nesting": b"\x91" * 100 + b"\x01",
    "empty": b"",
    "never_used_byte": b"\xc1",
    "unknown_version": b"\x92\x01\x63",
}

here = os.path.dirname(os.path.abspath(__file__))
wanted = sys.argv[1:] or list(EXPECTED)
unknown = [n for n in wanted if n not in EXPECTED]
if unknown:
    sys.exit(f"no vector for {', '.join(unknown)} in tests/proto/test_vectors.py")
differential = os.path.join(here, "corpus", "fuzz_decode_differential")
for name in wanted:
    fields = EXPECTED[name]
    folder = os.path.join(here, "corpus", f"fuzz_decode_{name}")
    os.makedirs(folder, exist_ok=True)
    seeds = {"valid": tp_proto.encode(name, fields),
             "valid_extra_field": tp_proto.encode(name, fields, extra=[{"k": [1, 2]}]),
             "truncated": tp_proto.encode(name, fields)[:-3], **HOSTILE}
    for seed, data in seeds.items():
        with open(os.path.join(folder, f"seed-{seed}"), "wb") as f:
            f.write(data)
        if seed in ("valid", "valid_extra_field", "truncated"):
            with open(os.path.join(differential, f"fuzz_decode_{name}-seed-{seed}"), "wb") as f:
                f.write(data)
