"""What making an OpenVINO model of the network costs, old way against new, on one seeded random 1001-class network:

- ``traced``: the OpenVINO engine's conversion before the builder, ``ov.convert_model`` tracing
  ``NetworkOutputs`` (input ``x``, NCHW in [-1, 1]) with OpenVINO's PyTorch front end;
- ``builder``: ``openvino_engine.convert`` now, the graph from ``onnx_builder`` read by OpenVINO's ONNX
  front end from memory;
- ``export-traced`` and ``export-builder``: the same two ways for ``irv2.export``'s OpenVINO IR (input
  ``images``, NHWC in [0, 1], layout and rt_info set), ``export.openvino.write_openvino`` before and now.

    .venv/bin/python benchmarks/openvino_conversion.py [--ways traced,builder,...] [--repeat 1] [--out FILE]

Each way converts in a fresh Python process (torch, OpenVINO and irv2 imported, the weights loaded, then the
clock starts), so each figure includes the lazy imports and first-call costs a user pays once; ``--repeat N``
converts N times in that process and reports each (the later ones warm). ``convert_s`` is the conversion to an
``ov.Model``, ``save_s`` writing the IR (``compress_to_fp16=False``), as the engine's cache and the export do.
The parent then compiles each IR for the CPU with the f32 hint and compares its logits and features on the
bundled photo pair with the plain network's, as ``max |diff| / max |ref|``, and times batch-1 calls (noisy on a
shared machine: a check that the graph costs nothing at run time, not a speed figure). Prints JSON (the CPU is
named under ``machine``); ``--out FILE`` saves it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conversion_support import SIZE, load_network, network_and_reference, run

WAYS = ("traced", "builder", "export-traced", "export-builder")


def main() -> None:
    run(__doc__, WAYS, _measure, _child)


def _measure(ways: list[str], repeat: int) -> dict:
    import numpy as np
    import openvino as ov
    import torch

    from irv2.bench.runner import machine_info
    from irv2.export.wrapper import relative_error

    scratch, weights, images, x, reference = network_and_reference("irv2-openvino-conversion-")

    core = ov.Core()
    results = {}
    for way in ways:
        folder = scratch / way
        command = [sys.executable, __file__, "--convert", way, "--weights", str(weights), "--to", str(folder)]
        started = time.perf_counter()
        child = subprocess.run([*command, "--repeat", str(repeat)], capture_output=True, text=True, check=False)
        process_s = time.perf_counter() - started
        if child.returncode != 0:
            results[way] = {"error": child.stderr.strip().splitlines()[-1:]}
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["process_s"] = round(process_s, 2)
        result["bin_mb"] = round((folder / "model.bin").stat().st_size / 1e6, 1)
        ir = core.read_model(str(folder / "model.xml"))
        kinds = Counter(op.get_type_name() for op in ir.get_ordered_ops())
        result["ops"] = {kind: kinds[kind] for kind in ("Convolution", "Split", "MatMul", "Transpose") if kinds[kind]}
        result["rt_info"] = sorted(ir.get_rt_info().keys())
        result["input"] = f"{ir.inputs[0].get_any_name()} {ir.inputs[0].get_partial_shape()}"
        started = time.perf_counter()
        compiled = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        result["compile_s"] = round(time.perf_counter() - started, 2)
        feed = images if way.startswith("export") else x
        got = {output.get_any_name(): np.array(value) for output, value in compiled(feed).items()}
        result["error"] = {name: float(f"{relative_error(got[name], ref):.3g}") for name, ref in reference.items()}
        result["batch1_ms"] = _latency_ms(compiled, feed[:1])
        results[way] = result
        del compiled, ir
        shutil.rmtree(folder)
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "machine": machine_info(torch.device("cpu")),
        "versions": {"openvino": ov.__version__, "torch": torch.__version__},
        "network": "random InceptionResNetV2, 1001 classes, BatchNorm statistics measured on the bundled photos",
        "image_size": list(SIZE),
        "error_measure": "max |OpenVINO f32 - plain network| / max |plain network|, 2 photos",
        "convert_s_means": "conversion to an ov.Model in a fresh process (torch, irv2 and the weights loaded)",
        "ways": results,
    }


def _child(way: str, weights: Path, folder: Path, repeat: int) -> None:
    import openvino as ov

    model = load_network(weights)
    convert = {"traced": _traced, "builder": _builder, "export-traced": _export_traced}.get(way, _export_builder)
    seconds, saves = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        ir = convert(model)
        seconds.append(round(time.perf_counter() - started, 2))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        started = time.perf_counter()
        ov.save_model(ir, str(folder / "model.xml"), compress_to_fp16=False)
        saves.append(round(time.perf_counter() - started, 2))
        del ir
    print(json.dumps({"convert_s": seconds[0], "convert_s_each": seconds, "save_s": saves[0], "save_s_each": saves}))


def _traced(model):
    """What ``openvino_engine.convert`` ran before the builder (written out here)."""
    import warnings

    import openvino as ov
    import torch

    from irv2.engine.onnx_graph import NetworkOutputs

    wrapper = NetworkOutputs(model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        ir = ov.convert_model(wrapper, example_input=torch.zeros(2, 3, *SIZE), input=[(-1, 3, *SIZE)])
    ir.inputs[0].get_tensor().set_names({"x"})
    for output, name in zip(ir.outputs, wrapper.output_names, strict=True):
        output.get_tensor().set_names({name})
    return ir


def _builder(model):
    from irv2.engine.openvino_engine import convert

    return convert(model, SIZE)


def _export_traced(model):
    """What ``export.openvino.write_openvino`` ran before the builder, up to saving (written out here)."""
    import warnings

    import openvino as ov
    import torch

    from irv2.export.wrapper import ExportWrapper

    wrapper = ExportWrapper(model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        ir = ov.convert_model(wrapper, example_input=torch.zeros(2, *SIZE, 3), input=[ov.PartialShape([-1, *SIZE, 3])])
    _label_export(ir, wrapper.output_names)
    return ir


def _export_builder(model):
    """``export.openvino.write_openvino``'s conversion now, up to saving (the function itself also saves)."""
    import openvino as ov

    from irv2.engine.onnx_builder import EXPORT, network_onnx
    from irv2.export.wrapper import ExportWrapper

    graph = network_onnx(model, SIZE, interface=EXPORT, merge=False)
    ir = ov.Core().read_model(graph.SerializeToString())
    ir.reshape(ov.PartialShape([-1, *SIZE, 3]))
    _label_export(ir, ExportWrapper(model).output_names)
    return ir


def _label_export(ir, output_names) -> None:
    """The export's names, layout and a stand-in rt_info entry, as ``write_openvino`` sets them either way."""
    import openvino as ov

    ir.inputs[0].get_tensor().set_names({"images"})
    ir.inputs[0].get_node().set_layout(ov.Layout("NHWC"))
    for output, name in zip(ir.outputs, output_names, strict=True):
        output.get_tensor().set_names({name})
    ir.set_rt_info(json.dumps("benchmark"), ["irv2", "producer"])


def _latency_ms(compiled, images, runs: int = 5) -> float:
    """Median batch-1 call after two warm-ups."""
    request = compiled.create_infer_request()
    for _ in range(2):
        request.infer(images)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        request.infer(images)
        times.append(time.perf_counter() - started)
    return round(1000 * sorted(times)[len(times) // 2], 1)


if __name__ == "__main__":
    os.environ.setdefault("IRV2_ENGINE", "torch")
    main()
