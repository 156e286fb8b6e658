"""What the ONNX Runtime engine's one-off conversion costs, three ways, and the ONNX export, two ways, on one
seeded random 1001-class network:

- ``torchscript``: torch's TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) on the plain network;
- ``dynamo``: torch's ``torch.export``-based exporter (``onnx_graph.write_onnx``), as the engine converted before;
- ``builder``: ``onnx_builder.write_network_onnx``, the graph written with ``onnx.helper`` from the fused weights;
- ``export-dynamo`` and ``export-builder``: ``irv2 export --format onnx --dynamic-size``'s graph (input
  ``images``, NHWC in [0, 1], free height and width, metadata), by the ``torch.export``-based exporter on
  ``ExportWrapper`` as ``export.onnx.write_onnx`` ran it before, and by the builder as it runs it now.

    .venv/bin/python benchmarks/onnx_conversion.py [--ways torchscript,dynamo,builder,...] [--repeat 1] [--out FILE]

Each way converts in a fresh Python process (torch and irv2 imported, the weights loaded, then the clock starts),
so every figure includes the lazy imports and first-call costs a user pays once; ``--repeat N`` converts N times
in that process and reports each (the later ones warm). The parent then opens each file in ONNX Runtime and
compares its logits and features on the bundled photo pair with the plain network's, as ``max |diff| / max |ref|``
(the export ways take the photos themselves, the others the network's input made from them).
Prints JSON (the CPU is named under ``machine``); ``--out FILE`` saves it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conversion_support import SIZE, load_network, network_and_reference, run

WAYS = ("torchscript", "dynamo", "builder", "export-dynamo", "export-builder")


def main() -> None:
    run(__doc__, WAYS, _measure, _child)


def _measure(ways: list[str], repeat: int) -> dict:
    import onnx
    import onnxruntime
    import torch

    from irv2.bench.runner import machine_info
    from irv2.export.wrapper import relative_error

    scratch, weights, images, x, reference = network_and_reference("irv2-onnx-conversion-")

    results = {}
    for way in ways:
        path = scratch / f"{way}.onnx"
        command = [sys.executable, __file__, "--convert", way, "--weights", str(weights), "--to", str(path)]
        started = time.perf_counter()
        child = subprocess.run([*command, "--repeat", str(repeat)], capture_output=True, text=True, check=False)
        process_s = time.perf_counter() - started
        if child.returncode != 0:
            results[way] = {"error": child.stderr.strip().splitlines()[-1:]}
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["process_s"] = round(process_s, 2)
        result["file_mb"] = round(path.stat().st_size / 1e6, 1)
        header = onnx.load(str(path), load_external_data=False)
        result["nodes"] = len(header.graph.node)
        result["ops"] = sorted({node.op_type for node in header.graph.node})
        started = time.perf_counter()
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        result["session_open_s"] = round(time.perf_counter() - started, 2)
        names = [output.name for output in session.get_outputs()]
        feed = {"images": images} if way.startswith("export") else {"x": x}
        got = dict(zip(names, session.run(names, feed), strict=True))
        result["error"] = {name: float(f"{relative_error(got[name], ref):.3g}") for name, ref in reference.items()}
        result["batch1_ms"] = _latency_ms(session, {name: value[:1] for name, value in feed.items()})
        results[way] = result
        del session
        path.unlink()
    return {
        "machine": machine_info(torch.device("cpu")),
        "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, **_onnxscript_version()},
        "network": "random InceptionResNetV2, 1001 classes, BatchNorm statistics measured on the bundled photos",
        "image_size": list(SIZE),
        "error_measure": "max |onnxruntime - plain network| / max |plain network|, 2 photos",
        "convert_s_means": "the conversion call in a fresh process (torch, irv2 and the weights already loaded)",
        "ways": results,
    }


def _child(way: str, weights: Path, path: Path, repeat: int) -> None:

    model = load_network(weights)
    ways = {"torchscript": _torchscript, "dynamo": _dynamo, "builder": _builder}
    convert = {**ways, "export-dynamo": _export_dynamo, "export-builder": _export_builder}[way]
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        convert(model, path)
        seconds.append(round(time.perf_counter() - started, 2))
    print(json.dumps({"convert_s": seconds[0], "convert_s_each": seconds}))


def _torchscript(model, path: Path) -> None:
    import torch

    from irv2.engine.onnx_graph import OPSET, NetworkOutputs, quiet_exporter

    wrapper = NetworkOutputs(model).eval()
    batch = {name: {0: "batch"} for name in ("x", *wrapper.output_names)}
    with quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            wrapper,
            (torch.zeros(1, 3, *SIZE),),
            str(path),
            input_names=["x"],
            output_names=list(wrapper.output_names),
            dynamic_axes=batch,
            opset_version=OPSET,
            dynamo=False,
        )


def _dynamo(model, path: Path) -> None:
    """What ``onnxruntime_engine._export_graph`` ran before the builder: the plain network through
    ``onnx_graph.write_onnx`` (written out here, as the engine itself now calls the builder)."""
    import torch

    from irv2.engine.onnx_graph import NetworkOutputs, write_onnx

    wrapper = NetworkOutputs(model).eval()
    write_onnx(
        wrapper,
        path,
        example=torch.zeros(2, 3, *SIZE),
        input_name="x",
        output_names=wrapper.output_names,
        dynamic_axes={0: torch.export.Dim("batch", min=1)},
    )


def _builder(model, path: Path) -> None:
    from irv2.engine.onnx_builder import write_network_onnx

    write_network_onnx(model, path, SIZE)


def _export_dynamo(model, path: Path) -> None:
    """What ``export.onnx.write_onnx`` ran before the builder (written out here), with ``--dynamic-size``."""
    import torch

    from irv2.engine.onnx_graph import write_onnx
    from irv2.export.wrapper import ExportWrapper

    wrapper = ExportWrapper(model).eval()
    axes = {
        index: torch.export.Dim(name, min=low)
        for index, name, low in [(0, "batch", 1), (1, "height", 75), (2, "width", 75)]
    }
    write_onnx(
        wrapper,
        path,
        example=torch.zeros(2, *SIZE, 3),
        input_name="images",
        output_names=wrapper.output_names,
        dynamic_axes=axes,
        metadata=_EXPORT_METADATA,
    )


def _export_builder(model, path: Path) -> None:
    """``export.onnx.write_onnx`` now, with ``--dynamic-size``."""
    from irv2.engine.onnx_builder import EXPORT, write_network_onnx

    write_network_onnx(model, path, SIZE, interface=EXPORT, dynamic_size=True, metadata=_EXPORT_METADATA)


# A stand-in for export_metadata's strings: their size (the labels, about 20 kB) is noise beside the weights.
_EXPORT_METADATA = {"architecture": json.dumps("inception_resnet_v2"), "image_size": json.dumps(list(SIZE))}


def _latency_ms(session, feed: dict, runs: int = 5) -> float:
    """Median batch-1 run after two warm-ups: the graph's own speed, to see that the rewrite costs none."""
    for _ in range(2):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return round(1000 * sorted(times)[len(times) // 2], 1)


def _onnxscript_version() -> dict[str, str]:
    try:
        import onnxscript
    except ImportError:
        return {}
    return {"onnxscript": onnxscript.__version__}


if __name__ == "__main__":
    os.environ.setdefault("IRV2_ENGINE", "torch")
    main()
