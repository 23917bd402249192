"""Enrolled templates: one JSON file per user, written atomically, validated on every load.

A template file records the format version, the fingerprint (sha256) of the
model that made its embeddings, timestamps, and one or more labelled
enrolments, each a list of embeddings. A sha256 over the canonical content
catches hand edits and bit rot. Any file that fails validation raises
TemplateError and is never overwritten implicitly: only ``clear`` removes it.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import functools
import hashlib
import json
import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceunlock.atomic import atomic_write
from faceunlock.errors import StoreError
from faceunlock.paths import STATE_DIR

FORMAT = "faceunlock-template"
VERSION = 1
DEFAULT_STORE = STATE_DIR
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_EMBEDDINGS = 1000
USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")


class TemplateError(StoreError):
    """A template file is corrupt, foreign, tampered with or unsafe; it is never used."""


class OtherModel(TemplateError):
    """A sound template made with another face model (before an upgrade): unusable until the user
    enrols again, which replaces it (the old file is kept beside it as <user>.json.previous-model)."""


class NotEnrolled(StoreError):
    """The user has no template file."""


def check_user(user: str) -> str:
    """Validate a login name so it can never escape the store directory."""
    if not isinstance(user, str) or not USER_RE.fullmatch(user):
        raise StoreError(f"invalid user name {user!r}: expected a login name such as 'alice'")
    return user


def check_label(label: str) -> str:
    """Validate an enrolment label."""
    if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
        raise StoreError(f"invalid label {label!r}: use 1-64 letters, digits or _.@+-")
    return label


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


ISO_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
LEARNED_PREFIX = "learned-"
MAX_LEARNED = 3
"""Learned looks kept per user; a newer one replaces the least recently learned or renewed."""
LEARNED_MAX_AGE_DAYS = 180.0
"""A learned look not learned or renewed (Store.renew) for this long is no longer used, and is dropped
at the next learning."""


class Anchors(np.ndarray):
    """Every enrolled embedding (N, dim), and the looks they come in: one array per enrolment. A scan
    is scored against each look on its own and keeps the best (faceunlock.fused_track), so a second
    look (glasses, another light) never blurs the first."""

    def __array_finalize__(self, obj) -> None:
        self.looks = getattr(obj, "looks", ())
        self.labels = getattr(obj, "labels", ())


def is_learned(label: str) -> bool:
    return label.startswith(LEARNED_PREFIX)


def expired(enrolment, now: float) -> bool:
    """A learned look not learned or renewed for LEARNED_MAX_AGE_DAYS (an enrolment the person made
    never expires)."""
    return is_learned(enrolment.label) and age_days(enrolment.last_used, now) > LEARNED_MAX_AGE_DAYS


def age_days(created: str, now: float) -> float:
    try:
        made = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    except (ValueError, OverflowError):
        return float("inf")
    return (now - made) / 86400


@dataclass
class Enrolment:
    """One labelled enrolment: a set of embeddings captured in one session."""

    label: str
    created: str
    embeddings: np.ndarray
    renewed: str = ""
    """When a confident match last came through this learned look (Store.renew); "" if never."""

    @property
    def last_used(self) -> str:
        """When the look was learned or last renewed (ISO times in UTC sort as text)."""
        return max(self.created, self.renewed)


@dataclass
class Template:
    """All enrolments of one user, for one model."""

    user: str
    model_sha256: str
    embedding: str = ""
    dim: int = 128
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    enrolments: list[Enrolment] = field(default_factory=list)

    def current(self, now: float | None = None) -> list[Enrolment]:
        """The enrolments in use: all but learned looks older than LEARNED_MAX_AGE_DAYS."""
        now = time.time() if now is None else now
        return [e for e in self.enrolments if not expired(e, now)]

    def anchors(self) -> np.ndarray:
        """Every enrolled embedding in use, stacked (N, dim), with its looks and their labels
        (Anchors.looks, Anchors.labels)."""
        current = self.current()
        looks = [e.embeddings.astype(np.float32) for e in current]
        if not looks:
            return np.zeros((0, self.dim), np.float32)
        anchors = np.concatenate(looks).view(Anchors)
        anchors.looks = tuple(looks)
        anchors.labels = tuple(e.label for e in current)
        return anchors

    def labels(self) -> list[str]:
        return [e.label for e in self.enrolments]

    def distance_to(self, embeddings: np.ndarray, replacing: str = "") -> float | None:
        """How far a new look is from this person: the distance from its centroid to the nearest
        centroid of the other looks (None when there is no other look to compare with)."""
        looks = [e for e in self.enrolments if e.label != replacing]
        if not looks:
            return None
        centre = np.asarray(embeddings, np.float64).mean(0)
        centres = [np.asarray(e.embeddings, np.float64).mean(0) for e in looks]
        return min(float(np.linalg.norm(centre - other)) for other in centres)


def content_digest(body: dict) -> str:
    """sha256 of the canonical JSON of a template body (everything but the digest)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode(template: Template) -> bytes:
    body = {
        "format": FORMAT,
        "version": VERSION,
        "user": template.user,
        "model_sha256": template.model_sha256,
        "embedding": template.embedding,
        "dim": template.dim,
        "created": template.created,
        "updated": template.updated,
        "enrolments": [
            {
                "label": e.label,
                "created": e.created,
                **({"renewed": e.renewed} if e.renewed else {}),
                "embeddings": [[float(f"{v:.9g}") for v in row] for row in e.embeddings.tolist()],
            }
            for e in template.enrolments
        ],
    }
    body["sha256"] = content_digest(body)
    return (json.dumps(body, indent=1, allow_nan=False) + "\n").encode()


def expect(cond: bool, path: Path, problem: str, error: type[TemplateError] = TemplateError) -> None:
    if not cond:
        raise error(f"template {path} is invalid: {problem}")


def is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def decode(data: bytes, path: Path, user: str, model_sha256: str, embedding: str = "") -> Template:
    """Parse and validate a template file's bytes; raise TemplateError naming the problem.

    Whatever the bytes, nothing but TemplateError comes out: huge numbers, deep nesting and odd
    types are all a corrupt template.
    """
    try:
        return parse(data, path, user, model_sha256, embedding)
    except TemplateError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise TemplateError(f"template {path} is invalid: {type(exc).__name__}: {exc}"[:300]) from None


def parse(data: bytes, path: Path, user: str, model_sha256: str, embedding: str) -> Template:
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=lambda c: float("nan"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TemplateError(f"template {path} is corrupt or truncated: {exc}") from None
    expect(isinstance(body, dict), path, "not a JSON object")
    expect(body.get("format") == FORMAT, path, f"not a {FORMAT} file")
    version = body.get("version")
    expect(version == VERSION, path, f"format version {version!r}, expected {VERSION}")
    stored_digest = body.pop("sha256", None)
    try:
        digest = content_digest(body)
    except (ValueError, TypeError):
        digest = None
    expect(stored_digest == digest, path, "content checksum mismatch (edited or damaged)")
    expect(body.get("user") == user, path, f"belongs to user {body.get('user')!r}, not {user!r}")
    expect(
        body.get("model_sha256") == model_sha256,
        path,
        "made with a different model (fingerprint mismatch); re-enrol with the current model",
        OtherModel,
    )
    expect(
        body.get("embedding") == embedding,
        path,
        f"made with embedding settings {body.get('embedding')!r}, not {embedding!r}; re-enrol",
        OtherModel,
    )
    dim = body.get("dim")
    expect(isinstance(dim, int) and 1 <= dim <= 4096, path, f"bad embedding size {dim!r}")
    enrolments = body.get("enrolments")
    expect(isinstance(enrolments, list) and len(enrolments) > 0, path, "no enrolments")
    total = 0
    parsed = []
    labels = set()
    for i, e in enumerate(enrolments):
        expect(isinstance(e, dict), path, f"enrolment {i} is not an object")
        label = e.get("label")
        expect(isinstance(label, str) and LABEL_RE.fullmatch(label) is not None, path, f"enrolment {i} label")
        expect(label not in labels, path, f"duplicate label {label!r}")
        labels.add(label)
        rows = e.get("embeddings")
        expect(isinstance(rows, list) and len(rows) > 0, path, f"enrolment {label!r} has no embeddings")
        expect(
            all(isinstance(r, list) and len(r) == dim for r in rows),
            path,
            f"enrolment {label!r} has embeddings that are not of length {dim}",
        )
        expect(
            all(is_finite_number(v) for r in rows for v in r),
            path,
            f"enrolment {label!r} has non-numeric or non-finite values",
        )
        arr = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(arr, axis=1)
        plausible = bool(np.all((norms > 0.05) & (norms < 100)))
        expect(plausible, path, f"enrolment {label!r} has implausible norms")
        total += len(rows)
        renewed = e.get("renewed", "")
        expect(
            renewed == "" or (isinstance(renewed, str) and ISO_TIME_RE.fullmatch(renewed) is not None),
            path,
            f"enrolment {label!r} has a renewal time that is not a UTC time",
        )
        created = str(e.get("created", ""))
        parsed.append(Enrolment(label=label, created=created, embeddings=arr, renewed=renewed))
    expect(total <= MAX_EMBEDDINGS, path, f"{total} embeddings, more than {MAX_EMBEDDINGS}")
    return Template(
        user=user,
        model_sha256=model_sha256,
        embedding=embedding,
        dim=dim,
        created=str(body.get("created", "")),
        updated=str(body.get("updated", "")),
        enrolments=parsed,
    )


LOCK_WAIT = 10.0
"""Seconds a change waits for another process's change of the store (the root CLI's and the
daemon's) before it gives up with a StoreError."""


@contextlib.contextmanager
def store_locked(root: Path, wait: float):
    """Hold an exclusive flock on the store directory itself: the root CLI and the daemon are two
    processes, and a read-modify-write in one must not write back over the other's change. Locking
    the directory needs no lock file, so no file of a second owner enters the store."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StoreError(f"cannot open the template store {root} to lock it: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"the template store {root} is busy: another process has been changing it "
                        f"for over {wait:.0f} s; nothing was changed"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def serialised(creates: bool = False):
    """One read-modify-write of templates at a time, through an flock on the store directory: across
    processes (the root CLI and the daemon) and across one process's threads (the daemon's worker
    thread enrols while its main loop learns, renews and deletes; each call opens the directory
    anew, and flock sets two open files of one process against each other), so nobody writes back
    a template it read before another's change. A method that `creates` makes a missing store
    first; without a store the others have nothing to change and run unlocked (they find no
    template). Serialised methods never call one another."""

    def wrap(method):
        @functools.wraps(method)
        def locked(self, *args, **kwargs):
            if creates:
                self.ensure_root()
            elif not self.root.is_dir():
                return method(self, *args, **kwargs)
            with store_locked(self.root, LOCK_WAIT):
                return method(self, *args, **kwargs)

        return locked

    return wrap


class TemplateStore:
    """A directory (mode 0700) of per-user template files (mode 0600)."""

    def __init__(self, root: Path | str = DEFAULT_STORE, model_sha256: str = "", embedding: str = ""):
        self.root = Path(root)
        self.model_sha256 = model_sha256
        self.embedding = embedding

    def path_for(self, user: str) -> Path:
        return self.root / f"{check_user(user)}.json"

    def owner(self) -> tuple[int, int] | None:
        """Who files in the store must belong to, when root writes them: the store directory's owner.

        The daemon runs as its own system user, which owns the state directory; root (the CLI) hands
        what it writes there to that user, and trusts that user's files. None when no hand-over is due.
        """
        if os.geteuid() != 0:
            return None
        try:
            st = self.root.stat()
        except OSError:
            return None
        return None if st.st_uid == 0 else (st.st_uid, st.st_gid)

    def ensure_root(self) -> None:
        """Create the store directory with mode 0700, or check an existing one is private."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {self.root}: {exc.strerror}") from None
        st = self.root.stat()
        if st.st_mode & 0o077:
            os.chmod(self.root, 0o700)

    def check_file_safety(self, path: Path, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise TemplateError(f"template {path} is not a regular file")
        if st.st_mode & 0o077:
            raise TemplateError(
                f"template {path} has unsafe permissions {stat.S_IMODE(st.st_mode):04o} "
                "(group/world access); expected 0600"
            )
        trusted = {os.geteuid()} | ({self.owner()[0]} if self.owner() else set())
        if st.st_uid not in trusted:
            raise TemplateError(f"template {path} is owned by uid {st.st_uid}, not by uid {os.geteuid()}")
        if st.st_size > MAX_FILE_BYTES:
            raise TemplateError(f"template {path} is too large ({st.st_size} bytes)")

    def exists(self, user: str) -> bool:
        return os.path.lexists(self.path_for(user))

    def load(self, user: str) -> Template:
        """Load and validate a user's template; NotEnrolled if absent, TemplateError if unusable."""
        path = self.path_for(user)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NotEnrolled(f"user {user!r} is not enrolled (no {path})") from None
        except OSError as exc:
            raise TemplateError(f"cannot open template {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            self.check_file_safety(path, os.fstat(fh.fileno()))
            data = fh.read(MAX_FILE_BYTES + 1)
        return decode(data, path, user, self.model_sha256, self.embedding)

    def save(self, template: Template) -> Path:
        """Write a template atomically: temporary file, fsync, rename, fsync the directory."""
        self.ensure_root()
        path = self.path_for(template.user)
        atomic_write(path, encode(template), owner=self.owner())
        return path

    def existing(self, user: str) -> Template | None:
        """The user's valid template, None if there is none; an unusable one is an error, never replaced,
        except one made with another model, which is set aside (kept as <user>.json.previous-model)
        so that enrolling again starts afresh."""
        try:
            return self.load(user)
        except NotEnrolled:
            return None
        except OtherModel:
            path = self.path_for(user)
            os.replace(path, path.with_name(f"{path.name}.previous-model"))
            return None
        except TemplateError as exc:
            raise TemplateError(
                f"{exc}; refusing to overwrite it. Inspect it, or remove it with "
                f"'faceunlock clear --user {user}' and enrol again"
            ) from None

    @serialised(creates=True)
    def add(self, user: str, label: str, embeddings: np.ndarray) -> Template:
        """Add (or replace) one labelled enrolment; refuses to touch an unusable existing file."""
        check_label(label)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0 or not np.all(np.isfinite(emb)):
            raise StoreError("refusing to store embeddings that are empty or not finite")
        template = self.existing(user) or Template(
            user=user, model_sha256=self.model_sha256, embedding=self.embedding, dim=emb.shape[1]
        )
        if emb.shape[1] != template.dim:
            raise StoreError(f"embedding size {emb.shape[1]} does not match the template's {template.dim}")
        template.enrolments = [e for e in template.enrolments if e.label != label]
        template.enrolments.append(Enrolment(label=label, created=now_iso(), embeddings=emb))
        if sum(len(e.embeddings) for e in template.enrolments) > MAX_EMBEDDINGS:
            raise StoreError(f"too many embeddings for user {user!r} (limit {MAX_EMBEDDINGS})")
        template.updated = now_iso()
        self.save(template)
        return template

    @serialised()
    def learn(self, user: str, embeddings: np.ndarray, now: float | None = None) -> str:
        """Keep a learned look (faceunlock.service.learning decides when): a new enrolment labelled
        learned-<time>; at most MAX_LEARNED of them: the expired go, then the least recently learned or
        renewed. Returns its label."""
        now = time.time() if now is None else now
        template = self.load(user)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        label = f"{LEARNED_PREFIX}{stamp}"
        learned = [e for e in template.enrolments if is_learned(e.label) and e.label != label]
        fresh = [e for e in learned if not expired(e, now)]
        keep = sorted(fresh, key=lambda e: e.last_used)[-(MAX_LEARNED - 1) :] if MAX_LEARNED > 1 else []
        template.enrolments = [e for e in template.enrolments if not is_learned(e.label) or e in keep]
        emb = np.asarray(embeddings, np.float32)
        if emb.ndim != 2 or emb.shape[1] != template.dim or len(emb) == 0 or not np.all(np.isfinite(emb)):
            raise StoreError("a learned look needs finite embeddings of the template's size")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        template.enrolments.append(Enrolment(label=label, created=created, embeddings=emb))
        template.updated = created
        self.save(template)
        return label

    @serialised()
    def renew(self, user: str, label: str, now: float | None = None) -> None:
        """A confident match came through this learned look (faceunlock.learnable.renews decides when):
        it counts as used now, for its age and for which learned look a new one replaces. Only a look
        already in use can be renewed; nothing new enters the template."""
        now = time.time() if now is None else now
        template = self.load(user)
        look = next((e for e in template.enrolments if e.label == label), None)
        if look is None or not is_learned(label):
            raise StoreError(f"user {user!r} has no learned look labelled {label!r}")
        if expired(look, now):
            raise StoreError(f"the learned look {label!r} of {user!r} has expired")
        look.renewed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.save(template)

    @serialised()
    def remove(self, user: str, label: str) -> Template | None:
        """Remove one enrolment; deletes the file when it was the last. Returns what is left."""
        template = self.load(user)
        if label not in template.labels():
            raise StoreError(f"user {user!r} has no enrolment labelled {label!r}")
        template.enrolments = [e for e in template.enrolments if e.label != label]
        if not template.enrolments:
            self.unlink(user)
            return None
        template.updated = now_iso()
        self.save(template)
        return template

    @serialised()
    def clear(self, user: str) -> bool:
        """Delete a user's template file, valid or not. Returns whether one existed."""
        return self.unlink(user)

    def unlink(self, user: str) -> bool:
        """Delete a user's template file (the caller holds the store's lock)."""
        path = self.path_for(user)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True
