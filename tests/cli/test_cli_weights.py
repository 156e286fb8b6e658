"""``irv2 convert``, ``irv2 info`` and ``irv2 download`` (against a local HTTP server, cache in a tmp dir)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import irv2
from irv2.cli.main import main


def test_convert_state_dict_to_native_module(irv2_cli, weights_module, awkward_images, tmp_path, capsys):
    state_file = tmp_path / "random.safetensors"  # timm-style keys, as a timm export would hold them
    save_file({k: v.contiguous() for k, v in weights_module.model.state_dict().items()}, state_file)
    out = tmp_path / "converted"
    run = irv2_cli("convert", state_file, out)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and f"wrote {out} (1001 classes)" in run.stderr
    converted = irv2.load(out)
    assert converted.num_classes == 1001 and converted.labels == irv2.labels()
    images = np.stack([irv2.load_image(awkward_images[key]) for key in ("upright", "coffee")])
    np.testing.assert_array_equal(converted(images), weights_module(images))
    for name, tensor in weights_module.model.state_dict().items():
        assert torch.equal(converted.model.state_dict()[name], tensor), name

    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "thesis.tex").write_text("precious")
    assert main(["convert", str(state_file), str(tmp_path / "occupied")]) == 1  # refused before loading
    assert "neither empty nor an irv2 module" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "occupied")) == ["thesis.tex"]


def test_info_on_local_weights(weights_dir, capsys):
    assert main(["info", str(weights_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_classes"] == 1001
    assert info["signatures"] == [irv2.CLASSIFICATION, irv2.FEATURE_VECTOR]
    assert info["image_size"] == [299, 299]
    assert info["size_on_disk"] == sum(p.stat().st_size for p in Path(weights_dir).iterdir())


@pytest.fixture
def weights_server(tmp_path):
    """A local HTTP server for a small weights file: ``(url, bytes)``."""
    served = tmp_path / "served"
    served.mkdir()
    payload = os.urandom(64 * 1024)
    (served / "tiny-weights.safetensors").write_bytes(payload)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tiny-weights.safetensors", payload
    server.shutdown()
    server.server_close()


def test_download_then_info(irv2_cli, weights_server, tmp_path, monkeypatch, capsys):
    url, payload = weights_server
    monkeypatch.setenv("IRV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IRV2_OFFLINE", raising=False)
    assert main(["info", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is False

    run = irv2_cli("download", url)  # the environment, IRV2_HOME included, is inherited
    assert run.returncode == 0, run.stderr
    path = Path(run.stdout.strip())  # the only thing on stdout: the local path
    assert path.is_relative_to(tmp_path / "home") and path.read_bytes() == payload

    assert main(["info", url]) == 0
    fields = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines() if not line.startswith(" "))
    assert fields["cached"].strip() == "yes"
    assert fields["path"].strip() == str(path)
    assert fields["checksum"].strip() == f"sha256:{hashlib.sha256(payload).hexdigest()}"  # trust on first use

    monkeypatch.setenv("IRV2_OFFLINE", "1")
    assert main(["download", url.replace("tiny", "other")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("irv2: error: ")
