"""irv2's ONNX graphs, written node by node with ``onnx.helper`` from the fused network's weights: the ONNX
Runtime engine's graph, the OpenVINO engine's and export's source graph, and the ONNX export.

Why not torch's exporter: the engines convert each set of weights once and the user waits for it, and an export
is a command the user waits on too. The ``torch.export``-based exporter (``onnx_graph.write_onnx``) traces the
network, decomposes every operator and optimises the result again, over ten times as long as writing the graph
here; TorchScript's exporter and OpenVINO's PyTorch front end also trace, and torch's exporters leave the
residual scales as separate ``Mul`` nodes. The network is a fixed stack of convolutions whose every constant
``fuse`` has already folded, so its graph can be written straight down: the time goes into folding, copying the
weights (about 220 MB) and serialising them. ``benchmarks/onnx_conversion.py`` and
``benchmarks/openvino_conversion.py`` measure the ways (docs/onnx_conversion_cpu.json,
docs/openvino_conversion_cpu.json).

Two interfaces (``interface=``):

- ``"engine"``: input ``x``, float32 NCHW ``[batch, 3, H, W]`` in [-1, 1], the function of
  ``onnx_graph.NetworkOutputs`` around the plain network;
- ``"export"``: input ``images``, float32 NHWC ``[batch, H, W, 3]`` in [0, 1], the function of
  ``irv2.export.wrapper.ExportWrapper``: a ``Transpose`` to NCHW, then ``Mul`` by 2 and ``Sub`` 1 in float32,
  the same arithmetic in the same order as ``2.0 * images.permute(0, 3, 1, 2) - 1.0``.

Both have a dynamic batch, and with ``dynamic_size`` dynamic height and width (``height``, ``width``); the
outputs are ``logits`` ``[batch, num_classes]`` (only for a network with a classifier) and ``features``
``[batch, 1536]``. Each part of ``FusedInceptionResNetV2`` maps onto standard opset-18 operators:

- ``FusedConv`` (conv + folded BatchNorm or residual scale, as weight and bias) → ``Conv`` with a bias, then
  ``Add`` of the block's input for a residual up-projection, then ``Relu`` where the layer has one;
- ``SplitConv`` (merged 1x1 branch openings) → one ``Conv`` and a ``Split`` by channel, or one ``Conv``
  per branch for an unmerged network (``merge=False``);
- ``nn.MaxPool2d`` → ``MaxPool``; Mixed_5b's SAME ``nn.AvgPool2d`` → ``AveragePool`` with
  ``count_include_pad=0`` (TF divides by the in-bounds count), followed by the ``Relu`` the fused block moves
  after it;
- the branch concatenations → ``Concat`` on the channel axis;
- the head → ``GlobalAveragePool`` + ``Flatten`` (the features), ``Gemm`` with the transposed weight (logits).

Ops are emitted by walking the fused modules, never by tracing; torch only hands over the folded tensors.
Results match the plain network to about 1e-6 relative in float32, at any input size: every pad is the layer's
own fixed one (see ``_Graph.conv``), so a graph with free height and width stays the network's function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..model import MIN_INPUT_SIZE, InceptionResNetV2
from .fused_network import (
    FusedInceptionResNetV2,
    FusedMixed5b,
    FusedMixed6a,
    FusedMixed7a,
    FusedResidual,
    SplitConv,
    fuse,
)
from .io_names import ENGINE_INPUT, EXPORT_INPUT, FEATURES, LOGITS, OPSET
from .kernels import FusedConv

if TYPE_CHECKING:
    import onnx

__all__ = ["ENGINE", "EXPORT", "network_onnx", "write_network_onnx"]

ENGINE = "engine"
EXPORT = "export"
_BATCH = "batch"


def write_network_onnx(
    model: InceptionResNetV2,
    path: Path | str,
    image_size: int | Sequence[int],
    *,
    interface: str = ENGINE,
    dynamic_size: bool = False,
    metadata: Mapping[str, str] | None = None,
    merge: bool = True,
) -> None:
    """Write :func:`network_onnx` to the single file ``path``, weights inside (about 220 MB for 1001 classes,
    well under protobuf's 2 GB limit, as the exporters write it)."""
    import onnx

    network = network_onnx(
        model, image_size, interface=interface, dynamic_size=dynamic_size, metadata=metadata, merge=merge
    )
    onnx.save(network, str(path))


def network_onnx(
    model: InceptionResNetV2,
    image_size: int | Sequence[int],
    *,
    interface: str = ENGINE,
    dynamic_size: bool = False,
    metadata: Mapping[str, str] | None = None,
    merge: bool = True,
) -> onnx.ModelProto:
    """``model`` (the plain network, in eval mode, float32, on the CPU) as an ONNX model in memory.

    Args:
        image_size: the side, or ``(height, width)``, of the input (each at least 75).
        interface: ``"engine"`` (input ``x``, NCHW in [-1, 1]) or ``"export"`` (input ``images``, NHWC in
            [0, 1]); see the module's notes.
        dynamic_size: make height and width free (named ``height`` and ``width``) instead of ``image_size``.
        metadata: the model's ``metadata_props`` (strings to strings).
        merge: write each block's 1x1 branch openings as one ``Conv`` and a ``Split`` (fewer, wider convs);
            False keeps one ``Conv`` per branch, as the plain network has them.
    """
    import onnx

    if interface not in (ENGINE, EXPORT):
        raise ValueError(f"interface must be {ENGINE!r} or {EXPORT!r}, got {interface!r}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else (int(s) for s in image_size)
    if min(height, width) < MIN_INPUT_SIZE:
        raise ValueError(f"images must be at least {MIN_INPUT_SIZE} x {MIN_INPUT_SIZE} pixels, got {height} x {width}")
    size: list[int | str] = ["height", "width"] if dynamic_size else [height, width]
    fused = fuse(model, merge)
    graph = _Graph()
    if interface == EXPORT:
        input_name, shape = EXPORT_INPUT, [_BATCH, *size, 3]
        x = graph.from_images(input_name)
    else:
        input_name, shape = ENGINE_INPUT, [_BATCH, 3, *size]
        x = input_name
    outputs = graph.network(fused, x)
    float32 = onnx.TensorProto.FLOAT
    inputs = [onnx.helper.make_tensor_value_info(input_name, float32, shape)]
    widths = {LOGITS: fused.num_classes, FEATURES: fused.num_features}
    declared = [onnx.helper.make_tensor_value_info(name, float32, [_BATCH, widths[name]]) for name in outputs]
    proto = onnx.helper.make_graph(graph.nodes, "inception_resnet_v2", inputs, declared)
    opsets = [onnx.helper.make_opsetid("", OPSET)]
    network = onnx.helper.make_model(proto, opset_imports=opsets, producer_name="irv2", producer_version=__version__)
    if metadata:
        onnx.helper.set_model_props(network, dict(metadata))
    # The weights go into the finished model's own initializer list: make_graph and make_model copy every
    # message handed to them, and at 220 MB each copy costs about as much as writing the file.
    for constant, value in graph.constants:
        _store(network.graph.initializer.add(), constant, value)
    # make_model stamps the newest IR version the installed onnx knows, which an older onnxruntime refuses to
    # open although every operator here exists in opset 18: ask for the oldest IR version that carries it.
    network.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    return network


class _Graph:
    """The nodes and initializers of the graph being written, and fresh names for their tensors."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.constants: list[tuple[str, np.ndarray]] = []
        self._count = 0

    def network(self, fused: FusedInceptionResNetV2, x: str) -> tuple[str, ...]:
        """Emit the whole network on input ``x``; returns the graph's output names, in ``NetworkOutputs``' order."""
        for index, layer in enumerate(fused.stem):
            x = self.layer(layer, x, f"stem.{index}")
        for index, block in enumerate(fused.blocks):
            x = self.layer(block, x, f"blocks.{index}")
        pooled = self.op("GlobalAveragePool", [x])
        self.op("Flatten", [pooled], axis=1, output=FEATURES)
        if not isinstance(fused.classif, nn.Linear):
            return (FEATURES,)
        weight = self.constant(fused.classif.weight, "classif.weight")
        bias = self.constant(fused.classif.bias, "classif.bias")
        self.op("Gemm", [FEATURES, weight, bias], transB=1, output=LOGITS)
        return (LOGITS, FEATURES)

    def from_images(self, images: str) -> str:
        """``ExportWrapper``'s input mapping on ``images`` (NHWC in [0, 1]): the network's NCHW in [-1, 1]."""
        nchw = self.op("Transpose", [images], perm=[0, 3, 1, 2])
        # Float32 scalars, multiplied then subtracted, as torch computes 2.0 * x - 1.0 on a float32 tensor:
        # the same rounding, so the network sees the very same input.
        two = self.constant(np.array(2.0, dtype=np.float32), "images.scale")
        one = self.constant(np.array(1.0, dtype=np.float32), "images.shift")
        return self.op("Sub", [self.op("Mul", [nchw, two]), one])

    def layer(self, layer: nn.Module, x: str, name: str) -> str:
        """Emit one module of the fused network (a stem layer or a block) on ``x``; returns its output."""
        if isinstance(layer, FusedConv):
            return self.conv(layer, x, name)
        if isinstance(layer, nn.MaxPool2d):
            return self.pool("MaxPool", layer, x)
        if isinstance(layer, nn.Sequential):
            for index, inner in enumerate(layer):
                x = self.layer(inner, x, f"{name}.{index}")
            return x
        if isinstance(layer, nn.Identity):
            return x
        if isinstance(layer, FusedMixed5b):
            b0, b1, b2 = self.split_conv(layer.open, x, f"{name}.open")
            # The fused block pools after the pool branch's 1x1 (both linear) and keeps that conv's ReLU for
            # after the pool, as its forward does.
            pooled = self.pool("AveragePool", layer.pool, self.conv(layer.pool_conv, x, f"{name}.pool_conv"))
            branches = [
                b0,
                self.layer(layer.branch1, b1, f"{name}.branch1"),
                self.layer(layer.branch2, b2, f"{name}.branch2"),
            ]
            return self.op("Concat", [*branches, self.op("Relu", [pooled])], axis=1)
        if isinstance(layer, FusedResidual):
            heads = self.split_conv(layer.open, x, f"{name}.open")
            tails = [
                self.layer(tail, head, f"{name}.tails.{i}")
                for i, (tail, head) in enumerate(zip(layer.tails, heads, strict=True))
            ]
            return self.conv(layer.up, self.op("Concat", tails, axis=1), f"{name}.up", residual=x)
        if isinstance(layer, FusedMixed6a):
            branches = [self.layer(getattr(layer, f"branch{i}"), x, f"{name}.branch{i}") for i in range(3)]
            return self.op("Concat", branches, axis=1)
        if isinstance(layer, FusedMixed7a):
            heads = self.split_conv(layer.open, x, f"{name}.open")
            tails = [
                self.layer(tail, head, f"{name}.tails.{i}")
                for i, (tail, head) in enumerate(zip(layer.tails, heads, strict=True))
            ]
            return self.op("Concat", [*tails, self.layer(layer.branch3, x, f"{name}.branch3")], axis=1)
        raise TypeError(f"no ONNX mapping for {type(layer).__name__} at {name}")

    def conv(self, layer: FusedConv, x: str, name: str, residual: str | None = None) -> str:
        kernel = list(layer.weight.shape[2:])
        # The pads are the layer's own, not recomputed from TF's rule. The plain network pads symmetrically
        # (nn.Conv2d), which is TF's SAME for its stride-1 odd kernels; its stride-2 layers are all VALID, as in
        # TF-Slim, so TF's asymmetric SAME at stride 2 (one more row or column at the bottom or right, on
        # inputs of some sizes) never arises. Copying them keeps the graph the plain network's function.
        pad_h, pad_w = layer.padding
        y = self.op(
            "Conv",
            [x, self.constant(layer.weight, f"{name}.weight"), self.constant(layer.bias, f"{name}.bias")],
            kernel_shape=kernel,
            strides=list(layer.stride),
            pads=[pad_h, pad_w, pad_h, pad_w],
            dilations=[1, 1],
            group=1,
        )
        if residual is not None:
            y = self.op("Add", [y, residual])
        return self.op("Relu", [y]) if layer.relu else y

    def split_conv(self, layer: SplitConv, x: str, name: str) -> list[str]:
        """The branch openings' outputs: one wide conv split by channel, or one conv each (``merge=False``)."""
        if not layer.merge:
            return [self.conv(conv, x, f"{name}.convs.{i}") for i, conv in enumerate(layer.convs)]
        merged = self.conv(layer.conv, x, f"{name}.conv")
        sizes = self.constant(np.array(layer.sizes, dtype=np.int64), f"{name}.sizes")
        outputs = [self._name() for _ in layer.sizes]
        self._node("Split", [merged, sizes], outputs, axis=1)
        return outputs

    def pool(self, op: str, layer: nn.MaxPool2d | nn.AvgPool2d, x: str) -> str:
        kh, kw = _pair(layer.kernel_size)
        pad_h, pad_w = _pair(layer.padding)
        attributes = {
            "kernel_shape": [kh, kw],
            "strides": list(_pair(layer.stride if layer.stride is not None else layer.kernel_size)),
            "pads": [pad_h, pad_w, pad_h, pad_w],
            "ceil_mode": int(layer.ceil_mode),
        }
        if op == "AveragePool":
            # TF's SAME average pool divides each window by its in-bounds cells (4 at a corner, 6 on an edge),
            # which is PyTorch's count_include_pad=False; ONNX's default counts the padding.
            attributes["count_include_pad"] = int(layer.count_include_pad)
        elif _pair(layer.dilation) != (1, 1):
            raise ValueError("dilated max pooling is not part of this network")
        return self.op(op, [x], **attributes)

    def constant(self, value: torch.Tensor | np.ndarray, name: str) -> str:
        if isinstance(value, torch.Tensor):
            value = value.detach().to(device="cpu", dtype=torch.float32).numpy()
        self.constants.append((name, value))
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        output = output or self._name()
        self._node(op_type, inputs, [output], **attributes)
        return output

    def _node(self, op_type: str, inputs: list[str], outputs: list[str], **attributes) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{len(self.nodes)}", **attributes))

    def _name(self) -> str:
        self._count += 1
        return f"t{self._count}"


def _store(tensor, name: str, value: np.ndarray) -> None:
    """Fill the initializer ``tensor`` (a TensorProto) with ``value`` as raw little-endian bytes, as
    ``onnx.numpy_helper.from_array`` would, without building a message that then has to be copied in."""
    from onnx import helper

    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(value.dtype)
    tensor.dims.extend(value.shape)
    # tobytes() writes row-major (OIHW) order whatever the memory layout: the fused conv weights are
    # channels-last in memory, and this is their one copy on the way to the file.
    tensor.raw_data = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes(order="C")


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
