"""OpenVINO IR export, read back with OpenVINO itself: the command line end to end, and a features-only export
whose height and width are free, written over an older version of itself."""

from __future__ import annotations

import json
import sys

import numpy as np
import openvino as ov
import pytest
from export_support import assert_matches_module

import irv2
from cli_runner import run_irv2
from irv2.cli.main import main
from irv2.export import ExportError, MissingDependencyError, OutputExistsError, check_export, export, export_metadata

# OpenVINO's float32 kernels against irv2's: what this format reaches (the limit for every format is 1e-4).
FLOAT32_TOLERANCE = 1e-5
EXACT = {"INFERENCE_PRECISION_HINT": "f32"}  # else OpenVINO computes in bfloat16 on CPUs with AMX


def _compile(folder) -> tuple[ov.Model, ov.CompiledModel]:
    core = ov.Core()
    model = core.read_model(str(folder / "model.xml"))
    return model, core.compile_model(model, "CPU", EXACT)


def _run(compiled: ov.CompiledModel, images: np.ndarray) -> dict[str, np.ndarray]:
    results = compiled({"images": images})
    return {output.get_any_name(): np.array(results[output]) for output in compiled.outputs}


def _assert_exact(actual: dict[str, np.ndarray], module, images: np.ndarray) -> None:
    errors = assert_matches_module(actual, module, images)
    assert max(errors.values()) <= FLOAT32_TOLERANCE, errors


def _metadata(model: ov.Model) -> dict:
    return {key: json.loads(value.astype(str)) for key, value in model.get_rt_info()["irv2"].items()}


@pytest.fixture(scope="session")
def cli_ir(tmp_path_factory, weights_dir, cli_env):
    """``irv2 export --weights DIR --format openvino -o OUT`` as a user runs it: (OUT, the finished process)."""
    out = tmp_path_factory.mktemp("openvino") / "1"  # a model version, as OpenVINO Model Server lays them out
    result = run_irv2("export", "--weights", weights_dir, "--format", "openvino", "-o", out, env=cli_env)
    return out, result


@pytest.fixture(scope="session")
def cli_model(cli_ir) -> tuple[ov.Model, ov.CompiledModel]:
    return _compile(cli_ir[0])


@pytest.fixture(scope="session")
def features_ir(tmp_path_factory, features_module):
    """The feature-vector module, height and width free, exported with the check over an older export folder:
    (folder, ExportResult). OpenVINO reads irv2's ONNX graph: its PyTorch front end (tracing) is not called."""
    folder = tmp_path_factory.mktemp("openvino") / "features"
    folder.mkdir()
    (folder / "model.xml").write_text("<net>the previous version</net>")
    (folder / "model.bin").write_bytes(b"old weights")

    def no_tracing(*args, **kwargs):
        raise AssertionError("the export must not trace the network with ov.convert_model")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ov, "convert_model", no_tracing)
        result = export(features_module, folder, format="openvino", dynamic_size=True, overwrite=True)
    return folder, result


def test_cli_exports_openvino_and_reports_its_error(cli_ir):
    out, result = cli_ir
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n"  # stdout holds only the result
    assert "(openvino, 1001 classes); max relative error vs irv2: logits" in result.stderr
    # Only our own summary line on stderr: no converter progress, warnings or tracebacks.
    assert result.stderr.count("\n") == 1, result.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary folder left beside it
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "model.xml"]


def test_openvino_interface_is_tf_hubs(cli_model):
    model, _ = cli_model
    (images,) = model.inputs
    assert images.get_names() == {"images"} and images.get_element_type() == ov.Type.f32
    assert images.get_partial_shape() == ov.PartialShape([-1, 299, 299, 3])  # any batch, TF-Hub's size
    assert images.get_node().get_layout() == ov.Layout("NHWC")
    outputs = {output.get_any_name(): output.get_partial_shape() for output in model.outputs}
    assert outputs == {"logits": ov.PartialShape([-1, 1001]), "features": ov.PartialShape([-1, 1536])}
    assert all(output.get_element_type() == ov.Type.f32 for output in model.outputs)


@pytest.mark.parametrize("batch", [slice(0, 1), slice(1, 4)], ids=["batch1", "batch3"])
def test_openvino_matches_irv2(cli_model, imagenet_module, images, batch):
    _assert_exact(_run(cli_model[1], images[batch]), imagenet_module, images[batch])


def test_openvino_weights_stay_float32(cli_model):
    model, _ = cli_model
    constants = [op for op in model.get_ordered_ops() if op.get_type_name() == "Constant"]
    kernels = {op.get_element_type() for op in constants if op.get_output_partial_shape(0).rank.get_length() == 4}
    assert kernels == {ov.Type.f32}  # not float16 (OpenVINO's default when saving)
    assert ov.Type.f16 not in {op.get_element_type() for op in constants}


def test_openvino_carries_labels_and_preprocessing(cli_model, weights_dir):
    metadata = _metadata(cli_model[0])
    assert metadata == export_metadata(irv2.load(weights_dir), format="openvino", dynamic_size=False)
    assert len(metadata["labels"]) == 1001 and metadata["num_classes"] == 1001
    assert metadata["preprocessing"]["central_fraction"] == 0.875
    assert metadata["inputs"]["images"] == {
        "dtype": "float32", "shape": ["batch", 299, 299, 3], "layout": "NHWC", "range": [0, 1]
    }  # fmt: skip


def test_openvino_without_dynamic_size_refuses_other_sizes(cli_model, odd_images):
    with pytest.raises(RuntimeError, match="Can't set the input tensor"):
        _run(cli_model[1], odd_images)


def test_features_only_openvino_replaced_the_old_version_and_was_checked(features_ir):
    folder, result = features_ir
    assert result.path == folder and result.format == "openvino"
    assert set(result.errors) == {"features"} and result.errors["features"] <= FLOAT32_TOLERANCE
    assert sorted(p.name for p in folder.parent.iterdir()) == ["features"]  # nothing left aside
    assert sorted(p.name for p in folder.iterdir()) == ["model.bin", "model.xml"]
    assert (folder / "model.bin").stat().st_size > 200e6


def test_features_only_openvino_has_one_output(features_ir):
    model, _ = _compile(features_ir[0])
    assert model.inputs[0].get_partial_shape() == ov.PartialShape([-1, ov.Dimension(75, -1), ov.Dimension(75, -1), 3])
    assert {output.get_any_name(): output.get_partial_shape() for output in model.outputs} == {
        "features": ov.PartialShape([-1, 1536])
    }
    metadata = _metadata(model)
    assert metadata["num_classes"] == 0 and metadata["labels"] is None
    assert metadata["inputs"]["images"]["shape"] == ["batch", "height", "width", 3]


@pytest.mark.parametrize("which", ["299", "263x320"])
def test_features_only_openvino_takes_any_size(features_ir, features_module, images, odd_images, which):
    batch = images[2:4] if which == "299" else odd_images
    _assert_exact(_run(_compile(features_ir[0])[1], batch), features_module, batch)


def test_openvino_export_is_a_folder_replaced_only_by_its_kind(tmp_path):
    assert check_export(tmp_path / "new", format="openvino") == "openvino"
    with pytest.raises(ExportError, match="cannot tell the format from the name"):
        check_export(tmp_path / "model.xml")  # a folder format is named, never guessed from a suffix
    version = tmp_path / "1"
    version.mkdir()
    (version / "model.xml").write_text("<net/>")
    with pytest.raises(OutputExistsError, match="already exists; pass --force"):
        check_export(version, format="openvino")
    assert check_export(version, format="openvino", overwrite=True) == "openvino"
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="exists and is not an OpenVINO IR folder; not replacing it"):
        check_export(tmp_path / "photos", format="openvino", overwrite=True)
    (tmp_path / "file").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="is not an OpenVINO IR folder"):
        check_export(tmp_path / "file", format="openvino", overwrite=True)


def test_missing_openvino_names_the_pip_extra(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` raise ImportError
    with pytest.raises(MissingDependencyError):
        check_export(tmp_path / "1", format="openvino")
    status = main(["export", "--format", "openvino", "-o", str(tmp_path / "1")])
    captured = capsys.readouterr()
    assert (status, captured.out) == (1, "")
    assert captured.err == "irv2: error: exporting to openvino needs openvino: pip install 'irv2[openvino]'\n"
    assert list(tmp_path.iterdir()) == []
