"""The prebuilt compact encoder answers exactly as ``json.JSONEncoder`` with the same settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore.jsontext import ascii_document, ascii_json, canonical, compact_encoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("ensure_ascii", [False, True])
@given(value=json_values)
def test_same_text_as_the_standard_encoder(value, sort_keys, ensure_ascii):
    standard = json.JSONEncoder(
        separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=ensure_ascii, check_circular=False
    )
    encode = compact_encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    assert encode(value) == standard.encode(value)


def test_what_json_cannot_hold_is_a_type_error_naming_the_type():
    with pytest.raises(TypeError, match="datetime is not JSON serializable"):
        compact_encoder()({"when": datetime(2026, 1, 1, tzinfo=UTC)})


@pytest.mark.skipif(json.encoder.c_make_encoder is None, reason="no C accelerator")
@pytest.mark.parametrize("sort_keys", [False, True])
def test_on_cpython_the_prebuilt_c_encoder_is_the_one_used(sort_keys):
    encode = compact_encoder(sort_keys=sort_keys)
    assert getattr(encode, "__self__", None) is None  # not the fallback JSONEncoder.encode


# -- canonical (the audit trail's hash input) and ascii_json ---------------------------------

finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(st.characters(exclude_categories=["Cs"]))
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e-05, -2.5e-07, 0.00001, 1e-4, 1e16, 1.5e300, 2**63, 2**64, -(2**70)]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=4)
    ),
    max_leaves=20,
)
_standard_canonical = json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, ensure_ascii=False, check_circular=False
).encode


@given(value=finite_json)
def test_canonical_is_byte_for_byte_the_standard_sorted_encoding(value):
    assert canonical(value) == _standard_canonical(value).encode()


def test_canonical_hands_what_orjson_writes_differently_to_json():
    # orjson writes these as 0.00001 / -2.5e-7 and cannot hold 2**64 or a str subclass as such
    value = {"b": [1e-05, -2.5e-07], "a": 2**64 + 1, "c": type("Text", (str,), {})("x")}
    assert canonical(value) == b'{"a":18446744073709551617,"b":[1e-05,-2.5e-07],"c":"x"}'
    with pytest.raises(TypeError, match="datetime"):
        canonical({"at": datetime(2026, 1, 5, tzinfo=UTC)})


@given(text=st.text(st.characters(exclude_categories=["Cs"])))
def test_ascii_json_escapes_as_the_standard_encoder_does(text):
    document = {"k": text, text: [text]}
    plain = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    escaped = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    assert ascii_json(plain) == escaped.replace("\\u007f", "\x7f")  # ASCII stays as it is


def test_ascii_json_spells_characters_beyond_the_bmp_as_surrogate_pairs():
    assert ascii_json('{"n":"张😀é"}') == '{"n":"\\u5f20\\ud83d\\ude00\\u00e9"}'
    assert json.loads(ascii_json('{"n":"张😀é"}')) == {"n": "张😀é"}


@given(value=finite_json)
def test_ascii_document_is_the_same_document_in_ascii(value):
    text = ascii_document({"id": "x", "v": value})
    assert text.isascii() and text.startswith('{"id":"x","v":')
    assert json.loads(text) == {"id": "x", "v": value}


def test_ascii_document_refuses_what_json_cannot_hold_as_json_does():
    with pytest.raises(TypeError, match="datetime"):
        ascii_document({"id": "x", "at": datetime(2026, 1, 5, tzinfo=UTC)})
    assert (
        ascii_document({"id": "x", "n": 2**70, "t": "é"})
        == '{"id":"x","n":1180591620717411303424,"t":"\\u00e9"}'
    )
