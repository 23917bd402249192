"""Parser for ``dlib_face_recognition_resnet_model_v1.dat`` (dlib's portable serialization).

The file holds the trained weights of dlib's face-recognition ResNet but not its
topology; :mod:`faceunlock.vision.embed` supplies the topology. This module only
reads bytes into plain numpy arrays and checks that the layout is the expected one.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceunlock.vision.align import CHIP_SIZE

EXPONENT_POS_INF = 32000
EXPONENT_NEG_INF = 32001
EXPONENT_NAN = 32002

LOSS_NAME = "loss_metric_2"
INPUT_NAME = "input_rgb_image_sized"
NUM_WRAPPERS = 130
NUM_TAG_WRAPPERS = 22
EXPECTED_LAYERS = {
    "con_4": 29,
    "affine_": 29,
    "relu_": 29,
    "max_pool_2": 1,
    "avg_pool_2": 5,
    "add_prev_": 14,
    "fc_2": 1,
}
NUM_LAYERS = sum(EXPECTED_LAYERS.values())


class DlibFormatError(ValueError):
    """The bytes are not a valid dlib ResNet model file; the message names the byte offset."""


@dataclass(frozen=True)
class Conv:
    """A convolution: weight (out, in, kh, kw), bias (out,), stride and pad as (y, x)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    pad: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    """Per-channel ``y = x * gamma + beta``."""

    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class Pool:
    """A pooling layer; ``size == (0, 0)`` means a global pool over the whole map."""

    kind: str  # "max" or "avg"
    size: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]


@dataclass
class DlibResNet:
    """Everything the file stores, in forward order (input to output)."""

    means: tuple[float, float, float]  # R, G, B
    chip_size: tuple[int, int]
    margin: float
    distance_threshold: float
    layers: list[str] = field(default_factory=list)  # layer names, forward order
    convs: list[Conv] = field(default_factory=list)
    affines: list[Affine] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    fc: np.ndarray | None = None  # (out, in)


class Reader:
    """Cursor over dlib's portable serialization primitives."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def fail(self, what: str, at: int | None = None) -> DlibFormatError:
        return DlibFormatError(f"{what} at byte offset {self.pos if at is None else at}")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated file: {what} needs {n} bytes, {len(self.data) - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self, signed: bool = True, max_bytes: int = 8) -> int:
        """An integer: a control byte (sign bit 7, byte count in the low nibble), then bytes."""
        start = self.pos
        control = self.take(1, "integer control byte")[0]
        if not signed:
            control &= 0x8F
        negative = bool(control & 0x80) and signed
        size = control & (0x0F if signed else 0x8F)
        if control & 0x70 or not 1 <= size <= max_bytes:
            raise self.fail(f"bad integer control byte 0x{control:02x}", start)
        value = int.from_bytes(self.take(size, "integer"), "little")
        return -value if negative else value

    def unsigned(self) -> int:
        return self.integer(signed=False)

    def real(self) -> float:
        """A float or double: int64 mantissa, then int16 exponent."""
        start = self.pos
        mantissa = self.integer()
        exponent = self.integer(max_bytes=2)
        if exponent == EXPONENT_POS_INF:
            return math.inf
        if exponent == EXPONENT_NEG_INF:
            return -math.inf
        if exponent == EXPONENT_NAN:
            return math.nan
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise self.fail(f"float out of range ({mantissa} * 2^{exponent})", start) from None

    def string(self) -> str:
        n = self.unsigned()
        raw = self.take(n, "string")
        try:
            return bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-ASCII string", self.pos - n) from None

    def boolean(self) -> bool:
        c = self.take(1, "bool")[0]
        if c not in (ord("0"), ord("1")):
            raise self.fail(f"bad bool byte 0x{c:02x}", self.pos - 1)
        return c == ord("1")

    def _dims(self, version: int, what: str) -> tuple[int, int, int, int]:
        start = self.pos
        v = self.integer()
        if v != version:
            raise self.fail(f"{what}: version {v}, expected {version}", start)
        n, k, nr, nc = (self.integer() for _ in range(4))
        if min(n, k, nr, nc) < 0:
            raise self.fail(f"{what}: negative dimensions {(n, k, nr, nc)}", start)
        return n, k, nr, nc

    def tensor(self) -> np.ndarray:
        """A tensor (n, k, nr, nc) of little-endian float32."""
        dims = self._dims(2, "tensor")
        count = math.prod(dims)
        raw = self.take(4 * count, f"tensor {dims}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        """An alias tensor: only its dimensions."""
        return self._dims(1, "alias tensor")

    def expect(self, value, got, what: str, at: int) -> None:
        if got != value:
            raise self.fail(f"{what}: got {got!r}, expected {value!r}", at)

    def at_end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} trailing bytes after the model")


def _conv(r: Reader, start: int) -> Conv:
    flat = r.tensor().reshape(-1)
    n, nr, nc = r.integer(), r.integer(), r.integer()
    stride = (r.integer(), r.integer())
    pad = (r.integer(), r.integer())
    w_alias, b_alias = r.alias(), r.alias()
    for _ in range(4):
        r.real()
    if min(n, nr, nc) <= 0 or min(stride) <= 0 or min(pad) < 0:
        raise r.fail(f"con_4: bad geometry n={n} {nr}x{nc} stride={stride} pad={pad}", start)
    k, rest = divmod(flat.size - n, n * nr * nc)
    if rest or k <= 0:
        raise r.fail(f"con_4: {flat.size} parameters do not fit {n} filters of {nr}x{nc}", start)
    if w_alias != (n, k, nr, nc) or math.prod(b_alias) != n:
        raise r.fail(f"con_4: aliases {w_alias} {b_alias} disagree with ({n}, {k}, {nr}, {nc})", start)
    weight = flat[: n * k * nr * nc].reshape(n, k, nr, nc)
    return Conv(weight, flat[n * k * nr * nc :].copy(), stride, pad)


def _affine(r: Reader, start: int) -> Affine:
    flat = r.tensor().reshape(-1)
    r.alias()
    r.alias()
    mode_at = r.pos
    r.expect(0, r.integer(), "affine_ mode (0 = per channel)", mode_at)
    if flat.size % 2:
        raise r.fail(f"affine_: odd parameter count {flat.size}", start)
    k = flat.size // 2
    return Affine(flat[:k].copy(), flat[k:].copy())


def _pool(r: Reader, kind: str) -> Pool:
    size = (r.integer(), r.integer())
    stride = (r.integer(), r.integer())
    pad = (r.integer(), r.integer())
    return Pool(kind, size, stride, pad)


def _fc(r: Reader, start: int) -> np.ndarray:
    n_out, n_in = r.unsigned(), r.unsigned()
    w = r.tensor()
    r.alias()
    r.alias()
    mode_at = r.pos
    r.expect(1, r.integer(), "fc_2 bias mode (1 = no bias)", mode_at)
    for _ in range(4):
        r.real()
    if w.shape != (n_in, n_out, 1, 1):
        raise r.fail(f"fc_2: weight shape {w.shape}, expected ({n_in}, {n_out}, 1, 1)", start)
    return np.ascontiguousarray(w.reshape(n_in, n_out).T)


def _layer(r: Reader, net: DlibResNet) -> None:
    start = r.pos
    name = r.string()
    if name == "con_4":
        net.convs.append(_conv(r, start))
    elif name == "affine_":
        net.affines.append(_affine(r, start))
    elif name == "max_pool_2":
        net.pools.append(_pool(r, "max"))
    elif name == "avg_pool_2":
        net.pools.append(_pool(r, "avg"))
    elif name == "fc_2":
        if net.fc is not None:
            raise r.fail("second fc_2 layer", start)
        net.fc = _fc(r, start)
    elif name not in ("relu_", "add_prev_"):
        raise r.fail(f"unknown layer record {name!r}", start)
    net.layers.append(name)


def parse(data: bytes) -> DlibResNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat``."""
    r = Reader(data)
    r.expect(1, r.integer(), "loss version", 0)
    at = r.pos
    r.expect(LOSS_NAME, r.string(), "loss layer", at)
    margin, threshold = r.real(), r.real()

    at = r.pos
    versions = [r.integer() for _ in range(NUM_WRAPPERS)]
    counts = Counter(versions[:-1])
    if versions[-1] != 3 or counts != Counter({2: NUM_LAYERS - 1, 1: NUM_TAG_WRAPPERS}):
        raise r.fail(f"unexpected layer wrapper versions {dict(Counter(versions))}", at)

    at = r.pos
    r.expect(INPUT_NAME, r.string(), "input layer", at)
    means = (r.real(), r.real(), r.real())
    at = r.pos
    chip = (r.unsigned(), r.unsigned())
    r.expect((CHIP_SIZE, CHIP_SIZE), chip, "chip size", at)

    net = DlibResNet(means=means, chip_size=chip, margin=margin, distance_threshold=threshold)
    for i in range(NUM_LAYERS):
        _layer(r, net)
        for _ in range(3):
            r.boolean()
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        if i == 0:
            r.tensor()  # grad_final
            at = r.pos
            r.expect(1, r.unsigned(), "sample expansion factor", at)
        else:
            r.tensor()  # params_grad
    r.at_end()

    got = dict(Counter(net.layers))
    if got != EXPECTED_LAYERS:
        raise DlibFormatError(f"unexpected layer counts {got}, expected {EXPECTED_LAYERS}")
    if net.layers[0] != "con_4" or net.layers[-1] != "fc_2":
        raise DlibFormatError("the first layer must be con_4 and the last fc_2")
    for conv, aff in zip(net.convs, net.affines, strict=True):
        if conv.bias.size != aff.gamma.size:
            raise DlibFormatError(f"affine of {aff.gamma.size} channels after a conv of {conv.bias.size}")
    return net


def load(path: str | Path) -> DlibResNet:
    """Read and parse a model file."""
    return parse(Path(path).read_bytes())
