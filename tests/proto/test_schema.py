"""The wire schema is written once, in C++ (proto/include/proto/messages.hpp,
each message's wire_fields()); `proto_vectors schema` prints it as JSON. This
holds the two other descriptions to it: scripts/tp_proto.py's message table
(MESSAGES, OPTIONAL, FLOAT_FIELDS, the enums) and docs/PROTOCOL.md's field
tables and enum table."""

import json
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import tp_proto  # noqa: E402

VECTORS = os.environ["TP_PROTO_VECTORS"]

# What a reader without an optional field takes for it (the member's T{}).
DEFAULTS = {"str": "", "bin": b"", "f64": 0.0, "i64": 0, "u64": 0, "u32": 0, "bool": False}


def default_of(wire_type):
    # An enum ("u8 OrderType") defaults to 0, the value an older sender meant.
    return 0 if wire_type.startswith("u8 ") else DEFAULTS[wire_type]


def cpp_schema():
    out = subprocess.run([VECTORS, "schema"], check=True, capture_output=True, text=True,
                         timeout=30)
    return json.loads(out.stdout)


def doc_tables(path):
    """{type number: (heading name, [(#, field, type, meaning)])} from the
    '### N Name' sections of '## Messages'."""
    tables = {}
    current = None
    in_messages = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("## "):
                in_messages = line.strip() == "## Messages"
                current = None
                continue
            if not in_messages:
                continue
            m = re.match(r"^### (\d+) (\w+)", line)
            if m:
                current = []
                tables[int(m.group(1))] = (m.group(2), current)
                continue
            if line.startswith("### "):
                current = None
                continue
            if current is None or not line.startswith("|"):
                continue
            # The meaning column may hold a '|' of its own: split only the first three.
            cells = [c.strip() for c in line.split("|", 5)[1:5]]
            if not cells[0].isdigit():
                continue  # header and separator rows
            current.append((int(cells[0]), cells[1], cells[2], cells[3]))
    return tables


def doc_enums(path):
    """{first word of the enum cell: values cell} from the '### Enums' table."""
    rows = {}
    in_enums = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                in_enums = line.strip() == "### Enums"
                continue
            if in_enums and line.startswith("|"):
                cells = [c.strip() for c in line.split("|")[1:3]]
                rows[cells[0].split()[0]] = cells[1]
    return rows


def schema_enums(schema):
    """{enum name: {value: NAME}} from the schema's enum fields."""
    out = {}
    for m in schema["messages"]:
        for f in m["fields"]:
            if "values" in f:
                out[f["type"].split()[1]] = {int(v): n for v, n in f["values"].items()}
    return out


class PythonTableFollowsSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema = cpp_schema()
        cls.messages = {m["type"]: m for m in cls.schema["messages"]}

    def test_version(self):
        self.assertEqual(tp_proto.SCHEMA_VERSION, self.schema["schema_version"])

    def test_types_and_names(self):
        self.assertEqual(sorted(tp_proto.MESSAGES), sorted(self.messages))
        for tid, m in self.messages.items():
            self.assertEqual(tp_proto.MESSAGES[tid][0], m["name"], tid)

    def test_required_fields_in_wire_order(self):
        for tid, m in self.messages.items():
            required = [f["name"] for f in m["fields"] if not f["optional"]]
            self.assertEqual(tp_proto.MESSAGES[tid][1], required, m["name"])

    def test_optional_fields_and_defaults(self):
        expected = {}
        for m in self.messages.values():
            opt = [(f["name"], default_of(f["type"])) for f in m["fields"] if f["optional"]]
            if opt:
                expected[m["name"]] = opt
            # Optional fields are appended: none before a required one.
            flags = [f["optional"] for f in m["fields"]]
            self.assertEqual(flags, sorted(flags), m["name"])
        self.assertEqual(tp_proto.OPTIONAL, expected)

    def test_float_fields(self):
        # tp_proto knows float fields by name, so a name must be f64 in every
        # message that has it, or in none.
        f64 = set()
        other = set()
        for m in self.messages.values():
            for f in m["fields"]:
                (f64 if f["type"] == "f64" else other).add(f["name"])
        self.assertEqual(f64 & other, set())
        self.assertEqual(tp_proto.FLOAT_FIELDS, f64)

    def test_enum_fields_take_the_schema_values(self):
        for m in self.schema["messages"]:
            for f in m["fields"]:
                want = {int(v): n for v, n in f.get("values", {}).items()} or None
                self.assertEqual(tp_proto.enum_values(m["name"], f["name"]), want,
                                 f"{m['name']}.{f['name']}")


class ProtocolPageFollowsSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema = cpp_schema()
        cls.tables = doc_tables(os.path.join(ROOT, "docs", "PROTOCOL.md"))

    def test_one_section_per_message(self):
        self.assertEqual(sorted(self.tables), sorted(m["type"] for m in self.schema["messages"]))

    def test_enum_table(self):
        rows = doc_enums(os.path.join(ROOT, "docs", "PROTOCOL.md"))
        types = {m["type"]: m["name"] for m in self.schema["messages"]}
        self.assertEqual({int(v): n for v, n in re.findall(r"(\d+) (\w+)", rows["type"])}, types)
        for enum, values in schema_enums(self.schema).items():
            self.assertIn(enum, rows)
            got = {int(v): n for v, n in re.findall(r"\b(\d+) ([A-Z_]+)\b", rows[enum])}
            self.assertEqual(got, values, enum)

    def test_field_tables(self):
        for m in self.schema["messages"]:
            heading, rows = self.tables[m["type"]]
            got = [(n, name, typ) for n, name, typ, _ in rows]
            want = [(i + 1, f["name"], f["type"]) for i, f in enumerate(m["fields"])]
            self.assertEqual(got, want, f"### {m['type']} {heading}")
            for (_, name, _, meaning), f in zip(rows, m["fields"]):
                if f["optional"]:
                    self.assertTrue(meaning.startswith("optional"),
                                    f"{heading}.{name}: an optional field's meaning says so")


if __name__ == "__main__":
    unittest.main()
