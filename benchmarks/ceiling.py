"""The hardware limit an engine is measured against: this CPU's matrix-product rate, and the network's work.

    .venv/bin/python benchmarks/ceiling.py          # prints both, and the img/s ceiling per precision

Inception-ResNet-v2 is almost all convolutions, which every engine runs as matrix products, so no engine can
beat (GFLOP/s of a large matrix product) / (GFLOP per image) for long. ``benchmarks/peers.py`` reports each
engine as a share of that ceiling in its precision.
"""

from __future__ import annotations

import json
import time

import torch

GEMM_SIZE = 2048  # large enough to reach the kernels' peak, small enough to time in well under a second


def network_gflop(image_size: tuple[int, int] = (299, 299)) -> float:
    """GFLOP (2 per multiply-add) of one image through the inference network: every convolution and the
    classifier, counted from the layers' shapes on the meta device (pooling, BatchNorm and sums are under 1%)."""
    from irv2.model import InceptionResNetV2

    macs = 0

    def count(layer, inputs, output):
        nonlocal macs
        if isinstance(layer, torch.nn.Conv2d):
            kh, kw = layer.kernel_size
            macs += output.numel() * (layer.in_channels // layer.groups) * kh * kw
        elif isinstance(layer, torch.nn.Linear):
            macs += output.numel() * layer.in_features

    with torch.device("meta"):
        network = InceptionResNetV2(num_classes=1001, aux_logits=False).eval()
        hooks = [
            m.register_forward_hook(count)
            for m in network.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
        ]
        network(torch.empty(1, 3, *image_size))
    for hook in hooks:
        hook.remove()
    return 2 * macs / 1e9


def gemm_gflops(dtype: str, seconds: float = 2.0) -> float | None:
    """The best GFLOP/s of a ``GEMM_SIZE``-square matrix product in ``dtype`` (float32, bfloat16, int8) on
    PyTorch's threads; None where this build has no such CPU product (int8 needs ``torch._int_mm``)."""
    n = GEMM_SIZE
    if dtype == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)

        def product():
            return torch._int_mm(a, b)
    else:
        a = torch.randn(n, n, dtype=getattr(torch, dtype))
        b = torch.randn(n, n, dtype=getattr(torch, dtype))

        def product():
            return a @ b

    try:
        product()
    except (RuntimeError, NotImplementedError, AttributeError):
        return None
    best = float("inf")
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - begin)
    return 2 * n**3 / best / 1e9


def ceilings() -> dict:
    """GFLOP per image, and per precision the product's GFLOP/s and the img/s it allows."""
    work = network_gflop()
    rates = {dtype: gemm_gflops(dtype) for dtype in ("float32", "bfloat16", "int8")}
    return {
        "gflop_per_image": work,
        "gemm_gflops": rates,
        "images_per_s": {dtype: rate / work if rate else None for dtype, rate in rates.items()},
    }


if __name__ == "__main__":
    print(json.dumps(ceilings(), indent=2))
