"""The first answer without torch: ``import irv2`` and ``irv2 --help`` import no torch, a warm run on ONNX Runtime
or OpenVINO needs none, and irv2's own exports run in an interpreter where ``import torch`` fails.

Every check runs in a fresh subprocess, as a user runs irv2. "Without torch" is made strict with a
``sitecustomize`` that puts None in ``sys.modules["torch"]``: any ``import torch`` then raises ImportError, so a
path that needed torch fails the test instead of quietly importing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import irv2
from cli_runner import run_irv2
from irv2.export.wrapper import relative_error
from requires import require
from serve.serve_support import ServerProcess

require("onnxruntime", "the ONNX Runtime engine: pip install 'irv2[onnx]'")
require("openvino", "the OpenVINO engine: pip install 'irv2[openvino]'")

PREPARING = "irv2: preparing the"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("irv2-home")


@pytest.fixture(scope="module")
def env(home) -> dict[str, str]:
    """The environment of a user's shell: irv2's own cache, no engine pinned (the suite pins torch)."""
    environment = {key: value for key, value in os.environ.items() if key != "IRV2_ENGINE"}
    environment["IRV2_HOME"] = str(home)
    return environment


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory, env) -> dict[str, str]:
    """``env`` in which ``import torch`` fails."""
    folder = tmp_path_factory.mktemp("no-torch")
    (folder / "sitecustomize.py").write_text('import sys\nsys.modules["torch"] = None  # import torch fails\n')
    return {**env, "PYTHONPATH": os.pathsep.join([str(folder), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory, photo_arrays) -> list[str]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("chelsea", "coffee", "rocket"):
        path = folder / f"{name}.jpg"
        Image.fromarray(photo_arrays[name]).save(path, quality=95)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def module(weights_dir):
    """The weights on the plain PyTorch network: the reference every torch-free answer is held to."""
    return irv2.load(weights_dir, engine="plain")


def _irv2(*args, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m irv2 ARGS`` in a fresh interpreter: what these tests check is what it imports."""
    return run_irv2(*args, env=env, fresh=True)


def _python(code: str, environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment, timeout=600
    )


def _scores(stdout: str) -> dict[str, dict[int, float]]:
    """``irv2 classify --format json`` output as {path: {class index: score}}."""
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {row["path"]: {p["index"]: p["score"] for p in row["predictions"]} for row in rows}


def _check_scores(stdout: str, module, photos: list[str]) -> None:
    """The CLI's top-5 scores are the reference module's softmax, within 1e-5, for every photo."""
    scores = _scores(stdout)
    assert sorted(scores) == sorted(photos)
    logits = module(np.stack([module.preprocess(p) for p in photos]))
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    for path, row in zip(photos, probabilities, strict=True):
        assert len(scores[path]) == 5
        for index, score in scores[path].items():
            assert abs(score - row[index]) <= 1e-5


def test_import_and_help_load_no_torch(no_torch, env):
    probe = (
        "import sys, numpy, irv2; irv2.labels(); irv2.top_k(numpy.zeros((1, 1001))); irv2.load_image; "
        "print('torch' in sys.modules)"
    )
    plain = _python(probe, env)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "False"
    for args in (["--help"], ["classify", "--help"], ["features", "--help"], ["serve", "--help"], ["info"]):
        result = _irv2(*args, env=no_torch)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert "classify" in _irv2("--help", env=no_torch).stdout


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_first_run_prepares_once_then_runs_without_torch(engine, weights_dir, photos, module, env, no_torch):
    command = ["classify", "--weights", weights_dir, "--engine", engine, "--format", "json", *photos]
    first = _irv2(*command, env=env)
    assert first.returncode == 0, first.stderr
    notices = [line for line in first.stderr.splitlines() if line.startswith(PREPARING)]
    assert len(notices) == 1 and "once" in notices[0], first.stderr
    _check_scores(first.stdout, module, photos)
    # Warm: the prepared file answers in an interpreter where torch cannot be imported, saying nothing.
    warm = _irv2(*command, env=no_torch)
    assert warm.returncode == 0, warm.stderr
    assert PREPARING not in warm.stderr
    assert _scores(warm.stdout) == _scores(first.stdout)
    # And a plain interpreter never loads torch for it.
    probe = (
        "import sys; from irv2.cli.main import main; status = main(sys.argv[1:]); "
        "print('torch' in sys.modules, file=sys.stderr); sys.exit(status)"
    )
    plain = _python(probe, env, *map(str, command))
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr.strip().splitlines()[-1] == "False"


def test_features_and_batch_job_without_torch(weights_dir, photos, module, env, no_torch, tmp_path):
    _irv2("classify", "--weights", weights_dir, "--engine", "onnxruntime", photos[0], env=env)  # prepares
    npz = tmp_path / "features.npz"
    result = _irv2("features", "--weights", weights_dir, "--engine", "onnxruntime", *photos, "-o", npz, env=no_torch)
    assert result.returncode == 0, result.stderr
    saved = np.load(npz)
    expected = module(np.stack([module.preprocess(p) for p in photos]), signature=irv2.FEATURE_VECTOR)
    assert list(saved["paths"]) == photos
    assert relative_error(saved["features"], expected) < 1e-5
    parquet = tmp_path / "rows.parquet"
    job = _irv2("classify", "--weights", weights_dir, "--engine", "onnxruntime", *photos, "-o", parquet, env=no_torch)
    assert job.returncode == 0, job.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    assert sorted(table.column("path").to_pylist()) == sorted(photos)


def test_a_prepared_module_reads_the_network_only_when_asked(weights_dir, module, env, no_torch):
    _irv2("classify", "--weights", weights_dir, "--engine", "onnxruntime", irv2.sample_image(), env=env)
    code = (
        "import sys, irv2\n"
        "m = irv2.load(sys.argv[1], engine='onnxruntime')\n"
        "print(m.engine_name, m.precision, m.has_model, m.weights_sha256())\n"
        "try:\n"
        "    m.model\n"
        "except irv2.MissingDependencyError as exc:\n"
        "    print('MissingDependencyError', exc)\n"
    )
    result = _python(code, no_torch, str(weights_dir))
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first.split() == ["onnxruntime", "float32", "False", module.weights_sha256()]
    assert second.startswith("MissingDependencyError") and "pip install torch" in second


@pytest.fixture(scope="module")
def exports(tmp_path_factory, weights_dir) -> dict[str, Path]:
    """The weights exported by ``irv2 export`` as an ONNX file and an OpenVINO folder."""
    folder = tmp_path_factory.mktemp("exports")
    source = irv2.load(weights_dir, engine="plain")
    paths = {"onnx": folder / "irv2.onnx", "openvino": folder / "irv2" / "1"}
    paths["openvino"].parent.mkdir()
    irv2.export(source, paths["onnx"])
    irv2.export(source, paths["openvino"], format="openvino")
    return paths


@pytest.mark.parametrize("kind", ["onnx", "openvino"])
def test_exports_classify_embed_and_serve_without_torch(kind, exports, photos, module, no_torch, tmp_path):
    path = exports[kind]
    result = _irv2("classify", "--weights", path, "--format", "json", *photos, env=no_torch)
    assert result.returncode == 0, result.stderr
    _check_scores(result.stdout, module, photos)
    npz = tmp_path / "features.npz"
    result = _irv2("features", "--weights", path, *photos, "-o", npz, env=no_torch)
    assert result.returncode == 0, result.stderr
    expected = module(np.stack([module.preprocess(p) for p in photos]), signature=irv2.FEATURE_VECTOR)
    assert relative_error(np.load(npz)["features"], expected) < 1e-5
    # What needs the PyTorch network says so, naming torch.
    code = (
        "import sys, numpy, irv2\n"
        "m = irv2.load(sys.argv[1])\n"
        "try:\n"
        "    m.endpoints(numpy.zeros((1, 299, 299, 3), numpy.float32), 'Mixed_6a')\n"
        "except irv2.MissingDependencyError as exc:\n"
        "    print('MissingDependencyError', exc)\n"
    )
    refused = _python(code, no_torch, str(path))
    assert refused.returncode == 0, refused.stderr
    assert refused.stdout.startswith("MissingDependencyError") and "torch" in refused.stdout
    # The server answers TF Serving's predict with the same logits.
    images = np.stack([module.preprocess(p) for p in photos[:2]])
    with ServerProcess(path, env=no_torch) as server:
        assert server.request("GET", "/v2/health/ready").status == 200
        answer = server.request("POST", "/v1/models/irv2:predict", {"instances": images.tolist()})
        assert answer.status == 200, answer.body
        logits = np.array(answer.json()["predictions"], np.float32)
        assert relative_error(logits, module(images)) < 1e-5
        assert server.stop() == 0


def test_a_damaged_prepared_file_is_converted_again(weights_dir, photos, module, env):
    command = ["classify", "--weights", weights_dir, "--engine", "onnxruntime", "--format", "json", photos[0]]
    assert _irv2(*command, env=env).returncode == 0
    (engine_file,) = Path(env["IRV2_HOME"], "engines").glob("*.float32.onnx")
    with open(engine_file, "r+b") as f:  # cut short, as a full disk or a killed copy would leave it
        f.truncate(engine_file.stat().st_size // 2)
    again = _irv2(*command, env=env)
    assert again.returncode == 0, again.stderr
    assert PREPARING in again.stderr
    _check_scores(again.stdout, module, photos[:1])


def test_weights_never_prepared_need_torch_once_and_say_so(weights_dir, no_torch, tmp_path):
    """Without torch, weights that no engine file was prepared for cannot be read: one clear line, no traceback."""
    fresh = {**no_torch, "IRV2_HOME": str(tmp_path / "empty-home")}
    result = _irv2("classify", "--weights", weights_dir, "--engine", "onnxruntime", irv2.sample_image(), env=fresh)
    assert result.returncode == 1
    assert result.stderr.startswith("irv2: error: reading these weights into the network (engine 'onnxruntime'")
    assert "pip install torch" in result.stderr and "Traceback" not in result.stderr


def test_functions_named_like_their_packages_stay_functions(env):
    """``irv2.labels()``, ``irv2.evaluate(...)`` and the others share their names with irv2's packages; importing
    those packages' modules later, in any order, must not turn the functions into modules."""
    code = (
        "import irv2, irv2.labels.decode, irv2.explain.grad_cam, irv2.finetune.config, irv2.export.formats\n"
        "import irv2.evaluate.layouts\n"
        "from irv2.explain import gradcam\n"
        "names = ('labels', 'synsets', 'evaluate', 'explain', 'export', 'finetune')\n"
        "print(all(callable(getattr(irv2, name)) for name in names), callable(gradcam), irv2.labels()[1])\n"
    )
    result = _python(code, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "tench"]
