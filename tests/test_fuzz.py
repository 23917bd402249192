"""Property-based fuzzing of the template loader and the config parser (hypothesis).

Whatever bytes or values come in, the loader either returns a fully validated
template or raises TemplateError, and the config parser either returns a Config
or raises ConfigError: never another exception, never a half-valid result.
"""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faceunlock import config
from faceunlock.store import Template, TemplateError, decode, encode

MODEL = "f" * 64
EXAMPLES = 1500
PATH = Path("/fuzz/alice.json")


def valid_bytes() -> bytes:
    from faceunlock.store import Enrolment

    emb = np.full((3, 128), 0.12, np.float32)
    return encode(Template(user="alice", model_sha256=MODEL, enrolments=[Enrolment("default", "t", emb)]))


VALID = valid_bytes()


def load(data: bytes):
    try:
        t = decode(data, PATH, "alice", MODEL)
    except TemplateError:
        return None
    assert t.anchors().shape[1] == 128 and np.all(np.isfinite(t.anchors()))
    return t


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data):
    assert load(data) is None


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255))
def test_single_byte_corruptions(pos, value):
    data = bytearray(VALID)
    changed = data[pos] != value
    data[pos] = value
    t = load(bytes(data))
    if changed and t is not None:
        # only whitespace or an equivalent spelling of the same JSON may survive
        assert json.loads(bytes(data)) == json.loads(VALID)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.sampled_from(["format", "version", "user", "model_sha256", "dim", "enrolments", "sha256"]), json_values
)
def test_field_replacements(key, value):
    raw = json.loads(VALID)
    raw[key] = value
    assert load(json.dumps(raw).encode()) is None or raw == json.loads(VALID)


toml_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=12),
)
sections = st.sampled_from(["camera", "detector", "verify", "liveness", "audit", "enroll", "store", "bogus"])
keys = st.sampled_from(
    [
        "source",
        "timeout",
        "consecutive",
        "min_face_size",
        "dark_threshold",
        "security_level",
        "window",
        "ir",
        "x",
    ]
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.dictionaries(sections, st.dictionaries(keys, toml_scalars, max_size=4) | toml_scalars, max_size=4))
def test_config_from_random_documents(raw):
    try:
        cfg = config.from_dict(raw)
    except config.ConfigError:
        return
    assert isinstance(cfg, config.Config)
    assert 0.2 <= cfg.verify.timeout <= 120 and cfg.verify.consecutive >= 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=300))
def test_config_from_random_text(text):
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    try:
        cfg = config.from_dict(raw)
    except config.ConfigError:
        return
    assert cfg.insecure or not config.below_floor(cfg), "an unsafe config was accepted without insecure"
    for section, values in raw.items():
        if not isinstance(values, dict):
            assert getattr(cfg, section) == values
            continue
        for key, value in values.items():
            got = getattr(getattr(cfg, section), key)
            assert got == (tuple(value) if isinstance(value, list) else value), (section, key, value)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"format": ' + "1" * 5000 + "}",
        '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}",
        VALID.decode().replace('"dim": 128', '"dim": 1' + "0" * 400),
        VALID.decode().replace("0.119999997", "1e999", 1),
        VALID.decode().replace("0.119999997", "1" + "0" * 400, 1),
    ],
    ids=["deep-nesting", "huge-int", "deep-value", "huge-dim", "overflowing-float", "huge-int-value"],
)
def test_crafted_numbers_and_nesting_are_template_errors(text):
    """Numbers Python refuses to convert and nesting deeper than the recursion limit: TemplateError."""
    with pytest.raises(TemplateError):
        decode(text.encode(), PATH, "alice", MODEL)


@pytest.mark.parametrize(
    "doc,allowed",
    [
        ({"liveness": {"enabled": False}}, False),
        ({"verify": {"consecutive": 1}}, False),
        ({"liveness": {"window": 1}}, False),
        ({"insecure": True, "liveness": {"enabled": False}}, True),
        ({"pam": {"services": ["sudo", "sshd"]}}, False),
        ({"pam": {"services": ["sudo", "cockpit"]}}, False),
        ({"pam": {"services": ["sudo", 3]}}, False),
        ({"pam": {"services": "sudo"}}, False),
        ({"pam": {"services": ["sudo", "gdm-password"], "other_user": True}}, True),
        ({"insecure": "yes"}, False),
    ],
)
def test_safe_floor_and_pam_services(doc, allowed):
    if allowed:
        assert isinstance(config.from_dict(doc), config.Config)
    else:
        with pytest.raises(config.ConfigError):
            config.from_dict(doc)
