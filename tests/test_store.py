"""The template store: permissions, atomic writes, and validation of every kind of bad file."""

import json
import os
import stat

import numpy as np
import pytest
from missing import need_root

from faceunlock.store import NotEnrolled, OtherModel, StoreError, TemplateError, TemplateStore

MODEL = "a" * 64


def embeddings(n=4, seed=0):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, 128)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True) * 1.4


@pytest.fixture
def store(tmp_path):
    return TemplateStore(tmp_path / "store", model_sha256=MODEL)


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o777])
def test_an_existing_store_folder_others_can_enter_is_made_private(store, mode):
    """A store folder made by hand (or by an old version) with group or other access is repaired to
    0700 before a template is written into it."""
    store.root.mkdir()
    store.root.chmod(mode)
    store.add("alice", "default", embeddings())
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


def test_round_trip_modes_and_fields(store):
    e = embeddings()
    store.add("alice", "default", e)
    store.add("alice", "glasses", embeddings(3, 1))
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    path = store.path_for("alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    t = store.load("alice")
    assert t.labels() == ["default", "glasses"]
    np.testing.assert_allclose(t.enrolments[0].embeddings, e, rtol=0, atol=1e-7)
    raw = json.loads(path.read_text())
    for key in ("format", "version", "model_sha256", "created", "updated", "enrolments", "sha256"):
        assert key in raw
    assert t.anchors().shape == (7, 128)
    assert [p.name for p in store.root.iterdir()] == ["alice.json"], "no temporary files left behind"


def test_remove_and_clear(store):
    store.add("bob", "a", embeddings())
    store.add("bob", "b", embeddings(2, 3))
    left = store.remove("bob", "a")
    assert left.labels() == ["b"]
    with pytest.raises(StoreError, match="no enrolment labelled"):
        store.remove("bob", "zzz")
    assert store.remove("bob", "b") is None
    assert not store.exists("bob")
    assert store.clear("bob") is False


def test_not_enrolled(store):
    with pytest.raises(NotEnrolled, match="not enrolled"):
        store.load("nobody")


@pytest.mark.parametrize("user", ["../etc/passwd", "a/b", "", ".hidden", "x" * 40, "name\n"])
def test_user_names_cannot_escape(store, user):
    with pytest.raises(StoreError, match="invalid user name"):
        store.path_for(user)


def corrupt_truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def corrupt_flip_value(data: bytes) -> bytes:
    raw = json.loads(data)
    raw["enrolments"][0]["embeddings"][0][0] += 0.25
    return json.dumps(raw).encode()


def corrupt_nan(data: bytes) -> bytes:
    raw = json.loads(data)
    raw["enrolments"][0]["embeddings"][0][5] = float("nan")
    return json.dumps(raw).encode()


def corrupt_shape(data: bytes) -> bytes:
    raw = json.loads(data)
    raw["enrolments"][0]["embeddings"][1] = raw["enrolments"][0]["embeddings"][1][:100]
    return json.dumps(raw).encode()


def corrupt_version(data: bytes) -> bytes:
    raw = json.loads(data)
    raw["version"] = 99
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "damage,message",
    [
        (corrupt_truncate, "corrupt or truncated"),
        (lambda d: b"", "corrupt or truncated"),
        (lambda d: b"\xff\xfe garbage", "corrupt or truncated"),
        (corrupt_flip_value, "checksum mismatch"),
        (corrupt_nan, "checksum mismatch|non-finite"),
        (corrupt_shape, "checksum mismatch|not of length"),
        (corrupt_version, "format version 99"),
    ],
)
def test_bad_files_are_refused_and_never_overwritten(store, damage, message):
    store.add("carol", "default", embeddings())
    path = store.path_for("carol")
    bad = damage(path.read_bytes())
    path.write_bytes(bad)
    with pytest.raises(TemplateError, match=message):
        store.load("carol")
    with pytest.raises(TemplateError, match="refusing to overwrite"):
        store.add("carol", "again", embeddings(2, 9))
    assert path.read_bytes() == bad, "a damaged template must not be silently replaced"


def test_rehashed_edit_is_still_validated(store):
    """Even with a recomputed checksum, non-finite or misshapen values are refused."""
    from faceunlock.store import content_digest

    store.add("dave", "default", embeddings())
    path = store.path_for("dave")
    raw = json.loads(path.read_text())
    raw["enrolments"][0]["embeddings"][0] = [0.0] * 128
    raw.pop("sha256")
    raw["sha256"] = content_digest(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(TemplateError, match="implausible norms"):
        store.load("dave")


def test_foreign_model_is_refused(store, tmp_path):
    store.add("erin", "default", embeddings())
    other = TemplateStore(store.root, model_sha256="b" * 64)
    with pytest.raises(TemplateError, match="different model"):
        other.load("erin")


def test_enrolling_after_an_upgrade_replaces_the_other_models_template_and_keeps_it_aside(store):
    store.add("erin", "default", embeddings())
    old = store.path_for("erin").read_bytes()
    upgraded = TemplateStore(store.root, model_sha256="b" * 64)
    with pytest.raises(OtherModel):
        upgraded.load("erin")
    upgraded.add("erin", "default", embeddings(seed=1))
    assert upgraded.load("erin").labels() == ["default"]
    assert (store.root / "erin.json.previous-model").read_bytes() == old, "the old template is kept"
    damaged = store.path_for("erin")
    damaged.write_bytes(damaged.read_bytes()[:-40])
    with pytest.raises(TemplateError, match="refusing to overwrite"):
        upgraded.add("erin", "default", embeddings())
    assert (store.root / "erin.json.previous-model").read_bytes() == old, "a damaged file is never set aside"


def test_other_embedding_settings_are_refused(store):
    store.add("erin", "default", embeddings())
    other = TemplateStore(store.root, model_sha256=MODEL, embedding="dlib-resnet-v1;flip=1;align=x")
    with pytest.raises(TemplateError, match="made with embedding settings ''"):
        other.load("erin")


def test_template_of_another_user_is_refused(store):
    store.add("frank", "default", embeddings())
    os.rename(store.path_for("frank"), store.path_for("grace"))
    with pytest.raises(TemplateError, match="belongs to user 'frank'"):
        store.load("grace")


def test_world_readable_template_is_refused(store):
    store.add("heidi", "default", embeddings())
    os.chmod(store.path_for("heidi"), 0o644)
    with pytest.raises(TemplateError, match="unsafe permissions 0644"):
        store.load("heidi")


def test_template_owned_by_another_user_is_refused(store):
    need_root("changing a file's owner needs root")
    store.add("ivan", "default", embeddings())
    os.chown(store.path_for("ivan"), 65534, 65534)
    with pytest.raises(TemplateError, match="owned by uid 65534"):
        store.load("ivan")


def test_symlinked_template_is_refused(store, tmp_path):
    store.add("judy", "default", embeddings())
    target = tmp_path / "elsewhere.json"
    os.rename(store.path_for("judy"), target)
    os.symlink(target, store.path_for("judy"))
    with pytest.raises(TemplateError, match="cannot open template"):
        store.load("judy")


def test_refuses_nan_embeddings_on_write(store):
    e = embeddings()
    e[1, 3] = np.nan
    with pytest.raises(StoreError, match="not finite"):
        store.add("mallory", "default", e)
    assert not store.exists("mallory")


def test_failed_write_keeps_the_old_file(store, monkeypatch):
    store.add("oscar", "default", embeddings())
    before = store.path_for("oscar").read_bytes()

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        store.add("oscar", "second", embeddings(2, 5))
    assert store.path_for("oscar").read_bytes() == before
    assert sorted(p.name for p in store.root.iterdir()) == ["oscar.json"]
