"""``irv2 bench``: load time, cold start, batch-1 latency and throughput per precision, engine and batch size,
end-to-end throughput on a folder of photos, peak memory. Results are plain dicts (``--json`` prints them)."""

from __future__ import annotations

import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..api import CLASSIFICATION, Module, load, save
from ..batch import decode_batches, expand_inputs, run_module, stack_images
from ..data import sample_image
from ..engine import AUTO, ENGINES, TORCH_ENGINE, auto_engine, engines_for, resolve_precision
from ..engine.catalog import ALIASES
from ..engine.precision import cpu_has_fast_bfloat16
from ..errors import Irv2Error, MissingDependencyError
from ..machine import cpu_name
from .cold_start import measure_cold_start
from .measure import peak_memory_mib, reset_peak_memory, time_runs
from .synthetic import calibrated_random_module


@dataclass
class BenchConfig:
    """What ``irv2 bench`` measures. ``weights`` None with ``random_weights`` measures an untrained network of
    the same shape (the speed does not depend on the values), so the machine can be measured offline."""

    weights: str | None = None
    random_weights: bool = False
    device: str = "cpu"
    dtypes: Sequence[str] = ("float32",)
    engines: Sequence[str] = (AUTO,)
    batch_sizes: Sequence[int] = (1, 8, 16)
    min_seconds: float = 3.0
    images: str | None = None
    image_limit: int = 64
    workers: int | None = None
    cold_start: bool = True
    log: Callable[[str], None] = field(default=lambda message: None)


def default_dtypes(device: torch.device) -> list[str]:
    """float32, plus the low precision this device runs natively (bfloat16 on capable CPUs and GPUs)."""
    if device.type == "cuda":
        return ["float32", "bfloat16", "float16"]
    return ["float32", "bfloat16"] if cpu_has_fast_bfloat16() else ["float32"]


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Run every measurement of ``config``; returns the machine, load figures and one row per measurement."""
    device = torch.device(config.device)
    with tempfile.TemporaryDirectory(prefix="irv2-bench-") as scratch:
        handle = _weights_handle(config, Path(scratch))
        report: dict[str, Any] = {
            "irv2": __version__,
            "machine": machine_info(device),
            "weights": "random" if config.random_weights else handle or "default",
        }
        started = time.perf_counter()
        module = load(handle, device=config.device, engine=TORCH_ENGINE)  # reading the weights, no conversion
        report["load_s"] = time.perf_counter() - started
        native = module.info.provenance.get("loaded_from") or handle
        del module
        if config.cold_start and native is not None:
            config.log("cold start (a new process: import, load, first prediction)")
            report["cold_start"] = measure_cold_start(native, device=config.device)
        rows, skipped = [], []
        for dtype in config.dtypes:
            for engine in dict.fromkeys(_engine_for(dtype, engine, device) for engine in config.engines):
                try:
                    module = _load(handle, device, dtype, engine)
                # A pairing this engine or device does not run (bfloat16 on ONNX Runtime), or a missing extra.
                except (ValueError, MissingDependencyError) as exc:
                    skipped.append({"dtype": dtype, "engine": engine, "reason": str(exc)})
                    config.log(f"{dtype} {engine}: skipped ({exc})")
                    continue
                rows.extend(_measure_module(config, module, device, dtype, engine))
                del module
        if not rows and skipped:
            raise ValueError(skipped[0]["reason"])
        report["results"] = rows
        if skipped:
            report["skipped"] = skipped
        if config.images:
            report["end_to_end"] = _measure_end_to_end(config, handle, device, rows)
    return report


def _weights_handle(config: BenchConfig, scratch: Path) -> str | None:
    if config.random_weights:
        return str(save(calibrated_random_module(), scratch / "random-irv2"))
    return config.weights


def _load(handle: str | None, device: torch.device, dtype: str, engine: str) -> Module:
    if dtype != "int8":
        return load(handle, device=device, dtype=dtype, engine=engine)
    with warnings.catch_warnings():
        # Speed does not depend on how well int8 is calibrated: the bundled photo will do (a path, preprocessed
        # at the weights' own size by load).
        warnings.simplefilter("ignore", RuntimeWarning)
        return load(handle, device=device, dtype=dtype, engine=engine, calibration=[sample_image()])


def _engine_for(dtype: str, engine: str, device: torch.device) -> str:
    """The engine a run names (``auto``: the one ``irv2.load`` would pick here, so each row names what ran), or
    the default engine for ``dtype`` when the named one cannot run it and PyTorch cannot either (int8:
    ``--engine torch --dtype int8`` measures OpenVINO's int8, as ``irv2.load`` runs it)."""
    name = ALIASES.get(engine, engine)
    if name == AUTO:
        try:
            return auto_engine(resolve_precision(dtype, device), device)
        except (ValueError, Irv2Error):  # nothing installed runs it: the load says so, as a skipped row
            return name
    if name in ENGINES and dtype not in ENGINES[name].dtypes and dtype not in ENGINES[TORCH_ENGINE].dtypes:
        return engines_for(dtype)[0]
    return name


def _measure_module(
    config: BenchConfig, module: Module, device: torch.device, dtype: str, engine: str
) -> list[dict[str, Any]]:
    rows = []
    for batch_size in config.batch_sizes:
        config.log(f"{dtype} {engine} batch {batch_size}")
        size = module.expected_image_size
        images = torch.rand(batch_size, *size, 3, generator=torch.Generator().manual_seed(0)).to(device)
        reset_peak_memory(device)
        first = time.perf_counter()
        with torch.inference_mode():
            module(images)
        first_call_s = time.perf_counter() - first
        with torch.inference_mode():
            timing = time_runs(lambda x=images: module(x), device=device, min_seconds=config.min_seconds)
        rows.append(
            {
                "dtype": dtype,
                "engine": engine,
                "batch_size": batch_size,
                "images_per_s": batch_size / timing.median,
                "latency_ms_p50": timing.median * 1e3,
                "latency_ms_p90": timing.percentile(90) * 1e3,
                "runs": len(timing.seconds),
                "first_call_s": first_call_s,
                "peak_memory_mib": peak_memory_mib(device),
            }
        )
    return rows


def _measure_end_to_end(
    config: BenchConfig, handle: str | None, device: torch.device, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Decode + preprocess + network over the folder's photos, per precision, at the largest batch size,
    against the network alone on the same batch size."""
    inputs = expand_inputs([config.images])[: config.image_limit]
    if not inputs:
        raise ValueError(f"{config.images}: no images found for the end-to-end measurement")
    batch_size = max(config.batch_sizes)
    results = []
    for dtype in config.dtypes:
        # The first engine measured for this dtype (the run's first engine, unless it skipped the dtype).
        engine = next((r["engine"] for r in rows if r["dtype"] == dtype), None)
        if engine is None:
            continue
        config.log(f"end to end: {len(inputs)} photos, {dtype} {engine} batch {batch_size}")
        module = _load(handle, device, dtype, engine)
        pin = device.type == "cuda"
        # Warm up at the batch size measured, as the network-alone figure is: the first calls at a new shape
        # create kernels (0.1-0.2 s; TorchScript traces and compiles, 1-3 s), a cost a long run pays once
        # but one that would weigh on a measurement over a few dozen photos.
        for _ in range(2):
            run_module(module, np.zeros((batch_size, *module.expected_image_size, 3), np.float32), CLASSIFICATION)
        started = time.perf_counter()
        done = 0
        for batch in decode_batches(inputs, batch_size, module.preprocessing, workers=config.workers):
            images = stack_images(batch, pin_memory=pin)
            if images is not None:
                run_module(module, images, CLASSIFICATION)
            done += len(batch)
        seconds = time.perf_counter() - started
        same_setup = (dtype, engine, batch_size)
        model_only = next(
            (r["images_per_s"] for r in rows if (r["dtype"], r["engine"], r["batch_size"]) == same_setup), None
        )
        rate = done / seconds
        results.append(
            {
                "dtype": dtype,
                "engine": engine,
                "batch_size": batch_size,
                "images": done,
                "images_per_s": rate,
                "model_images_per_s": model_only,
                "ratio_to_model": rate / model_only if model_only else None,
                "mean_megapixels": _mean_megapixels([i.path for i in inputs]),
            }
        )
    return results


def _mean_megapixels(paths: list[str]) -> float:
    from PIL import Image

    sizes = []
    for path in paths:
        try:
            with Image.open(path) as im:
                sizes.append(im.size[0] * im.size[1] / 1e6)
        except OSError:
            continue
    return float(np.mean(sizes)) if sizes else 0.0


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the figures depend on: processor, cores, threads, instruction sets, GPU, library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bfloat16": cpu_has_fast_bfloat16(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
