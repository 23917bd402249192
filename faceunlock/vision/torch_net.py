"""The torch backend: a PyTorch module behind the same numpy-in, numpy-out call as an ONNX file."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TorchNet:
    """Runs `module` under inference mode on float32 numpy batches; outputs come back as numpy.

    channels_last: give the module its input in channels-last memory (faster for the ResNet on CPU).
    """

    def __init__(self, module: nn.Module, channels_last: bool = False):
        self.module = module.eval().requires_grad_(False)
        self.channels_last = channels_last
        if channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        t = torch.from_numpy(np.asarray(x, dtype=np.float32))
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = self.module(t)
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(o.float().numpy() for o in outs)
