"""The preview stream's throttle: frames closer than 1/MAX_FPS are dropped, except one that must be seen
(a frame that completes an enrolment pose), so the caller's last picture is never out of date."""

import numpy as np

from faceunlock.preview import Frame
from faceunlock.service.streams import MAX_FPS, Stream


class Recorder:
    def __init__(self):
        self.sent = []

    def emit_signal(self, destination, path, interface, name, args):
        self.sent.append((name, args.unpack()[1]))


def test_throttled_frames_are_dropped_but_a_forced_one_is_sent():
    now = [0.0]
    con = Recorder()
    stream = Stream(con, ":1.5", clock=lambda: now[0])
    rgb = np.zeros((48, 64, 3), np.uint8)
    shown = Frame(faces=[], face=None)
    stream.frame(rgb, shown, {"complete": []})
    now[0] += 0.2 / MAX_FPS
    stream.frame(rgb, shown, {"complete": []})
    assert len(con.sent) == 1, "a frame within 1/MAX_FPS of the last is dropped"
    now[0] += 0.2 / MAX_FPS
    stream.frame(rgb, shown, {"complete": ["straight"]}, force=True)
    assert [figures["complete"] for _name, figures in con.sent] == [[], ["straight"]]
    now[0] += 1.0 / MAX_FPS
    stream.frame(rgb, shown)
    assert len(con.sent) == 3
