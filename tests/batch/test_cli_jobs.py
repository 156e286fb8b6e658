"""``irv2 classify|features --output OUT.parquet`` end to end, as a user runs them, with random weights:
the rows match the other outputs, ``kill -9`` then the same command again loses and repeats nothing, and
two processes under torchrun give exactly the single-process rows."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from batch_support import BROKEN, run_cli, start_cli
from irv2.cli.main import main
from requires import require

pq = require("pyarrow.parquet", "the batch jobs write Parquet: pip install 'irv2[parquet]'")

# Chunks and batches of the long runs: small, so a kill lands between commits. The 100 images of `many_images`
# make 13 chunks: 12 of 8 images, then 4; under two processes rank 0 takes chunks 0, 2, ..., 12 (6 * 8 + 4 = 52
# images) and rank 1 chunks 1, 3, ..., 11 (6 * 8 = 48).
JOB = ("--chunk-size", "8", "--batch-size", "4")
# One thread per process in the long runs: oneDNN's rounding of a batch can change with the thread count
# (the last bit of a few scores), and torchrun's processes run one thread each.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def test_classify_parquet_rows_match_json(small_weights_dir, image_folder, tmp_path):
    _, paths = image_folder
    chosen = paths[:10]  # a truncated JPEG at 7
    as_json = run_cli("classify", *chosen, "-w", small_weights_dir, "--format", "json", "-k", "3", "-b", "4")
    out = tmp_path / "classes.parquet"
    run = run_cli("classify", *chosen, "-w", small_weights_dir, "-o", out, "-k", "3", "-b", "4")
    assert run.returncode == 1 and as_json.returncode == 1  # one image failed
    assert run.stdout == ""
    assert "classified 10 images in" in run.stderr and "1 failed" in run.stderr
    assert f"wrote {out}: 10 rows, 1 with an error" in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["classes.parquet"]  # the work folder is gone
    expected = [json.loads(line) for line in as_json.stdout.splitlines()]
    rows = pq.read_table(out).to_pylist()
    assert [r["path"] for r in rows] == chosen
    for row, want in zip(rows, expected, strict=True):
        if "error" in want:
            assert row["error"] == want["error"] and row["top_k"] is None
        else:
            assert row["error"] is None
            assert row["top_k"] == [{k: p[k] for k in ("label", "index", "score")} for p in want["predictions"]]
            top = want["predictions"][0]
            assert (row["label"], row["index"], row["score"]) == (top["label"], top["index"], top["score"])

    again = run_cli("classify", *chosen, "-w", small_weights_dir, "-o", out, "-k", "3", "-b", "4")
    assert again.returncode == 1 and "already complete (10 rows, 1 with an error); nothing to do" in again.stderr
    other = run_cli("classify", *chosen, "-w", small_weights_dir, "-o", out, "-k", "5")
    assert other.returncode == 1 and "--top: 3 then, 5 now" in other.stderr and "--overwrite" in other.stderr


def test_a_resumed_job_with_another_engine_or_dtype_is_refused(small_weights_dir, image_folder, tmp_path):
    """A job whose first run stopped half way (here: its last part and its completion marker removed, as a
    kill would leave it) continues only with the settings it started with."""
    _, paths = image_folder
    chosen = [p for i, p in enumerate(paths[:8]) if i != 7]
    folder = tmp_path / "classes"
    first = run_cli("classify", *chosen, "-w", small_weights_dir, "-o", folder, "-b", "3", "--chunk-size", "3")
    assert first.returncode == 0, first.stderr
    (folder / "_SUCCESS").unlink()
    (folder / "part-000000000006-000000000007.parquet").unlink()
    before = sorted(os.listdir(folder))
    for option, named in (("--engine=plain", "--engine: 'torch' then, 'plain' now"),
                          ("--exact-decode", "--exact-decode: False then, True now")):  # fmt: skip
        changed = run_cli(
            "classify", *chosen, "-w", small_weights_dir, "-o", folder, "-b", "3", "--chunk-size", "3", option
        )
        assert changed.returncode == 1 and named in changed.stderr and "--overwrite" in changed.stderr
        assert sorted(os.listdir(folder)) == before  # nothing written, nothing removed
    resumed = run_cli("classify", *chosen, "-w", small_weights_dir, "-o", folder, "-b", "3", "--chunk-size", "3")
    assert resumed.returncode == 0 and "resuming" in resumed.stderr and "6 of 7 images already done" in resumed.stderr


def test_features_parquet_folder_matches_npz(small_weights_dir, image_folder, tmp_path):
    _, paths = image_folder
    chosen = paths[5:11]
    npz = run_cli("features", *chosen, "-w", small_weights_dir, "-o", tmp_path / "f.npz", "-b", "3")
    folder = tmp_path / "features"
    run = run_cli("features", *chosen, "-w", small_weights_dir, "-o", folder, "-b", "3", "--chunk-size", "3")
    assert run.returncode == npz.returncode == 1
    assert sorted(os.listdir(folder)) == [
        "_SUCCESS",
        "_irv2_job.json",
        "_irv2_merge.lock",
        "part-000000000000-000000000003.parquet",
        "part-000000000003-000000000006.parquet",
    ]
    table = pq.read_table(folder)  # the folder is a Parquet dataset, in input order
    assert table.column("path").to_pylist() == chosen
    with np.load(tmp_path / "f.npz") as archive:
        good = [row for row in table.to_pylist() if row["error"] is None]
        assert [r["path"] for r in good] == archive["paths"].tolist()
        np.testing.assert_array_equal(np.array([r["features"] for r in good], np.float32), archive["features"])
        assert archive["failed_paths"].tolist() == [paths[7]]


def test_output_must_be_parquet_or_a_folder(tmp_path, capsys):
    assert main(["classify", "x.jpg", "-o", str(tmp_path / "out.csv")]) == 2
    assert "expected OUT.parquet or a folder" in capsys.readouterr().err
    assert main(["features", "x.jpg", "-o", str(tmp_path / "no" / "out.parquet"), "-w", "unused"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def uninterrupted(small_weights_dir, many_images, tmp_path_factory):
    """The rows of one uninterrupted single-process run over the 100 images."""
    root, _ = many_images
    out = tmp_path_factory.mktemp("uninterrupted") / "out.parquet"
    run = run_cli("classify", root, "-w", small_weights_dir, "-o", out, *JOB, env=ONE_THREAD)
    assert run.returncode == 1, run.stderr  # the broken files
    assert f"wrote {out}: 100 rows, {len(BROKEN)} with an error" in run.stderr
    return pq.read_table(out)


@pytest.mark.slow
def test_kill_9_then_the_same_command_again(small_weights_dir, many_images, uninterrupted, tmp_path):
    root, paths = many_images
    out = tmp_path / "out.parquet"
    command = ("classify", root, "-w", small_weights_dir, "-o", out, *JOB)
    process = start_cli(*command, env=ONE_THREAD)
    parts = f"{out}.parts"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len([n for n in _listdir(parts) if n.startswith("part-")]) < 3:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    committed = [n for n in os.listdir(parts) if n.startswith("part-")]
    assert 3 <= len(committed) < 13 and not out.exists()  # killed in the middle

    # The same command with another engine would mix rows computed two ways: refused, nothing touched.
    changed = run_cli(*command, "--engine", "plain", env=ONE_THREAD)
    assert changed.returncode == 1 and "--engine: 'torch' then, 'plain' now" in changed.stderr
    assert sorted(n for n in os.listdir(parts) if n.startswith("part-")) == sorted(committed)

    again = run_cli(*command, env=ONE_THREAD)
    assert again.returncode == 1, again.stderr
    assert f"resuming {out}: {8 * len(committed)} of 100 images already done" in again.stderr
    table = pq.read_table(out)
    assert table.column("path").to_pylist() == paths  # every input exactly once, in input order
    assert table.equals(uninterrupted)  # the same values, to the bit
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]


@pytest.mark.slow
def test_torchrun_two_processes_give_the_single_process_rows(small_weights_dir, many_images, uninterrupted, tmp_path):
    root, paths = many_images
    out = tmp_path / "out.parquet"
    run = run_cli("classify", root, "-w", small_weights_dir, "-o", out, *JOB, torchrun=2, env=ONE_THREAD)
    assert "rank 0 of 2: classified 52 images" in run.stderr and "rank 1 of 2: classified 48 images" in run.stderr
    assert f"wrote {out}: 100 rows, {len(BROKEN)} with an error" in run.stderr
    table = pq.read_table(out)
    assert table.column("path").to_pylist() == paths
    assert table.equals(uninterrupted)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
