"""GPU check of the plain (unfused) irv2 model: fp32 agreement with the CPU and throughput per dtype.

Run on a CUDA machine from the repository root:  PYTHONPATH=src python3 benchmarks/gpu_baseline.py
Prints a table; with --json PATH also writes the numbers. Weights are random with BatchNorm statistics
calibrated on random images (no weights file is needed): speed does not depend on the values, and the
agreement check compares the same weights on two devices.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from irv2.model import InceptionResNetV2


def calibrated_model(seed: int = 0) -> InceptionResNetV2:
    torch.manual_seed(seed)
    model = InceptionResNetV2()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            torch.nn.init.normal_(m.bias, 0, 0.2)
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 3, 299, 299) * 2 - 1)
    return model.eval()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def throughput(model, batch: int, dtype: torch.dtype, steps: int = 20) -> float:
    x = (torch.rand(batch, 3, 299, 299, device="cuda") * 2 - 1).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            model(x)
        end.record()
        torch.cuda.synchronize()
    return batch * steps / (start.elapsed_time(end) / 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    results: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}

    cpu = calibrated_model()
    x = torch.rand(8, 3, 299, 299) * 2 - 1
    with torch.inference_mode():
        reference = cpu.double()(x.double())
        cpu.float()
        cpu_fp32 = cpu(x)
    gpu = calibrated_model().cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with torch.inference_mode():
        gpu_fp32 = gpu(x.cuda()).cpu()
        results["rel_err_cpu_fp32_vs_fp64"] = relative(cpu_fp32, reference)
        results["rel_err_gpu_fp32_vs_fp64"] = relative(gpu_fp32, reference)
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        results["rel_err_gpu_tf32_vs_fp64"] = relative(gpu(x.cuda()).cpu(), reference)
        for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            low = calibrated_model().cuda().to(dtype)
            out = low(x.cuda().to(dtype)).float().cpu()
            results[f"rel_err_gpu_{name}_vs_fp64"] = relative(out, reference)
            results[f"top1_agree_{name}"] = float((out.argmax(1) == reference.argmax(1)).float().mean())

    rows = []
    gpu = gpu.to(memory_format=torch.channels_last)
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                              ("bf16", torch.bfloat16, True), ("fp16", torch.float16, True)):  # fmt: skip
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        model = gpu.to(dtype)
        for batch in (1, 64, 256):
            t0 = time.perf_counter()
            rows.append({"mode": f"eager {name}", "batch": batch, "img_per_s": throughput(model, batch, dtype)})
            print(rows[-1], f"{time.perf_counter() - t0:.1f}s", flush=True)
    if args.compile:
        model = torch.compile(gpu.to(torch.bfloat16))
        t0 = time.perf_counter()
        throughput(model, 256, torch.bfloat16, steps=1)
        results["compile_seconds"] = time.perf_counter() - t0
        rows.append({"mode": "compile bf16", "batch": 256, "img_per_s": throughput(model, 256, torch.bfloat16)})
    results["throughput"] = rows
    results["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
