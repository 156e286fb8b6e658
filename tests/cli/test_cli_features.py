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


def test_endpoint_maps_to_npz_and_parquet(irv2_cli, weights_dir, weights_module, awkward_images, tmp_path):
    from requires import require

    pq = require("pyarrow.parquet", "Parquet output")
    good = [str(awkward_images[key]) for key in ("upright", "coffee")]
    broken = str(awkward_images["truncated"])
    npz, parquet = tmp_path / "maps.npz", tmp_path / "maps.parquet"
    run = irv2_cli("features", *good, broken, "-w", weights_dir, "--endpoint", "Mixed_6a", "-o", npz)
    assert run.returncode == 1 and "wrote 2 Mixed_6a maps" in run.stderr
    run = irv2_cli("features", *good, broken, "-w", weights_dir, "--endpoint", "Mixed_6a", "-o", parquet)
    assert run.returncode == 1, run.stderr

    # The end point as TF-Hub's dict call gives it, for the same decoded images.
    images = np.stack([weights_module.preprocess(path) for path in good])
    expected = weights_module(dict(images=images), signature="image_feature_vector", as_dict=True)[
        "InceptionResnetV2/Mixed_6a"
    ]
    with np.load(npz) as archive:
        assert str(archive["endpoint"]) == "InceptionResnetV2/Mixed_6a"
        assert archive["paths"].tolist() == good
        maps = archive["features"]
    assert maps.shape == (2, 17, 17, 1088) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)

    table = pq.read_table(parquet)
    column = table.column("features").combine_chunks()
    assert str(column.type) == "extension<arrow.fixed_shape_tensor[value_type=float, shape=[17,17,1088]]>"
    assert table.column("path").to_pylist() == [*good, broken]
    assert column.is_null().to_pylist() == [False, False, True]
    np.testing.assert_allclose(column.slice(0, 2).to_numpy_ndarray(), expected, rtol=1e-5, atol=1e-5)

    # A rerun into the same output with another end point would mix two kinds of rows: refused.
    run = irv2_cli("features", *good, broken, "-w", weights_dir, "--endpoint", "Mixed_5b", "-o", parquet)
    assert run.returncode == 1 and "--endpoint" in run.stderr


def test_unknown_endpoint_is_a_usage_error(irv2_cli, weights_dir, awkward_images, tmp_path):
    run = irv2_cli(
        "features", awkward_images["upright"], "-w", weights_dir, "--endpoint", "Mixed_9z", "-o", tmp_path / "x.npz"
    )
    assert run.returncode == 2
    assert "--endpoint Mixed_9z: no such end point; this module has Conv2d_1a_3x3," in run.stderr
    assert not (tmp_path / "x.npz").exists()
