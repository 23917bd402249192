"""The three MTCNN networks (Zhang et al., 2016), shaped to load facenet-pytorch's weights.

The facenet-pytorch wheel ships the pretrained P-, R- and O-Net as plain state dicts in
``facenet_pytorch/data/{pnet,rnet,onet}.pt``. We read those files by path and never import
``facenet_pytorch``: it imports torchvision at module level, and no torchvision build loads
beside the CPU torch this project uses. Attribute names below are the state-dict keys.

Every net takes images normalised to ``(rgb - 127.5) / 128``, laid out (N, 3, H, W), and
returns the face probability first, then the box regression (and O-Net the landmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from faceunlock.paths import installed_package


def _flatten_whc(x: Tensor) -> Tensor:
    """Flatten (N, C, H, W) in W, H, C order: the layout the dense weights were trained on."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell, stride 2.

    Returns (prob (N, H', W'), reg (N, 4, H', W')).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box regression

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement net on 24x24 crops. Returns (prob (N,), reg (N, 4))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(3 * 3 * 64, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_whc(x)))
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output net on 48x48 crops. Returns (prob (N,), reg (N, 4), landmarks (N, 10)).

    The landmarks are fractions of the crop: five x values, then five y values, in the order
    left eye, right eye, nose, left mouth corner, right mouth corner (left as seen in the image).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(3 * 3 * 128, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_whc(x)))
        return self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), self.dense6_3(x)


class MTCNNNets(NamedTuple):
    pnet: PNet
    rnet: RNet
    onet: ONet


def default_weights_dir() -> Path:
    """facenet-pytorch's ``data`` folder, found without importing the package."""
    try:
        return installed_package("facenet_pytorch") / "data"
    except FileNotFoundError:
        raise FileNotFoundError(
            "MTCNN weights not found: install them with `pip install --no-deps facenet-pytorch`"
        ) from None


def load_mtcnn_nets(weights_dir: str | Path | None = None) -> MTCNNNets:
    """Build the three nets, load ``{pnet,rnet,onet}.pt`` from weights_dir, and freeze them."""
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    nets = MTCNNNets(PNet(), RNet(), ONet())
    for name, net in zip(MTCNNNets._fields, nets, strict=True):
        path = folder / f"{name}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"MTCNN weight file missing: {path}")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval().requires_grad_(False)
    return nets
