"""A pipeline's thread count holds for OpenCV too, so `bench --threads 1` and the daemon's
`[daemon] threads` bound every stage, not only the networks."""

import cv2

from faceunlock.config import Config
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline


def test_the_pipeline_sets_opencvs_threads():
    before = cv2.getNumThreads()
    try:
        for threads in (1, 2, 1):
            Pipeline(Config(), load_card(), threads=threads)
            assert cv2.getNumThreads() == threads
    finally:
        cv2.setNumThreads(before)
