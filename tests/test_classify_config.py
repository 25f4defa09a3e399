"""``[[client-classes]]`` in the config: the model, compiled tests, and Kea's load-time
refusals (bad expression with class and column, unknown or later member(), duplicate names,
option-def codes) as one problem line each."""

from __future__ import annotations

import json

import pytest

from fastdhcp._classify import ClassSet
from fastdhcp._codec import parse as parse_packet
from fastdhcp.bytecode import EvalResult
from fastdhcp.config import Config, loads, loads_json
from fastdhcp.errors import ConfigError
from tests.classify_packets import REFERENCE

HEAD = '[lease-database]\npath = "/tmp/fastdhcp-classify-test"\n'


def load(classes: str) -> Config:
    return loads(HEAD + classes)


def problems(classes: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load(classes)
    return e.value.problems


def test_classes_load_with_every_key() -> None:
    c = load('''
[[client-classes]]
name = "STB"
test = "substring(option[60].text,0,6) == 'docsis'"
option-data = { domain-name-servers = ["198.18.10.53"] }
next-server = "198.18.20.69"
server-hostname = "tftp1"
boot-file-name = "cm-100M.cfg"
valid-lifetime = 600
min-valid-lifetime = 300
max-valid-lifetime = 900
comment = "set-top boxes"
user-context = { owner = "iptv" }
[[client-classes]]
name = "VOICE"
test = "member('STB') and member('UNKNOWN')"
only-in-additional-list = true
option-def = [{ name = "acs", code = 43, type = "binary" }]
[[client-classes]]
name = "VENDOR_CLASS_docsis3.0"
''')
    stb, voice, vc = c.client_classes
    assert (stb.name, stb.id, stb.fixed.next_server, stb.fixed.server_hostname,
            stb.fixed.boot_file_name) == (
        "STB", 4, 0xC6121445, "tftp1", "cm-100M.cfg")
    assert (stb.valid_lifetime, stb.min_valid_lifetime, stb.max_valid_lifetime) == (600, 300, 900)
    assert stb.options == {6: bytes([198, 18, 10, 53])}
    assert stb.user_context == {"owner": "iptv"} and stb.comment == "set-top boxes"
    assert not stb.depends_on_known and not stb.only_if_required
    assert voice.depends_on_known and voice.only_if_required
    assert voice.option_defs[0].code == 43
    assert vc.test is None and vc.program is None
    assert c.class_ids == {"ALL": 0, "KNOWN": 1, "UNKNOWN": 2, "BOOTP": 3, "STB": 4, "VOICE": 5,
                           "VENDOR_CLASS_docsis3.0": 6}
    msg = parse_packet(REFERENCE)
    assert stb.program is not None and stb.program.eval(msg) == EvalResult.TRUE
    classes = ClassSet(len(c.class_ids))
    assert voice.program is not None
    assert voice.program.eval(msg, classes=classes) == EvalResult.FALSE
    classes.add(c.class_ids["STB"])
    classes.add(c.class_ids["UNKNOWN"])
    assert voice.program.eval(msg, classes=classes) == EvalResult.TRUE


def test_depends_on_known_is_transitive() -> None:
    c = load('''
[[client-classes]]
name = "A"
test = "member('KNOWN')"
[[client-classes]]
name = "B"
test = "not member('A')"
[[client-classes]]
name = "C"
test = "member('ALL')"
''')
    assert [k.depends_on_known for k in c.client_classes] == [True, True, False]


def test_json_twin_loads_the_same_classes() -> None:
    doc = {"lease-database": {"path": "/tmp/fastdhcp-classify-test"},
           "client-classes": [{"name": "P", "test": "option[93].hex == 0x0007",
                               "only-if-required": True}]}
    c = loads_json(json.dumps(doc))
    assert c.client_classes[0].only_if_required
    assert c.client_classes[0].program is not None


def test_a_bad_expression_names_the_class_and_the_column() -> None:
    lines = problems('[[client-classes]]\nname = "STB"\ntest = "option[60].text"\n')
    assert len(lines) == 1
    assert lines[0].startswith("client-classes[0].test: value 'option[60].text': class 'STB': "
                               "column 16: syntax error")


def test_member_of_an_unknown_or_later_class_is_refused_as_kea_does() -> None:
    lines = problems('''
[[client-classes]]
name = "A"
test = "member('NOPE')"
[[client-classes]]
name = "B"
test = "member('C') or member('DROP')"
[[client-classes]]
name = "C"
test = "member('A') or member('VENDOR_CLASS_x') or member('HA_server1')"
''')
    assert lines == [
        "client-classes[0].test: value \"member('NOPE')\": class 'A': column 8: "
        "Not defined client class 'NOPE'",
        "client-classes[1].test: value \"member('C') or member('DROP')\": class 'B': column 8: "
        "Not defined client class 'C' (defined later: a test may only use classes defined "
        "before it)",
        "client-classes[1].test: value \"member('C') or member('DROP')\": class 'B': "
        "column 23: Not defined client class 'DROP'",
    ]


def test_a_class_may_use_an_only_if_required_class_and_itself_not() -> None:
    load('''
[[client-classes]]
name = "R"
test = "option[60].exists"
only-if-required = true
[[client-classes]]
name = "N"
test = "member('R')"
''')
    assert any("Not defined client class 'S'" in x for x in
               problems('[[client-classes]]\nname = "S"\ntest = "member(\'S\')"\n'))


@pytest.mark.parametrize(("body", "needle"), [
    ('name = "A"\n[[client-classes]]\nname = "A"', "client-classes[1].name: value 'A': "
                                                   "defined twice"),
    ('name = "ALL"', "is a built-in class"),
    ('test = "member(\'ALL\')"', "client-classes[0]: a class needs a name"),
    ('name = "A"\noption-def = [{ name = "x", code = 60, type = "string" }]',
     "Not allowed option definition for code '60'"),
    ('name = "A"\nnext-server = "nowhere"', "client-classes[0].next-server"),
    ('name = "A"\nserver-hostname = "' + "x" * 65 + '"', "64-byte header field"),
    ('name = "A"\nvalid-lifetime = 100\nmin-valid-lifetime = 200',
     "needs min-valid-lifetime <= valid-lifetime"),
    ('name = "A"\nonly-if-required = "yes"', "must be true or false"),
    ('name = "A"\ntets = "member(\'ALL\')"', "did you mean 'test'?"),
    ('name = "A"\noption-data = { no-such-option = 1 }', "client-classes[0].option-data"),
])
def test_class_problems(body: str, needle: str) -> None:
    lines = problems("[[client-classes]]\n" + body + "\n")
    assert any(needle in x for x in lines), lines


def test_client_classes_must_be_an_array_of_tables() -> None:
    assert any("write [[client-classes]]" in x
               for x in problems('[client-classes]\nname = "A"\n'))


def test_docs_document_every_class_key() -> None:
    from pathlib import Path

    from fastdhcp.config import CLIENT_CLASS_KEYS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "classification.md").read_text()
    for key in CLIENT_CLASS_KEYS:
        assert f"| `{key}` |" in doc, key


def test_every_class_field_has_a_docstring() -> None:
    import ast
    import inspect

    from fastdhcp import config as config_mod

    tree = ast.parse(inspect.getsource(config_mod))
    seen = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "ClientClass":
            seen.add(node.name)
            for i, stmt in enumerate(node.body):
                if isinstance(stmt, ast.AnnAssign):
                    nxt = node.body[i + 1] if i + 1 < len(node.body) else None
                    assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), \
                        (node.name, ast.unparse(stmt.target))
    assert seen == {"ClientClass"}


GUARDED = """
[[client-classes]]
name = "STB"
test = "option[60].exists"
[[subnet4]]
id = 1
subnet = "198.19.80.0/24"
client-class = "STB"
require-client-classes = ["VOICE"]
pools = [{ pool = "198.19.80.10 - 198.19.80.19", client-class = "STB" },
         { pool = "198.19.80.20 - 198.19.80.29", client-classes = ["A", "B"], EVAL = ["R"] },
         "198.19.80.100 - 198.19.80.199"]
[[subnet4.reservations]]
hw-address = "02:01:00:00:07:01"
ip-address = "198.19.80.5"
client-classes = ["STB", "GOLD"]
[[subnet4]]
id = 2
subnet = "198.19.81.0/24"
client-classes = ["NOWHERE"]
"""


def test_guards_parse_in_kea_2_and_kea_3_forms() -> None:
    c = load(GUARDED.replace("EVAL", "evaluate-additional-classes"))
    s1, s2 = c.subnets
    assert (s1.client_classes, s1.required_classes) == (("STB",), ("VOICE",))
    assert [(pl.client_classes, pl.required_classes) for pl in s1.pools] == [
        (("STB",), ()), (("A", "B"), ("R",)), ((), ())]
    assert s1.reservations[0].client_classes == ("STB", "GOLD")
    assert s2.client_classes == ("NOWHERE",)   # an undefined name is accepted, as Kea does


def test_guard_problems() -> None:
    base = '[[subnet4]]\nid = 1\nsubnet = "198.19.80.0/24"\n'
    assert any("not both" in x for x in problems(
        base + 'client-class = "A"\nclient-classes = ["B"]\n'))
    assert any("subnet4[0].client-classes" in x and "list of class names" in x
               for x in problems(base + 'client-classes = "B"\n'))
    assert any("subnet4[0].pools[0].client-class" in x for x in problems(
        base + 'pools = [{ pool = "198.19.80.10 - 198.19.80.19", client-class = 5 }]\n'))
