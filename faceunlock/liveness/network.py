"""MiniFASNet presentation-attack networks in PyTorch (training and ONNX export only).

Written for this project from the published weights' state-dict key names and tensor shapes (see
models/README.md): a MobileFaceNet-style stack of conv-BN-PReLU units over an 80x80 BGR crop,
four stride-2 steps down to 5x5, a 5x5 depthwise "global" convolution, a 512->128 linear layer
with batch norm, and a 128->3 classifier (class 1: real face). Two variants ship:

- MiniFASNetV2: inverted-bottleneck blocks whose widths vary block by block (read from the weights);
- MiniFASNetV1SE: the same plan with a squeeze-and-excitation gate on the last block of the
  residual stages that have ``se_module`` keys.

Every width, block count and the presence of each SE gate and PReLU is read from the state dict,
so one builder serves both files. The run-time path does not use this module: it runs the ONNX
export (``faceunlock.liveness.runtime``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from torch import nn

from faceunlock.errors import ModelError

INPUT_SIZE = 80
PREFIX = "module."
STRIDE2 = ("conv1", "conv_23", "conv_34", "conv_45")
"""The four stride-2 steps that take 80x80 down to the 5x5 the last depthwise kernel spans."""
TRANSITIONS = ("conv_23", "conv_34", "conv_45")
STAGES = ("conv_3", "conv_4", "conv_5")


class ConvUnit(nn.Module):
    """Bias-free convolution, batch norm, then PReLU when the weights have one."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, act: bool):
        super().__init__()
        pad = kernel // 2 if kernel == 3 else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class Squeeze(nn.Module):
    """Squeeze-and-excitation: a per-channel gate from the globally pooled block output."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(dim=(2, 3), keepdim=True)
        g = torch.sigmoid(self.bn2(self.fc2(torch.relu(self.bn1(self.fc1(g))))))
        return x * g


class Bottleneck(nn.Module):
    """1x1 expand (PReLU), 3x3 depthwise (PReLU), 1x1 linear projection; optional SE and residual."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, residual: bool, se_hidden: int):
        super().__init__()
        self.residual = residual
        self.conv = ConvUnit(cin, mid, 1, 1, 1, True)
        self.conv_dw = ConvUnit(mid, mid, 3, stride, mid, True)
        self.project = ConvUnit(mid, cout, 1, 1, 1, False)
        self.se_module = Squeeze(cout, se_hidden) if se_hidden else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Stage(nn.Module):
    """A run of residual bottlenecks at one resolution."""

    def __init__(self, blocks: list[Bottleneck]):
        super().__init__()
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    """80x80 BGR crop (float, 0..255, NCHW) -> 3 logits; softmax class 1 is a real face."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        super().__init__()

        def width(key: str) -> int:
            return shapes[key][0]

        def block(name: str, stride: int, residual: bool) -> Bottleneck:
            cin = shapes[f"{name}.conv.conv.weight"][1]
            se = f"{name}.se_module.fc1.weight"
            return Bottleneck(
                cin,
                width(f"{name}.conv.conv.weight"),
                width(f"{name}.project.conv.weight"),
                stride,
                residual,
                width(se) if se in shapes else 0,
            )

        self.conv1 = ConvUnit(3, width("conv1.conv.weight"), 3, 2, 1, True)
        c = width("conv1.conv.weight")
        self.conv2_dw = ConvUnit(c, width("conv2_dw.conv.weight"), 3, 1, c, True)
        for name in TRANSITIONS:
            setattr(self, name, block(name, 2, False))
        for name in STAGES:
            count = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(rf"{name}\.model\.(\d+)\.", k)))
            setattr(self, name, Stage([block(f"{name}.model.{i}", 1, True) for i in range(count)]))
        sep_out, sep_in = shapes["conv_6_sep.conv.weight"][:2]
        self.conv_6_sep = ConvUnit(sep_in, sep_out, 1, 1, 1, True)
        k = shapes["conv_6_dw.conv.weight"][-1]
        self.conv_6_dw = ConvUnit(sep_out, sep_out, k, 1, sep_out, "conv_6_dw.prelu.weight" in shapes)
        emb, flat = shapes["linear.weight"]
        self.linear = nn.Linear(flat, emb, bias=False)
        self.bn = nn.BatchNorm1d(emb)
        self.prob = nn.Linear(emb, shapes["prob.weight"][0], bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        x = self.conv_4(self.conv_34(x))
        x = self.conv_5(self.conv_45(x))
        x = self.conv_6_dw(self.conv_6_sep(x)).flatten(1)
        return self.prob(self.bn(self.linear(x)))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_minifasnet(path: Path | str, sha256: str | None = None) -> MiniFASNet:
    """Build the network the state dict describes and load it, in eval mode; check sha256 first."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"liveness weights not found: {path}")
    if sha256 is not None and (found := file_sha256(path)) != sha256:
        raise ModelError(f"liveness weights {path} have sha256 {found}, expected {sha256}")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {k[len(PREFIX) :] if k.startswith(PREFIX) else k: v for k, v in raw.items()}
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    try:
        net = MiniFASNet(shapes)
        net.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path} is not a MiniFASNet state dict this builder understands: {exc}") from None
    return net.eval()
