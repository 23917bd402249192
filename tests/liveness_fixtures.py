"""Session-wide fixtures for the liveness tests: one warm pipeline, and each clip analysed once."""

import dataclasses
import itertools

import pytest
import torch

from faceunlock.config import Config
from faceunlock.evaluation import liveness as ev
from faceunlock.evaluation.shared_data import made_clips, recorded_clips
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline
from faceunlock.verify import fusion_of


@pytest.fixture(scope="session")
def pad_cfg():
    return Config()


@pytest.fixture(scope="session")
def pad_pipeline(pad_cfg):
    torch.set_num_threads(1)
    return Pipeline(pad_cfg, load_card(), threads=1)


@pytest.fixture(scope="session")
def match_threshold(pad_cfg):
    """What a scan's fused windows are compared with at the config's level."""
    return load_card().scan_threshold(pad_cfg.verify.security_level)


@pytest.fixture(scope="session")
def match_fusion():
    """The recognition card's fusion rule and window, as a scan uses them."""
    return fusion_of(load_card())


@pytest.fixture(scope="session")
def shared_clips(data_dir):
    """Every built-in clip by name: recorded and MADE (made ones are built only when analysed)."""
    return {c.name: c for c in recorded_clips(data_dir) + made_clips(data_dir, prints=0)}


TEST_FRAMES = 150
"""The tests analyse at most the first 150 frames (5 s, one scan timeout) of a clip, to stay
within CI's time; `faceunlock eval liveness` measures whole clips."""


@pytest.fixture(scope="session")
def analysed_clip(pad_pipeline, pad_cfg, shared_clips):
    """analysed_clip(name): the clip's first TEST_FRAMES frames, enrolled and analysed frame by
    frame, once per session."""
    done = {}

    def get(name):
        if name not in done:
            clip = shared_clips[name]
            first = dataclasses.replace(clip, frames=lambda: itertools.islice(clip.frames(), TEST_FRAMES))
            done[name] = ev.prepare(pad_pipeline, first, pad_cfg)
        return done[name]

    return get
