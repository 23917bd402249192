"""Learning from the password (faceunlock.service.learning, faceunlock.store.learn), and looks: an
enrolment of several looks is scored against each look on its own.

The end-to-end case runs through libpam and pam_faceunlock.so against the real daemon: alice's
template is one look of person A moved away on purpose, so that A's live frames are a near miss (the
same person "on another day": under the per-pair threshold, over the attempt-level one). A failed
scan, then the password in the same PAM transaction, leaves a learned look; the next scan matches.
"""

import os
import time

import cv2
import numpy as np
import pytest
from service_harness import need, need_root
from test_service_pam import Stack, build, password_stack

from faceunlock import config
from faceunlock.decision import Decision
from faceunlock.fused_track import FusedTrack
from faceunlock.learnable import renews
from faceunlock.model import load_card
from faceunlock.runtime import open_store
from faceunlock.service.learning import LEARN_WINDOW_S, Learner, why_not
from faceunlock.store import LEARNED_MAX_AGE_DAYS, MAX_LEARNED, StoreError, TemplateError, TemplateStore

RNG = np.random.default_rng(7)


def unit(v):
    return v / np.linalg.norm(v)


def near_miss(**kw) -> Decision:
    values = {"decision": "no-match", "liveness": "pass", "distance": 0.38}
    values.update(kw)
    d = Decision(user="alice", **{k: v for k, v in values.items() if k != "frames"})
    d.embeddings = RNG.normal(size=(kw.get("frames", 6), 128)).astype(np.float32)
    return d


@pytest.mark.parametrize(
    "kw,why",
    [
        ({}, None),
        ({"liveness": "doubt"}, "liveness was doubt"),
        ({"liveness": "fail"}, "liveness was fail"),
        ({"decision": "no-face"}, "ended no-face"),
        ({"decision": "match"}, "ended match"),
        ({"distance": 0.43}, "not under the per-pair threshold"),
        ({"frames": 2}, "fewer than 3 quality frames"),
    ],
)
def test_only_a_live_near_miss_may_be_learned(kw, why):
    got = why_not(near_miss(**kw), per_pair_threshold=0.429)
    assert (got is None) if why is None else (why in got), got


def test_the_password_must_follow_from_the_same_process_and_soon():
    clock = [100.0]
    learner = Learner(clock=lambda: clock[0])
    learner.after_scan("alice", 4242, near_miss(), 0.429)
    assert learner.after_password("alice", 999) is None, "another process's password login"
    assert learner.after_password("alice", 4242) is None, "used up by the first password notice"
    learner.after_scan("alice", 4242, near_miss(), 0.429)
    clock[0] += LEARN_WINDOW_S + 1
    assert learner.after_password("alice", 4242) is None, "too late"
    learner.after_scan("alice", 4242, near_miss(), 0.429)
    learner.after_scan("alice", 4242, near_miss(liveness="doubt"), 0.429)
    assert learner.after_password("alice", 4242) is None, "a later scan replaces the candidate"
    learner.after_scan("alice", 4242, near_miss(), 0.429)
    assert learner.after_password("alice", 4242).distance == pytest.approx(0.38)


def test_learned_looks_are_bounded_in_number_and_age(tmp_path):
    store = TemplateStore(tmp_path, model_sha256="m")
    store.add("alice", "default", RNG.normal(size=(5, 128)))
    start = time.time()
    labels = [store.learn("alice", RNG.normal(size=(4, 128)), now=start + i * 60) for i in range(5)]
    kept = store.load("alice").labels()
    assert kept == ["default", *labels[-MAX_LEARNED:]], kept
    late = start + (LEARNED_MAX_AGE_DAYS + 1) * 86400
    assert [e.label for e in store.load("alice").current(now=late)] == ["default"], "expired looks go unused"
    newest = store.learn("alice", RNG.normal(size=(4, 128)), now=late)
    assert store.load("alice").labels() == ["default", newest], "and are dropped at the next learning"
    store.remove("alice", newest)
    assert store.load("alice").labels() == ["default"]


def test_each_look_is_scored_on_its_own():
    """Two looks far apart (glasses, another light): frames of either match their look; blended into
    one centroid they would match neither."""
    base = unit(RNG.normal(size=128)) * 0.6
    other = base + unit(RNG.normal(size=128)) * 0.5
    looks = [base + RNG.normal(scale=0.01, size=(5, 128)), other + RNG.normal(scale=0.01, size=(5, 128))]
    store_anchors = np.concatenate(looks).astype(np.float32)
    from faceunlock.store import Anchors

    anchors = store_anchors.view(Anchors)
    anchors.looks = tuple(x.astype(np.float32) for x in looks)
    anchors.labels = ("default", "glasses")
    frames = other + RNG.normal(scale=0.01, size=(3, 128))
    by_look, blended = (
        FusedTrack(anchors, "centroid", 3, 0.35),
        FusedTrack(store_anchors, "centroid", 3, 0.35),
    )
    for f in frames:
        score, blended_score = by_look.add(f, 1.0), blended.add(f, 1.0)
    assert score < 0.1 < 0.2 < blended_score
    assert by_look.best_look == 1, "the window came through the second look"


def confident(**kw) -> Decision:
    values = {"decision": "match", "liveness": "pass", "liveness_score": 0.95, "distance": 0.2}
    values["look"] = "learned-20261201T100000Z"
    values.update(kw)
    return Decision(user="alice", **values)


@pytest.mark.parametrize(
    "kw,renewed",
    [
        ({}, True),
        ({"look": "default"}, False),
        ({"look": ""}, False),
        ({"decision": "no-match"}, False),
        ({"distance": 0.31}, False),
        ({"distance": None}, False),
        ({"liveness_score": 0.85}, False),
        ({"liveness": "doubt"}, False),
        ({"liveness": "off", "liveness_score": None}, False),
    ],
)
def test_only_a_confident_live_match_through_a_learned_look_renews_it(kw, renewed):
    got = renews(confident(**kw), strict_scan_threshold=0.3, strict_live_threshold=0.87)
    assert got == ("learned-20261201T100000Z" if renewed else None), got


def test_a_renewed_look_stays_in_use_and_is_the_last_to_be_replaced(tmp_path):
    store = TemplateStore(tmp_path, model_sha256="m")
    store.add("alice", "default", RNG.normal(size=(5, 128)))
    unrenewed = store.path_for("alice").read_bytes()
    assert b"renewed" not in unrenewed, "a template nothing renewed keeps its old form"
    start = time.time()
    first, second = (store.learn("alice", RNG.normal(size=(4, 128)), now=start + i * 60) for i in range(2))
    with pytest.raises(StoreError, match="no learned look"):
        store.renew("alice", "default", now=start + 120)
    store.renew("alice", first, now=start + 100 * 86400)
    later = start + (LEARNED_MAX_AGE_DAYS + 10) * 86400
    assert [e.label for e in store.load("alice").current(now=later)] == ["default", first], (
        "renewal resets its age"
    )
    with pytest.raises(StoreError, match="expired"):
        store.renew("alice", second, now=later)
    third = store.learn("alice", RNG.normal(size=(4, 128)), now=start + 101 * 86400)
    fourth = store.learn("alice", RNG.normal(size=(4, 128)), now=start + 102 * 86400)
    assert store.load("alice").labels() == ["default", first, third, fourth], "the unrenewed oldest goes"
    fifth = store.learn("alice", RNG.normal(size=(4, 128)), now=start + 103 * 86400)
    assert store.load("alice").labels() == ["default", third, fourth, fifth], "then least recently used"


@pytest.mark.parametrize("bad", ["yesterday", 5, "2026-12-07 10:00:00"])
def test_a_template_with_a_bad_renewal_time_is_refused_by_name(tmp_path, bad):
    import json

    from faceunlock.store import content_digest

    store = TemplateStore(tmp_path, model_sha256="m")
    store.add("alice", "default", RNG.normal(size=(5, 128)))
    store.learn("alice", RNG.normal(size=(4, 128)))
    path = store.path_for("alice")
    body = json.loads(path.read_text())
    body.pop("sha256")
    body["enrolments"][1]["renewed"] = bad
    body["sha256"] = content_digest(body)
    path.write_text(json.dumps(body))
    with pytest.raises(TemplateError, match="renewal time"):
        store.load("alice")


def embeddings(pipeline, folder, count):
    out = []
    for path in sorted(folder.iterdir()):
        result = pipeline.analyse(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        if result.embedding is not None:
            out.append(result.embedding)
        if len(out) == count:
            break
    return np.asarray(out, np.float32)


def test_a_near_miss_then_the_password_leaves_a_look_that_then_matches(service):
    need_root()
    need("pamtester")
    build("pam_faceunlock.so")
    from faceunlock.pipeline import Pipeline

    cfg, card = config.load(service.config), load_card()
    pipeline = Pipeline(cfg, card, threads=1)
    enrol, live = (
        embeddings(pipeline, service.frames["enrol-a"], 10),
        embeddings(pipeline, service.frames["live-a"], 30),
    )
    base = live.mean(0) - enrol.mean(0)
    away = RNG.normal(size=base.shape)
    away = unit(away - away @ base / (base @ base) * base)
    target = (card.scan_threshold("balanced") + card.threshold("balanced")) / 2
    shift = np.sqrt(max(target**2 - base @ base, 0.0))
    store = open_store(cfg, card)
    saved = store.path_for("alice").read_bytes()
    store.clear("alice")
    store.add("alice", "default", enrol + shift * away)
    path = password_stack(service, "faceunlock-test")
    stack = Stack(path.name, service)
    try:
        with service.in_session("c1"):
            service.point_camera("live-a")
            code, _, out = stack.run("alice", stdin="the-password\n", ops=("authenticate", "acct_mgmt"))
            assert code == 0 and "decision=no-match" in out and "learned look user=alice" in out, out
            learned = [x for x in store.load("alice").labels() if x.startswith("learned-")]
            assert len(learned) == 1, store.load("alice").labels()
            assert service.proxy().Verify("alice", 20000, timeout=60)[0] == "match"
            renewed = {e.label: e.renewed for e in store.load("alice").enrolments}
            assert not renewed[learned[0]], "a D-Bus Verify (a test, not an unlock) renewed a look"
            code, _, out = stack.run("alice", ops=("authenticate",))
            assert code == 0 and "decision=match" in out, out
            assert f"renewed learned look user=alice label={learned[0]}" in out, out
            renewed = {e.label: e.renewed for e in store.load("alice").enrolments}
            assert renewed[learned[0]] and not renewed["default"], renewed
            service.point_camera("photos-b")
            code, _, out = stack.run("alice", stdin="the-password\n", ops=("authenticate", "acct_mgmt"))
            assert "learned look" not in out and len(store.load("alice").labels()) == 2, "another person"
    finally:
        path.unlink(missing_ok=True)
        store.clear("alice")
        store.path_for("alice").write_bytes(saved)
        os.chmod(store.path_for("alice"), 0o600)


def test_a_renewal_never_writes_back_over_an_enrolment_made_meanwhile(tmp_path, monkeypatch):
    """The daemon renews on its main loop while an enrolment may save on its worker thread: the
    renewal holds the store until it has written, so the new look is not lost."""
    import threading

    store = TemplateStore(tmp_path, model_sha256="m")
    store.add("alice", "default", RNG.normal(size=(5, 128)))
    learned = store.learn("alice", RNG.normal(size=(4, 128)))
    loaded, resume = threading.Event(), threading.Event()
    real_load = TemplateStore.load

    def load(self, user):
        template = real_load(self, user)
        if threading.current_thread().name == "renewal":
            loaded.set()
            resume.wait(10)
        return template

    monkeypatch.setattr(TemplateStore, "load", load)
    renewal = threading.Thread(target=store.renew, args=("alice", learned), name="renewal")
    renewal.start()
    assert loaded.wait(10)
    enrolment = threading.Thread(target=store.add, args=("alice", "glasses", RNG.normal(size=(5, 128))))
    enrolment.start()
    enrolment.join(0.5)
    resume.set()
    renewal.join(10)
    enrolment.join(10)
    template = real_load(store, "alice")
    assert template.labels() == ["default", learned, "glasses"], template.labels()
    assert next(e for e in template.enrolments if e.label == learned).renewed


RENEW_IN_ANOTHER_PROCESS = """
import sys, time
from pathlib import Path
from faceunlock.store import TemplateStore

real_load = TemplateStore.load

def load(self, user):
    template = real_load(self, user)
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[4]))
    return template

TemplateStore.load = load
TemplateStore(sys.argv[1], model_sha256="m").renew("alice", sys.argv[3])
"""


def test_the_cli_and_the_daemon_never_write_over_each_others_change(tmp_path):
    """The root CLI and the daemon are two processes: a renewal in one (held between its read and
    its write) and an enrolment in the other both land."""
    import subprocess
    import sys

    store = TemplateStore(tmp_path / "store", model_sha256="m")
    store.add("alice", "default", RNG.normal(size=(5, 128)))
    learned = store.learn("alice", RNG.normal(size=(4, 128)))
    read = tmp_path / "read"
    child = subprocess.Popen(
        [sys.executable, "-c", RENEW_IN_ANOTHER_PROCESS, str(store.root), str(read), learned, "1.5"]
    )
    deadline = time.monotonic() + 30
    while not read.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert read.exists(), "the other process never read the template"
    store.add("alice", "glasses", RNG.normal(size=(5, 128)))
    assert child.wait(30) == 0
    template = store.load("alice")
    assert template.labels() == ["default", learned, "glasses"], template.labels()
    assert next(e for e in template.enrolments if e.label == learned).renewed


def test_a_store_another_process_holds_too_long_is_refused_by_name(tmp_path, monkeypatch):
    from store_holder import held_by_another_process

    from faceunlock import store as store_mod

    store = TemplateStore(tmp_path / "store", model_sha256="m")
    store.add("alice", "default", RNG.normal(size=(5, 128)))
    before = store.path_for("alice").read_bytes()
    with held_by_another_process(store.root, 30):
        monkeypatch.setattr(store_mod, "LOCK_WAIT", 0.3)
        with pytest.raises(StoreError, match="is busy"):
            store.add("alice", "glasses", RNG.normal(size=(5, 128)))
        assert store.path_for("alice").read_bytes() == before, "nothing changed"
    store.add("alice", "glasses", RNG.normal(size=(5, 128)))
    assert store.load("alice").labels() == ["default", "glasses"]


def test_the_bus_names_learned_looks_as_the_store_labels_them():
    """The settings app tells a learned look by the bus contract's prefix, which must be the store's."""
    from faceunlock import store
    from faceunlock.service import names

    assert names.LEARNED_PREFIX == store.LEARNED_PREFIX
    assert store.is_learned(f"{names.LEARNED_PREFIX}20261201T100000Z") and not store.is_learned("default")
