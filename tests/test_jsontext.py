"""The prebuilt compact encoder answers exactly as ``json.JSONEncoder`` with the same settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore.jsontext import compact_encoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("ensure_ascii", [False, True])
@given(value=json_values)
def test_same_text_as_the_standard_encoder(value, sort_keys, ensure_ascii):
    standard = json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys,
                                ensure_ascii=ensure_ascii, check_circular=False)
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
