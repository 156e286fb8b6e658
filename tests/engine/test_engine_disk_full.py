"""An engine conversion whose disk fills up: a DiskFullError naming the cached file, saying that nothing of the
conversion is kept, how much room it needs and that IRV2_HOME can point elsewhere; the engines folder keeps
nothing a later load would have to doubt, and a run with room converts. The converters are stand-ins that write
a few bytes (the real ones take seconds on full-size weights; what matters here is what a failed write leaves)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disk_full_support import FullDisk
from irv2 import atomic
from irv2.engine import onnxruntime_engine
from irv2.errors import DiskFullError
from irv2.hub.digests import file_sha256
from requires import require

SIZE = (75, 75)


@pytest.fixture
def engines(tmp_path, monkeypatch):
    """A fresh ``IRV2_HOME``; returns its engines folder."""
    monkeypatch.setenv("IRV2_HOME", str(tmp_path))
    return tmp_path / "engines"


@pytest.fixture
def network():
    """Any network will do for the cache's key and the room it needs: 1010 float32 parameters, 4.0 kB."""
    return torch.nn.Linear(100, 10)


def _advice(folder, room: str) -> str:
    return (
        f"Kept: nothing of this conversion (its unfinished files were deleted). To resume: {room} in {folder}, or set "
        "IRV2_HOME to a folder on a disk with room, and run it again: the engine is converted then."
    )


def _only_locks(folder) -> bool:
    return all(p.name.endswith(".lock") for p in folder.iterdir())


def test_onnx_graph_that_fills_the_disk(engines, network, monkeypatch):
    require("onnxruntime", "the ONNX Runtime engine: pip install 'irv2[onnx]'")
    disk = FullDisk(free=1000)

    def export_graph(model, path, image_size):  # a converter that meets the full disk a quarter of the way in
        with disk.open(path, "wb") as f:
            f.write(b"g" * 4040)

    monkeypatch.setattr(onnxruntime_engine, "_export_graph", export_graph)
    path = engines / f"{onnxruntime_engine._cache_key(network, SIZE)}.float32.onnx"
    with pytest.raises(DiskFullError) as caught:
        onnxruntime_engine.build_engine_file(network, SIZE)
    assert str(caught.value) == f"{path}: no space left on the device. " + _advice(engines, "free about 4.0 kB")
    assert caught.value.__suppress_context__ and _only_locks(engines)  # not even the scratch folder

    disk.free = 10**6  # room made
    assert onnxruntime_engine.build_engine_file(network, SIZE) == path
    assert path.with_name(path.name + ".sha256").read_text() == file_sha256(path) + "\n"


def test_onnx_checksum_that_finds_no_room(engines, network, monkeypatch):
    """The graph fitted, its checksum did not: no file is left that a load would convert again anyway."""
    require("onnxruntime", "the ONNX Runtime engine: pip install 'irv2[onnx]'")
    monkeypatch.setattr(onnxruntime_engine, "_export_graph", lambda model, path, size: path.write_bytes(b"graph"))
    monkeypatch.setattr(atomic, "open", FullDisk().open, raising=False)
    path = engines / f"{onnxruntime_engine._cache_key(network, SIZE)}.float32.onnx"
    with pytest.raises(DiskFullError) as caught:
        onnxruntime_engine.build_engine_file(network, SIZE)
    assert str(caught.value) == f"{path}.sha256: no space left on the device. " + _advice(engines, "free about 4.0 kB")
    assert _only_locks(engines)


@pytest.mark.parametrize(("kind", "room"), [("float32", "free about 4.0 kB"), ("int8", "free some space")])
def test_openvino_model_that_fills_the_disk(engines, network, monkeypatch, kind, room):
    require("openvino", "the OpenVINO engine: pip install 'irv2[openvino]'")
    from irv2.engine import openvino_engine

    disk = FullDisk(free=1000)

    def write_ir(model, folder, kind, calibration, image_size):
        folder.mkdir()
        (folder / "model.xml").write_text("<net/>")
        with disk.open(folder / "model.bin", "wb") as f:
            f.write(b"w" * 4040)

    monkeypatch.setattr(openvino_engine, "_write_ir", write_ir)
    calibration = np.zeros((2, *SIZE, 3), np.float32) if kind == "int8" else None
    with pytest.raises(DiskFullError) as caught:
        openvino_engine.cached_ir(network, kind, calibration, SIZE)
    [path] = [p for p in engines.iterdir() if p.name.endswith(".lock")]
    assert str(caught.value) == f"{path.with_suffix('')}: no space left on the device. " + _advice(engines, room)
    assert _only_locks(engines)
