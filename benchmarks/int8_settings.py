"""NNCF's accurate settings against its defaults for irv2's int8: quantization time and error, side by side.

``irv2.engine.openvino_engine._quantize`` runs ``nncf.quantize`` with ``fast_bias_correction=False`` (bias
correction on every layer, NNCF's "accurate" choice). NNCF's default is ``fast_bias_correction=True``. This
converts the test suite's fixture weights once, quantizes that IR both ways (each quantization timed alone),
and measures each int8 model against the float32 plain network on photos the calibration did not see.

    .venv/bin/python benchmarks/int8_settings.py [--calibration-count 4] [--out FILE.json]

- Weights: ``tests/random_module.random_module(photo_arrays)``, the engine tests' fixture (random, with
  BatchNorm statistics measured on the five scikit-image photos of ``tests/conftest.PHOTOS``).
- Calibration: the first ``--calibration-count`` images of the photo pool (default 4: the first four fixture
  photos, exactly what ``test_int8_by_nncf_is_close`` calibrates on), preprocessed with ``preprocess_for_eval``.
- Held out: every other photo of the pool (the fifth fixture photo and further scikit-image photos).
- Error: ``irv2.export.wrapper.relative_error`` (max |int8 - float32| / max |float32|, over the whole set), the
  int8 test's metric; plus top-1 agreement with float32 and the features' lowest cosine similarity.
- Accurate quantization is ``_quantize`` itself; default is the same function with ``nncf.quantize``'s
  ``fast_bias_correction`` forced to True, so nothing else differs.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# Photos of scikit-image that ship with the package (no download), beyond the fixture's five: the held-out pool.
EXTRA_PHOTOS = (
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "brick",
    "grass",
    "gravel",
    "moon",
    "page",
    "text",
    "clock",
    "coins",
    "colorwheel",
    "logo",
    "horse",
)


def _rgb(image: np.ndarray) -> np.ndarray:
    """As the tests' ``photo_arrays`` fixture: RGB uint8 (alpha dropped, grey stacked to three channels)."""
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    return image[..., :3] if image.ndim == 3 else np.stack([image] * 3, -1)


def fixture_photos() -> dict[str, np.ndarray]:
    from skimage import data

    from conftest import PHOTOS

    return {name: _rgb(getattr(data, name)()) for name in PHOTOS}


def extra_photos() -> dict[str, np.ndarray]:
    from skimage import data

    photos = {}
    for name in EXTRA_PHOTOS:
        try:
            photos[name] = _rgb(getattr(data, name)())
        except Exception as error:
            print(f"skipping skimage.data.{name}: {type(error).__name__}: {error}", file=sys.stderr)
    return photos


def cpu_flags() -> list[str]:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
                return [flag for flag in wanted if flag in flags]
    return []


def versions() -> dict[str, str]:
    found = {}
    for package in ("irv2", "torch", "openvino", "nncf", "numpy", "scikit-image"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "missing"
    found["python"] = sys.version.split()[0]
    return found


def quantize(ir, calibration: np.ndarray, *, fast_bias_correction: bool):
    """``openvino_engine._quantize`` as irv2 runs it, with ``fast_bias_correction`` set (the only change)."""
    import nncf

    from irv2.engine import openvino_engine

    original = nncf.quantize

    @functools.wraps(original)
    def with_setting(*args, **kwargs):
        assert "fast_bias_correction" in kwargs, "irv2's _quantize no longer names fast_bias_correction"
        kwargs["fast_bias_correction"] = fast_bias_correction
        return original(*args, **kwargs)

    nncf.quantize = with_setting
    try:
        return openvino_engine._quantize(ir, calibration)
    finally:
        nncf.quantize = original


def compile_like_the_engine(ir, folder: Path):
    """Saved and compiled exactly as the engine does (``_write_ir``'s save, ``_compile``'s LATENCY config)."""
    import openvino as ov

    from irv2.engine import openvino_engine

    folder.mkdir(parents=True)
    ov.save_model(ir, str(folder / "model.xml"), compress_to_fp16=False)
    return openvino_engine._compile(folder, "int8")


def run_ir(compiled, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and features of ``images`` ([N, H, W, 3] in [0, 1]) one at a time, as the engine's single calls."""
    from irv2.engine.onnx_graph import FEATURES, LOGITS

    request = compiled.create_infer_request()
    logits, features = [], []
    for image in images:
        x = np.ascontiguousarray(2.0 * image.transpose(2, 0, 1)[None] - 1.0, dtype=np.float32)
        out = request.infer({"x": x})
        logits.append(np.array(out[compiled.output(LOGITS)], dtype=np.float32))
        features.append(np.array(out[compiled.output(FEATURES)], dtype=np.float32))
    return np.concatenate(logits), np.concatenate(features)


def errors(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], names: list[str]) -> dict:
    from irv2.export.wrapper import relative_error

    (logits, features), (ref_logits, ref_features) = got, want
    per_image = [relative_error(logits[i : i + 1], ref_logits[i : i + 1]) for i in range(len(logits))]
    cosine = (features * ref_features).sum(1) / np.linalg.norm(features, axis=1) / np.linalg.norm(ref_features, axis=1)
    return {
        "images": len(logits),
        "logits_relative_error": round(relative_error(logits, ref_logits), 5),
        "logits_relative_error_per_image_mean": round(float(np.mean(per_image)), 5),
        "logits_relative_error_per_image_max": round(float(np.max(per_image)), 5),
        "top1_agreement": round(float((logits.argmax(1) == ref_logits.argmax(1)).mean()), 4),
        "top1_agree_count": int((logits.argmax(1) == ref_logits.argmax(1)).sum()),
        "features_cosine_min": round(float(cosine.min()), 5),
        "per_image": {
            name: {"relative_error": round(error, 5), "top1_agrees": bool(logits[i].argmax() == ref_logits[i].argmax())}
            for i, (name, error) in enumerate(zip(names, per_image, strict=True))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration-count", type=int, default=4, help="images calibrated on (default 4, the test's)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    os.environ["IRV2_HOME"] = tempfile.mkdtemp(prefix="irv2-int8-settings-")
    scratch = Path(tempfile.mkdtemp(prefix="irv2-int8-settings-ir-"))

    import nncf  # noqa: F401 (imported before any timing)
    import openvino  # noqa: F401

    import irv2
    from irv2.preprocessing import preprocess_for_eval
    from random_module import random_module

    fixture = fixture_photos()
    pool = {**fixture, **extra_photos()}
    names = list(pool)
    images = np.stack([preprocess_for_eval(pool[name]) for name in names]).astype(np.float32)
    count = args.calibration_count
    if not 1 <= count < len(names):
        parser.error(f"--calibration-count must be 1 to {len(names) - 1}")
    calibration, held_out = images[:count], images[count:]

    # The fixture weights, saved and loaded as the engine tests do; float32 reference from the plain network.
    weights = irv2.save(random_module(fixture), scratch / "random-irv2")
    plain = irv2.load(weights, engine="plain")
    reference = {
        "held_out": (plain(held_out), plain(held_out, signature=irv2.FEATURE_VECTOR)),
        "calibration": (plain(calibration), plain(calibration, signature=irv2.FEATURE_VECTOR)),
    }
    from irv2.engine.openvino_engine import convert

    started = time.perf_counter()
    ir = convert(plain.model, tuple(images.shape[1:3]))
    convert_s = time.perf_counter() - started

    settings = {"default_fast_bias_correction_true": True, "accurate_fast_bias_correction_false": False}
    results = {}
    for label, fast in settings.items():
        load_before = os.getloadavg()[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            quantized = quantize(ir.clone(), calibration, fast_bias_correction=fast)
            seconds = time.perf_counter() - started
        compiled = compile_like_the_engine(quantized, scratch / label)
        results[label] = {
            "fast_bias_correction": fast,
            "quantize_s": round(seconds, 1),
            "load_average_1min_before": round(load_before, 2),
            "held_out": errors(run_ir(compiled, held_out), reference["held_out"], names[count:]),
            "calibration_images": errors(run_ir(compiled, calibration), reference["calibration"], names[:count]),
        }
        print(f"{label}: {results[label]['quantize_s']} s", file=sys.stderr, flush=True)

    from irv2.machine import cpu_name

    report = {
        "what": "nncf.quantize (preset MIXED, MatMul ignored, subset_size=N) of irv2's test fixture weights, "
        "fast_bias_correction True (NNCF default) vs False (irv2's accurate setting)",
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "calibration_photos": names[:count],
        "held_out_photos": names[count:],
        "metric": "relative_error = max|int8 - float32| / max|float32| over the set (the int8 test's), "
        "top-1 agreement with float32, lowest cosine of features",
        "convert_s": round(convert_s, 1),
        "results": results,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
