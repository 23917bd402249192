"""One runtime assembly: from a config to the store, the camera, the warm pipeline, and one scan.

The CLI commands and the daemon build their parts here, so camera options,
store settings and the way a scan reads its camera are written once.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from faceunlock.camera import FrameSource, SourceOptions, open_source
from faceunlock.config import Config
from faceunlock.decision import Decision
from faceunlock.errors import CameraError
from faceunlock.model import ModelCard, load_card
from faceunlock.store import TemplateStore
from faceunlock.vision.backend import DEFAULT_BACKEND

SKIPPED_KINDS = ("black", "dark", "undecodable")


def open_store(cfg: Config, card: ModelCard | None = None) -> TemplateStore:
    """The template store of the config, bound to the model card's fingerprint."""
    card = card or load_card()
    return TemplateStore(cfg.store.path, model_sha256=card.sha256, embedding=card.embedding_id)


def open_camera(cfg: Config, open_timeout: float | None = None) -> FrameSource:
    """Open the configured camera; open_timeout (seconds) may shorten the configured one."""
    c = cfg.camera
    wait = c.open_timeout if open_timeout is None else min(c.open_timeout, open_timeout)
    options = SourceOptions(
        dark_threshold=c.dark_threshold, open_timeout=wait, read_timeout=c.read_timeout, exposure=c.exposure
    )
    return open_source(c.source, options)


def load_pipeline(
    cfg: Config, card: ModelCard, threads: int | None, backend: str = DEFAULT_BACKEND, one_shot: bool = False
):
    """The detector and embedder of the model card, loaded once on the inference backend.

    one_shot: for a command that judges a few frames and exits: the networks load faster and run
    a little slower (see faceunlock.vision.backend.OnnxNet).
    """
    from faceunlock.pipeline import Pipeline

    return Pipeline(cfg, card, threads=threads, backend=backend, one_shot=one_shot)


class CameraStart:
    """The camera opened, and its first frame awaited, in a thread: for a cold start, while the
    models load. The deadline bounds the opening and every read, as in verify_scan."""

    def __init__(self, cfg: Config, deadline: float):
        self.deadline = deadline
        self.source: FrameSource | None = None
        self.error: BaseException | None = None
        self._frames: Iterator[np.ndarray] | None = None
        self._first: list[np.ndarray] = []
        self._thread = threading.Thread(target=self._start, args=(cfg,), name="camera-start", daemon=True)
        self._thread.start()

    def _start(self, cfg: Config) -> None:
        try:
            self.source = open_camera(cfg, open_timeout=max(0.1, self.deadline - time.monotonic()))
            self._frames = self.source.frames(self.deadline)
            self._first = list(itertools.islice(self._frames, 1))
        except BaseException as exc:  # noqa: BLE001  (handed to the caller in started())
            self.error = exc

    def started(self) -> tuple[FrameSource, Iterator[np.ndarray]]:
        """The open source and its frames (the first one included); its error if it failed."""
        self._thread.join(max(0.0, self.deadline - time.monotonic()) + 1.0)
        if self._thread.is_alive():
            raise CameraError("the camera did not start before the deadline")
        if self.error is not None:
            raise self.error
        return self.source, itertools.chain(self._first, self._frames)

    def close(self) -> None:
        self._thread.join(max(0.0, self.deadline - time.monotonic()) + 1.0)
        if self.source is not None:
            self.source.close()


@contextlib.contextmanager
def start_camera(cfg: Config, deadline: float) -> Iterator[CameraStart]:
    """Start the camera in the background; it is closed when the block ends, whatever happens."""
    camera = CameraStart(cfg, deadline)
    try:
        yield camera
    finally:
        camera.close()


def verify_scan(
    pipeline,
    cfg: Config,
    user: str,
    anchors: np.ndarray,
    threshold: float,
    deadline: float,
    service: str,
    camera: CameraStart | None = None,
) -> Decision:
    """Open the camera (or take the one `camera` started), run one attempt under the whole policy
    until the deadline, close the camera.

    The deadline (time.monotonic()) bounds the camera's opening, every read and the scan, dark
    frames included. Camera errors propagate; the caller turns them into a non-match.
    """
    from faceunlock.attempt import attempt

    with contextlib.ExitStack() as stack:
        if camera is None:
            left = deadline - time.monotonic()
            source = stack.enter_context(open_camera(cfg, open_timeout=max(0.1, left)))
            frames = source.frames(deadline)
        else:
            source, frames = camera.started()
        decision = attempt(
            pipeline, frames, user, anchors, threshold, cfg, service, deadline=deadline, meter=source.meter
        )
        for kind in SKIPPED_KINDS:
            count = getattr(source.stats, kind)
            if count:
                decision.skipped[f"{kind}-frames"] = count
        dark = source.stats.black + source.stats.dark
        if not decision.judged and dark:
            decision.reason += f" ({dark} black or dark frames: is the lens covered, or the room too dark?)"
    return decision


def enrol_capture(
    pipeline,
    cfg: Config,
    wanted: int,
    progress: Callable[[int, int, str | None], None] | None = None,
) -> np.ndarray:
    """Capture `wanted` good embeddings from the camera within the enrolment timeout."""
    from faceunlock.enroll import capture

    deadline = time.monotonic() + cfg.enroll.timeout
    with open_camera(cfg) as source:
        return capture(
            pipeline, source.frames(deadline), wanted, cfg.verify, cfg.enroll.timeout, progress, source.meter
        )


def guided_capture(pipeline, cfg: Config, progress=None) -> tuple[np.ndarray, dict]:
    """Guided enrolment (faceunlock.guided) from the camera within the enrolment timeout.

    Returns the anchors and the report; raises EnrollError (with the report attached as .report).
    """
    from faceunlock.errors import EnrollError
    from faceunlock.guided import GuidedEnrolment

    deadline = time.monotonic() + cfg.enroll.timeout
    state = GuidedEnrolment(cfg.verify, cfg.enroll, cfg.liveness, live_card=pipeline.live_card)
    with open_camera(cfg) as source:
        for rgb in source.frames(deadline):
            result = state.analyse(pipeline, rgb)
            source.meter(rgb, result.face)
            step = state.feed(result, rgb.shape[0])
            if progress:
                progress(step, rgb, result)
            if state.finished:
                break
    try:
        anchors = state.result()
    except EnrollError as exc:
        exc.report = state.report()
        raise
    return anchors, state.report()
