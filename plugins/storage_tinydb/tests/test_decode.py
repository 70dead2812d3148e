"""Stored documents decode to exactly what ``json.loads`` gives, orjson or not."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb import files as tiny_files
from crmcore_storage_tinydb.files import decode_doc, encode_json
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.jsontext import ascii_document

# JSON values as stores keep them: finite numbers, any text (lone surrogates included: the
# standard library writes and reads them), integers of any width.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Equal with the same types at every depth (1 is not 1.0, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)  # type: ignore[attr-defined]
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)  # type: ignore[arg-type]
    return a == b


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), _values, max_size=6))
def test_decode_doc_gives_what_json_gives(doc: dict) -> None:
    for text in (encode_json(doc), ascii_document(doc)):
        assert _same(decode_doc(text), json.loads(text))


@pytest.mark.parametrize(
    "number",
    [
        2**64,  # the first integer past unsigned 64 bits: orjson would give 1.8446744073709552e19
        2**64 - 1,
        2**63,
        -(2**63) - 1,
        -(2**63),
        10**30,
        -(10**25),
        123456789012345678901234567890,
    ],
)
def test_wide_integers_stay_integers(number: int) -> None:
    text = encode_json({"id": "x", "n": number, "list": [1, number], "nested": {"n": number}})
    doc = decode_doc(text)
    assert doc["n"] == number and type(doc["n"]) is int
    assert doc["list"][1] == number and type(doc["list"][1]) is int
    assert doc["nested"]["n"] == number


def test_wide_integer_check_reads_every_wide_integer() -> None:
    """The test for wide integers catches every integer orjson reads as a float: below 19
    digits orjson is exact, so there is nothing to catch."""
    import orjson

    assert type(orjson.loads(str(10**18 - 1))) is int  # 18 digits
    assert type(orjson.loads(str(-(10**18) + 1))) is int
    assert len(tiny_files.WIDE) == 19
    assert type(orjson.loads(str(2**64))) is float  # why the check exists


def test_text_orjson_refuses_goes_through_the_standard_library() -> None:
    lone = '{"id":"x","s":"\\ud800"}'  # a lone surrogate: json reads it, orjson does not
    assert decode_doc(lone) == {"id": "x", "s": "\ud800"}
    assert decode_doc('{"id":"x","f":1e400}')["f"] == math.inf  # what json has always given
    assert decode_doc('{"id":"x"} trailing') == {"id": "x"}  # the scanner stops at the end
    with pytest.raises(ValueError, match="not JSON"):
        decode_doc("garbage")


def test_a_store_keeps_wide_integers_through_the_journal_and_a_snapshot(tmp_path: Path) -> None:
    wide = 2**64 + 5
    store = TinyStore(tmp_path / "db")
    coll = store.collection("things")
    coll.insert({"id": "a", "n": wide, "label": "wide"})
    assert coll.get("a")["n"] == wide
    assert coll.find({"label": "wide"})[0]["n"] == wide
    store.close()
    store = TinyStore(tmp_path / "db")  # read back from the journal
    assert store.collection("things").get("a")["n"] == wide
    store.compact()
    store.close()
    store = TinyStore(tmp_path / "db")  # and from the snapshot
    doc = store.collection("things").get("a")
    store.close()
    assert doc["n"] == wide and type(doc["n"]) is int
