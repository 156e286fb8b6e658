"""What goes wrong, said clearly, and never leaving a partial export behind (fast: the writers are stubbed)."""

from __future__ import annotations

import errno
import sys

import numpy as np
import pytest
import torch
from export_support import FLOWERS

from irv2.api.module import Module, ModuleInfo
from irv2.cli import export as export_cli
from irv2.cli.main import main
from irv2.errors import DiskFullError
from irv2.export import ExportError, MissingDependencyError, OutputExistsError, check_export, export, torchscript
from irv2.export import wrapper as export_wrapper_module
from irv2.model import InceptionResNetV2


def _cli(capsys, *args) -> tuple[int, str, str]:
    status = main(["export", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def small_checks(monkeypatch):
    """Check exports on one 75 x 75 image instead of three 299-pixel batches: these tests are about files."""
    rng = np.random.default_rng(0)
    # irv2.export.api imports these from irv2.export.wrapper when an export runs (the wrapper needs torch).
    monkeypatch.setattr(
        export_wrapper_module,
        "check_images",
        lambda size, any_size: [rng.uniform(0, 1, (1, 75, 75, 3)).astype("f4")],
    )


def _stub_writer(monkeypatch, *, content=b"exported", fail=None, scale=1.0):
    """Replace the TorchScript writer and reader: write ``content`` (then raise ``fail``); read back irv2's
    own outputs times ``scale``."""

    def write(wrapper, path, *, image_size, metadata_json):
        path.write_bytes(content)
        if fail is not None:
            raise fail

    def run(path, images, output_names):
        expected = export_wrapper_module.reference_outputs(wrapper_seen[0], images)
        return {name: value * scale for name, value in expected.items()}

    wrapper_seen = []
    real_wrapper = export_wrapper_module.export_wrapper

    def export_wrapper(module):
        wrapper_seen.append(real_wrapper(module))
        return wrapper_seen[-1]

    monkeypatch.setattr(export_wrapper_module, "export_wrapper", export_wrapper)
    monkeypatch.setattr(torchscript, "write_torchscript", write)
    monkeypatch.setattr(torchscript, "run_torchscript", run)


def test_unknown_format_lists_the_formats(tmp_path, flowers_module):
    with pytest.raises(ExportError, match="unknown export format 'coreml'; choose one of onnx, torchscript"):
        export(flowers_module, tmp_path / "m.mlpackage", format="coreml")
    with pytest.raises(ExportError, match="cannot tell the format from the name"):
        check_export(tmp_path / "model.bin")
    assert check_export(tmp_path / "model.ONNX") == "onnx" and check_export(tmp_path / "m.pt") == "torchscript"
    assert check_export(tmp_path / "m.tflite") == "litert" and check_export(tmp_path / "m.pte") == "executorch"


def test_cli_bad_format_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--format", "coreml", "-o", str(tmp_path / "m.mlpackage")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'coreml'" in capsys.readouterr().err
    status, out, err = _cli(capsys, "-o", tmp_path / "model.bin")
    assert (status, out) == (2, "")
    assert err == f"irv2: error: {tmp_path / 'model.bin'}: cannot tell the format from the name; choose one of " \
        "onnx, torchscript, savedmodel, openvino, litert, executorch\n"  # fmt: skip


def test_cli_refuses_to_overwrite_without_force(capsys, tmp_path, weights_dir):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"precious")
    status, stdout, err = _cli(capsys, "--weights", weights_dir, "-o", out)
    assert (status, stdout) == (2, "")
    assert err == f"irv2: error: {out}: already exists; pass --force (overwrite=True) to replace it\n"
    assert out.read_bytes() == b"precious"


@pytest.mark.tensorflow  # check_export(format="savedmodel") asks for the tensorflow extra before looking at OUT
def test_force_replaces_only_the_same_kind(tmp_path, flowers_module):
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(OutputExistsError, match="exists and is not a file"):
        check_export(tmp_path / "folder.pt", overwrite=True)
    (tmp_path / "not_a_savedmodel").mkdir()
    (tmp_path / "not_a_savedmodel" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not a SavedModel folder"):
        check_export(tmp_path / "not_a_savedmodel", format="savedmodel", overwrite=True)
    with pytest.raises(ExportError, match="does not exist"):
        check_export(tmp_path / "missing" / "m.onnx")


@pytest.mark.parametrize(
    ("module_name", "extra", "format"),
    [
        ("onnxruntime", "onnx", "onnx"),
        ("tensorflow", "tensorflow", "savedmodel"),
        # The litert extra is TensorFlow and LiteRT: only LiteRT is missing where TensorFlow is installed.
        pytest.param("ai_edge_litert", "litert", "litert", marks=pytest.mark.tensorflow),
        ("executorch", "executorch", "executorch"),
    ],
)
def test_missing_extra_names_the_pip_extra(capsys, monkeypatch, tmp_path, module_name, extra, format):
    monkeypatch.setitem(sys.modules, module_name, None)  # makes `import module_name` raise ImportError
    with pytest.raises(MissingDependencyError) as error:
        check_export(tmp_path / "out", format=format)
    assert isinstance(error.value, ImportError)  # also catchable the usual way for optional dependencies
    status, out, err = _cli(capsys, "--format", format, "-o", tmp_path / "out")
    assert (status, out) == (1, "")
    assert err == (f"irv2: error: exporting to {format} needs {module_name}: pip install 'irv2[{extra}]'\n")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_nothing(monkeypatch, tmp_path, flowers_module, small_checks):
    _stub_writer(monkeypatch, content=b"half a mod", fail=RuntimeError("exporter crashed\n  at line 2"))
    with pytest.raises(ExportError) as error:
        export(flowers_module, tmp_path / "m.pt")
    # One line for the user; the exporter's own exception stays chained for debugging.
    assert str(error.value) == (
        f"the torchscript export failed (RuntimeError: exporter crashed; torch {torch.__version__}); "
        "nothing was written"
    )
    assert isinstance(error.value.__cause__, RuntimeError)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_leaves_the_old_file_and_says_how_much_room_to_make(capsys, monkeypatch, tmp_path, small_checks):
    # An untrained 5-class network (no photos to calibrate on: nothing is run), the full architecture all the same:
    # its float32 weights are what a real export holds.
    module = Module(InceptionResNetV2(num_classes=5).eval(), ModuleInfo(5, FLOWERS))
    target = tmp_path / "m.pt"
    target.write_bytes(b"the previous export")
    _stub_writer(monkeypatch, content=b"half an export", fail=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError) as error:
        export(module, target, overwrite=True)
    assert str(error.value) == (
        f"{target}: no space left on the device. Kept: no part of the export (what was there before is unchanged). "
        f"To resume: free about 227.7 MB in {tmp_path} and export again."
    )
    assert error.value.__cause__ is None and error.value.__suppress_context__
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"] and target.read_bytes() == b"the previous export"

    target.unlink()
    monkeypatch.setattr(export_cli, "load_module", lambda *args, **kwargs: module)
    status, out, err = _cli(capsys, "-o", target)
    assert (status, out) == (1, "")  # a failure while running, not "cannot write (No space left on device)"
    assert err.startswith(f"irv2: error: {target}: no space left on the device. Kept: no part of the export (nothing")
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_an_inexact_export_is_refused_and_the_old_file_kept(monkeypatch, tmp_path, flowers_module, small_checks):
    target = tmp_path / "m.pt"
    target.write_bytes(b"the previous export")
    _stub_writer(monkeypatch, content=b"an inexact export", scale=1.001)
    with pytest.raises(ExportError, match=r"does not reproduce irv2: \w+ differs by 0.001 .*nothing was written"):
        export(flowers_module, target, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"] and target.read_bytes() == b"the previous export"


def test_overwrite_replaces_the_file_in_one_step(monkeypatch, tmp_path, flowers_module, small_checks):
    target = tmp_path / "m.pt"
    target.write_bytes(b"the previous export")
    _stub_writer(monkeypatch, content=b"the new export")
    result = export(flowers_module, target, overwrite=True)
    assert result.path == target and result.errors == {"logits": 0.0, "features": 0.0}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"] and target.read_bytes() == b"the new export"


def test_cli_help_lists_the_formats(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "{onnx,torchscript,savedmodel,openvino,litert,executorch}" in help_text and "--dynamic-size" in help_text
    assert "--dtype {float32,int8}" in help_text and "--calibration PATH" in help_text


@pytest.mark.parametrize("name", ["m.tflite", "m.pte"])
def test_on_device_formats_refuse_a_free_size(tmp_path, flowers_module, name):
    with pytest.raises(
        ExportError, match=r"takes the module's own image size; --dynamic-size .* is for onnx, savedmodel"
    ):
        export(flowers_module, tmp_path / name, dynamic_size=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tensorflow
def test_a_converter_that_refuses_an_operator_names_it_and_its_version(monkeypatch, tmp_path, flowers_module):
    import tensorflow as tf

    class Refusing:
        def __init__(self, *args):
            pass

        def convert(self):
            # The shape of TFLiteConverter's refusals: the operator is named lines below the first.
            raise RuntimeError("Could not translate MLIR to FlatBuffer.\n<unknown>:0: error: 'tf.FancyOp' op is "
                               "neither a custom op nor a flex op")  # fmt: skip

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_concrete_functions", Refusing)
    (tmp_path / "m.tflite").write_bytes(b"the old file")
    with pytest.raises(ExportError) as error:
        export(flowers_module, tmp_path / "m.tflite", overwrite=True)
    assert str(error.value) == (
        "the litert export failed (RuntimeError: Could not translate MLIR to FlatBuffer.; operator tf.FancyOp; "
        f"tensorflow {tf.__version__}); nothing was written"
    )
    assert [path.name for path in tmp_path.iterdir()] == ["m.tflite"]
    assert (tmp_path / "m.tflite").read_bytes() == b"the old file"
