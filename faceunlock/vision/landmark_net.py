"""MediaPipe's face landmark network (``face_landmark.tflite``) as a torch module, for export only.

``read_tflite`` reads the TFLite flatbuffer into a plain ``Graph`` (the ``tflite`` package, imported
lazily); ``GraphNet`` runs that graph's operators in order on NCHW tensors. Nothing here is specific
to one network: layers are built from the operator list, the TFLite padding rules and the tensor
shapes the file records (every computed output shape is checked against them). ``LandmarkNet``
wraps it for export: NCHW (N, 3, 192, 192) in, (N, 1404) landmarks and (N, 1) face logit out.
The run time (``faceunlock.vision.landmarks``) uses the ONNX export and needs no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = ("DEQUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD")
ACTIVATIONS = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}
NHWC_TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class Op:
    """One operator: its TFLite name, input and output tensor indices, and its options."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    """A TFLite subgraph: operators in execution order, constant tensors (float16 weights already
    dequantised to float32), every tensor's NHWC shape and name, and the graph's inputs and outputs."""

    ops: list[Op]
    constants: dict[int, np.ndarray]
    shapes: dict[int, tuple[int, ...]]
    names: dict[int, str]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def read_tflite(data: bytes) -> Graph:
    """Parse a one-subgraph float TFLite model; DEQUANTIZE of constants is folded into the constants."""
    try:
        import tflite
    except ImportError:
        raise ImportError("reading .tflite files needs the tflite package: pip install tflite") from None

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    dtypes = {
        tflite.TensorType.FLOAT32: np.float32,
        tflite.TensorType.FLOAT16: np.float16,
        tflite.TensorType.INT32: np.int32,
    }

    shapes, names, constants = {}, {}, {}
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        shapes[i] = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        names[i] = tensor.Name().decode()
        buffer = model.Buffers(tensor.Buffer())
        if buffer.Offset() > 1:
            raw = np.frombuffer(data, np.uint8, count=buffer.Size(), offset=buffer.Offset())
        elif buffer.DataLength():
            raw = buffer.DataAsNumpy()
        else:
            continue
        if tensor.Type() not in dtypes:
            raise ValueError(f"tensor {names[i]} has unsupported type {tensor.Type()}")
        constants[i] = np.frombuffer(raw.tobytes(), dtypes[tensor.Type()]).reshape(shapes[i])

    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if kind not in SUPPORTED:
            raise ValueError(f"operator {i} is {kind}, which this reader does not support")
        inputs = tuple(int(t) for t in op.InputsAsNumpy())
        outputs = tuple(int(t) for t in op.OutputsAsNumpy())
        if kind == "DEQUANTIZE":
            if inputs[0] not in constants:
                raise ValueError(f"operator {i}: DEQUANTIZE of a non-constant tensor")
            constants[outputs[0]] = constants[inputs[0]].astype(np.float32)
            continue
        ops.append(Op(kind, inputs, outputs, _options(tflite, kind, op)))
    return Graph(
        ops=ops,
        constants=constants,
        shapes=shapes,
        names=names,
        inputs=tuple(int(t) for t in graph.InputsAsNumpy()),
        outputs=tuple(int(t) for t in graph.OutputsAsNumpy()),
    )


def _options(tflite, kind: str, op) -> dict:
    classes = {
        "CONV_2D": tflite.Conv2DOptions,
        "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
        "MAX_POOL_2D": tflite.Pool2DOptions,
        "ADD": tflite.AddOptions,
    }
    if kind not in classes:
        return {}
    table = op.BuiltinOptions()
    if table is None:
        raise ValueError(f"{kind} operator without options")
    opts = classes[kind]()
    opts.Init(table.Bytes, table.Pos)
    out = {"activation": opts.FusedActivationFunction()}
    if kind != "ADD":
        out["same"] = opts.Padding() == tflite.Padding.SAME
        out["stride"] = (opts.StrideH(), opts.StrideW())
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        out["dilation"] = (opts.DilationHFactor(), opts.DilationWFactor())
    if kind == "DEPTHWISE_CONV_2D":
        out["multiplier"] = opts.DepthMultiplier()
    if kind == "MAX_POOL_2D":
        out["filter"] = (opts.FilterHeight(), opts.FilterWidth())
    return out


def tflite_padding(size: int, kernel: int, stride: int, dilation: int, same: bool) -> tuple[int, int, int]:
    """(before, after, output size) along one axis. SAME: output ceil(size / stride), the padding
    split with the odd pixel after (TFLite's rule); VALID: no padding."""
    reach = (kernel - 1) * dilation + 1
    if not same:
        return 0, 0, math.ceil((size - reach + 1) / stride)
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + reach - size, 0)
    return total // 2, total - total // 2, out


def to_nchw(value: np.ndarray) -> torch.Tensor:
    """A constant NHWC-broadcastable array (e.g. a PReLU alpha of shape (1, 1, C)) as NCHW."""
    v = np.asarray(value, np.float32)
    v = v.reshape((1,) * (4 - v.ndim) + v.shape)
    return torch.from_numpy(np.ascontiguousarray(v.transpose(NHWC_TO_NCHW)))


def activation(x: torch.Tensor, code: int) -> torch.Tensor:
    if code not in ACTIVATIONS:
        raise ValueError(f"unsupported fused activation {code}")
    name = ACTIVATIONS[code]
    if name == "relu":
        return F.relu(x)
    if name == "relu_n1_to_1":
        return torch.clamp(x, -1.0, 1.0)
    if name == "relu6":
        return torch.clamp(x, 0.0, 6.0)
    if name == "tanh":
        return torch.tanh(x)
    return x


class Conv(nn.Module):
    """CONV_2D or DEPTHWISE_CONV_2D with TFLite padding and its fused activation."""

    def __init__(self, graph: Graph, op: Op):
        super().__init__()
        o = op.options
        kernel = graph.constants[op.inputs[1]]
        _, in_h, in_w, channels = graph.shapes[op.inputs[0]]
        _, kh, kw, _ = kernel.shape
        if op.kind == "CONV_2D":  # (O, kh, kw, I) -> (O, I, kh, kw)
            weight, self.groups = kernel.transpose(0, 3, 1, 2), 1
        else:  # (1, kh, kw, C * m) -> (C * m, 1, kh, kw); output c * m + k reads input channel c
            if kernel.shape[3] != channels * o["multiplier"]:
                raise ValueError(f"depthwise kernel {kernel.shape} does not fit {channels} x multiplier")
            weight, self.groups = kernel.transpose(3, 0, 1, 2), channels
        bias = graph.constants[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        self.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight, np.float32)))
        self.bias = None if bias is None else nn.Parameter(torch.from_numpy(bias.astype(np.float32)))
        self.stride, self.dilation, self.act = o["stride"], o["dilation"], o["activation"]
        top, bottom, out_h = tflite_padding(in_h, kh, self.stride[0], self.dilation[0], o["same"])
        left, right, out_w = tflite_padding(in_w, kw, self.stride[1], self.dilation[1], o["same"])
        self.pad = (left, right, top, bottom)
        _check_shape(graph, op, (out_h, out_w, weight.shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.pad
        padding: tuple[int, int] | int = 0
        if left == right and top == bottom:
            padding = (top, left)
        else:
            x = F.pad(x, self.pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return activation(y, self.act)


class MaxPool(nn.Module):
    """MAX_POOL_2D; SAME padding pads with -inf, so padded cells never win."""

    def __init__(self, graph: Graph, op: Op):
        super().__init__()
        o = op.options
        _, in_h, in_w, channels = graph.shapes[op.inputs[0]]
        self.kernel, self.stride, self.act = o["filter"], o["stride"], o["activation"]
        top, bottom, out_h = tflite_padding(in_h, self.kernel[0], self.stride[0], 1, o["same"])
        left, right, out_w = tflite_padding(in_w, self.kernel[1], self.stride[1], 1, o["same"])
        self.pad = (left, right, top, bottom)
        _check_shape(graph, op, (out_h, out_w, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return activation(F.max_pool2d(x, self.kernel, self.stride), self.act)


class PReLU(nn.Module):
    """PRELU: max(x, 0) + alpha * min(x, 0), alpha broadcast against NHWC (any TFLite shape)."""

    def __init__(self, graph: Graph, op: Op):
        super().__init__()
        alpha = to_nchw(graph.constants[op.inputs[1]])
        self.per_channel = alpha.shape[1] == alpha.numel()
        self.alpha = nn.Parameter(alpha.flatten() if self.per_channel else alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            return F.prelu(x, self.alpha)
        return F.relu(x) - self.alpha * F.relu(-x)


class Pad(nn.Module):
    """PAD with zeros; the (4, 2) NHWC paddings are reordered for NCHW."""

    def __init__(self, graph: Graph, op: Op):
        super().__init__()
        pads = np.asarray(graph.constants[op.inputs[1]]).reshape(4, 2)[list(NHWC_TO_NCHW)]
        self.pad = tuple(int(v) for row in pads[::-1] for v in row)
        _, h, w, c = graph.shapes[op.inputs[0]]
        _check_shape(graph, op, (h + pads[2].sum(), w + pads[3].sum(), c + pads[1].sum()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad)


class Add(nn.Module):
    """ADD of two tensors (a constant operand is converted to NCHW), then the fused activation."""

    def __init__(self, graph: Graph, op: Op):
        super().__init__()
        self.act = op.options["activation"]
        constants = [i for i in op.inputs if i in graph.constants]
        self.value = nn.Parameter(to_nchw(graph.constants[constants[0]])) if constants else None

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        if self.value is not None:
            b = self.value
        return activation(a + b, self.act)


LAYERS = {
    "CONV_2D": Conv,
    "DEPTHWISE_CONV_2D": Conv,
    "MAX_POOL_2D": MaxPool,
    "PRELU": PReLU,
    "PAD": Pad,
    "ADD": Add,
}


def _check_shape(graph: Graph, op: Op, hwc: tuple[int, int, int]) -> None:
    recorded = graph.shapes[op.outputs[0]]
    if tuple(int(v) for v in hwc) != tuple(recorded[1:]):
        raise ValueError(f"{op.kind} {graph.names[op.outputs[0]]}: computed {hwc}, file says {recorded}")


class GraphNet(nn.Module):
    """The graph's operators in order; tensors are kept by their TFLite index, NCHW."""

    def __init__(self, graph: Graph):
        super().__init__()
        if len(graph.inputs) != 1:
            raise ValueError(f"expected one graph input, found {len(graph.inputs)}")
        self.layers = nn.ModuleList(LAYERS[op.kind](graph, op) for op in graph.ops)
        self.wiring = [
            ([i for i in op.inputs if i >= 0 and i not in graph.constants], op.outputs[0]) for op in graph.ops
        ]
        self.input = graph.inputs[0]
        self.outputs = graph.outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tensors = {self.input: x}
        for layer, (inputs, output) in zip(self.layers, self.wiring, strict=True):
            tensors[output] = layer(*(tensors[i] for i in inputs))
        return tuple(tensors[i] for i in self.outputs)


class LandmarkNet(nn.Module):
    """face_landmark.tflite for export: (N, 3, 192, 192) float32 -> landmarks (N, 1404) as x, y, z
    per point in input pixels, and face_flag (N, 1), the face-presence logit."""

    def __init__(self, graph: Graph):
        super().__init__()
        sizes = [int(np.prod(graph.shapes[i])) for i in graph.outputs]
        if graph.shapes[graph.inputs[0]] != (1, 192, 192, 3) or sorted(sizes) != [1, 1404]:
            raise ValueError(
                f"not the face landmark graph: input {graph.shapes[graph.inputs[0]]}, outputs {sizes}"
            )
        self.net = GraphNet(graph)
        self.landmarks_first = sizes[0] == 1404

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.net(x)
        landmarks, flag = (a, b) if self.landmarks_first else (b, a)
        return landmarks[:, :, 0, 0], flag[:, :, 0, 0]
