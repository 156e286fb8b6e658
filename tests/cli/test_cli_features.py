"""``irv2 features PATH... -o OUT.npz``: the archive's content, failures, and atomic writing."""

from __future__ import annotations

import numpy as np

import irv2
from irv2.cli.main import main


def test_features_npz(irv2_cli, weights_dir, weights_module, awkward_images, tmp_path):
    good = [str(awkward_images[key]) for key in ("upright", "gray16", "rgba")]
    broken = str(awkward_images["truncated"])
    out = tmp_path / "features.npz"
    run = irv2_cli("features", good[0], broken, *good[1:], "-w", weights_dir, "-o", out, "--batch-size", "2")
    assert run.returncode == 1  # one image failed; the others are still saved
    assert run.stdout == ""
    assert f"irv2: error: {broken}: image data is truncated or corrupt" in run.stderr
    assert "wrote 3 feature vectors" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npz"]  # no temporary file left behind

    with np.load(out) as archive:  # no pickle needed
        assert sorted(archive.files) == ["errors", "failed_paths", "features", "paths"]
        assert archive["paths"].tolist() == good
        assert archive["failed_paths"].tolist() == [broken]
        assert "truncated or corrupt" in archive["errors"][0]
        features = archive["features"]
    assert features.dtype == np.float32 and features.shape == (3, 1536)
    expected = weights_module(np.stack([irv2.load_image(p) for p in good]), signature=irv2.FEATURE_VECTOR)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_features_output_folder_must_exist(tmp_path, awkward_images, capsys):
    out = tmp_path / "no" / "such" / "folder.npz"
    assert main(["features", str(awkward_images["rocket"]), "-w", "unused", "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
