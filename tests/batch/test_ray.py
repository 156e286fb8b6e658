"""Ray Data: ``map_batches(irv2.batch.ray.Classifier / Embedder)`` in a local Ray runtime gives the CLI's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from batch_support import run_cli
from requires import require

ray = require("ray", "the Ray Data integration needs ray[data]")
pq = require("pyarrow.parquet", "ray[data] brings pyarrow")

pytestmark = pytest.mark.slow  # starting Ray takes seconds, and the network runs on every image


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_classifier_and_embedder_match_the_cli(local_ray, small_weights_dir, image_folder, tmp_path):
    from irv2.batch.ray import Classifier, Embedder

    _, paths = image_folder
    chosen = paths[:12]  # a truncated JPEG at 7
    cli_classes, cli_features = tmp_path / "classes.parquet", tmp_path / "features.parquet"
    for command, out in (("classify", cli_classes), ("features", cli_features)):
        run = run_cli(command, *chosen, "-w", small_weights_dir, "-o", out, "-b", "4")
        assert run.returncode == 1, run.stderr

    # Paths in one column, and the encoded files in another (as read_binary_files(include_paths=True) gives).
    items = [{"path": p, "bytes": Path(p).read_bytes()} for p in chosen]
    dataset = ray.data.from_items(items, override_num_blocks=1)
    options = {"weights": str(small_weights_dir), "batch_size": 4}
    classes = dataset.map_batches(
        Classifier, fn_constructor_kwargs={**options, "top_k": 5}, batch_size=12, concurrency=1
    ).take_all()
    features = dataset.map_batches(Embedder, fn_constructor_kwargs=options, batch_size=12, concurrency=1).take_all()

    expected = pq.read_table(cli_classes).to_pylist()
    got = sorted(classes, key=lambda row: row["path"])
    assert [row["path"] for row in got] == [row["path"] for row in expected]
    for row, want in zip(got, expected, strict=True):
        assert row["error"] == want["error"]
        assert (row["label"], row["index"]) == (want["label"], want["index"])
        if want["error"] is None:
            assert row["score"] == want["score"]
            assert [dict(p) for p in row["top_k"]] == want["top_k"]
    assert "truncated" in got[7]["error"]

    expected = pq.read_table(cli_features).to_pylist()
    got = sorted(features, key=lambda row: row["path"])
    for row, want in zip(got, expected, strict=True):
        assert row["error"] == want["error"]
        if want["error"] is None:
            np.testing.assert_array_equal(np.asarray(row["features"], np.float32), np.float32(want["features"]))
        else:
            assert row["features"] is None
