"""Resumable Parquet jobs at the library level, with a fast stand-in module: the tables, resuming after an
interruption, sharding across ranks, the final merge, and refusing to mix two jobs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import irv2
from batch_support import BROKEN, FakeModule
from irv2.batch import expand_inputs
from irv2.batch.job import LOCK, MANIFEST, SUCCESS
from irv2.batch.runner import BatchJob
from irv2.batch.sharding import Rank, my_chunks, rank_device, rank_from_environment
from irv2.errors import JobError
from irv2.preprocessing import Preprocessing
from requires import require

pa = require("pyarrow", "the batch jobs write Parquet: pip install 'irv2[parquet]'")
ds = require("pyarrow.dataset", "the batch jobs write Parquet: pip install 'irv2[parquet]'")
pq = require("pyarrow.parquet", "the batch jobs write Parquet: pip install 'irv2[parquet]'")


def _job(inputs, output, rank=None, kind="classify", module=None, **kwargs):
    kwargs.setdefault("top_k", 3)
    kwargs.setdefault("chunk_size", 8)
    return BatchJob(kind, inputs, output, module or FakeModule(), weights="fake", rank=rank or Rank(), **kwargs)


def _run(job, **kwargs):
    job.prepare(overwrite=kwargs.pop("overwrite", False))
    return job.run(batch_size=3, workers=2, **kwargs)


@pytest.fixture(scope="module")
def inputs(image_folder):
    root, paths = image_folder
    found = expand_inputs([str(root), str(root / "missing.jpg")])
    assert [i.path for i in found[:-1]] == paths
    return found


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """The classify table of an uninterrupted single-process run."""
    out = tmp_path_factory.mktemp("reference") / "out.parquet"
    result = _run(_job(inputs, out))
    assert result.summary == {"rows": 41, "failed": 4, "job": result.summary["job"]}
    return pq.read_table(out)


def test_classify_table_columns_and_rows(inputs, reference):
    assert reference.schema.names == ["path", "label", "index", "score", "top_k", "error"]
    prediction = pa.struct([("label", pa.string()), ("index", pa.int32()), ("score", pa.float32())])
    assert reference.schema.field("top_k").type.value_type == prediction
    assert [reference.schema.field(n).type for n in ("index", "score")] == [pa.int32(), pa.float32()]
    rows = reference.to_pylist()
    assert [r["path"] for r in rows] == [i.path for i in inputs]  # one row per input, in input order
    failed = {i for i, r in enumerate(rows) if r["error"] is not None}
    assert failed == {i for i in BROKEN if i < 40} | {40}
    assert "no such file" in rows[40]["error"]
    for r in rows:
        if r["error"] is None:
            assert len(r["top_k"]) == 3 and r["top_k"][0] == {
                "label": r["label"],
                "index": r["index"],
                "score": r["score"],
            }
            assert r["label"] == irv2.imagenet_labels()[r["index"]]
            assert r["top_k"][0]["score"] >= r["top_k"][1]["score"] >= r["top_k"][2]["score"]
        else:
            assert r["label"] is None and r["index"] is None and r["score"] is None and r["top_k"] is None
    assert len({r["index"] for r in rows if r["error"] is None}) > 3  # the images are told apart
    assert json.loads(reference.schema.metadata[b"irv2.summary"])["failed"] == 4  # the file's footer


def test_interrupted_run_resumes_without_duplicates(inputs, reference, tmp_path):
    out = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        _run(_job(inputs, out, module=FakeModule(fail_after=7)))  # 3 images a batch, 8 a chunk: dies in chunk 3
    parts = sorted(os.listdir(f"{out}.parts"))
    assert parts == [MANIFEST, "part-000000000000-000000000008.parquet", "part-000000000008-000000000016.parquet"]
    assert not out.exists()
    again = _run(_job(inputs, out))
    assert (again.skipped, again.processed) == (16, 25)
    assert pq.read_table(out).equals(reference)
    assert not os.path.exists(f"{out}.parts")  # merged: the work folder is gone
    # Once more: nothing to do, and the summary comes from the file.
    job = _job(inputs, out)
    assert job.finished() == again.summary


def test_ranks_share_the_work_and_the_last_one_merges(inputs, reference, tmp_path):
    out = tmp_path / "out.parquet"
    assert [c.start for c in my_chunks(41, 8, Rank(1, 2))] == [8, 24, 40]
    first = _run(_job(inputs, out, Rank(1, 2)))
    assert first.summary is None and first.share == 8 + 8 + 1 and not out.exists()
    second = _run(_job(inputs, out, Rank(0, 2)))
    assert second.share == 24 and second.summary["rows"] == 41
    assert pq.read_table(out).equals(reference)


def test_folder_output_is_a_dataset_in_input_order(inputs, reference, tmp_path):
    out = tmp_path / "out"
    result = _run(_job(inputs, out))
    names = sorted(os.listdir(out))
    assert names[:3] == [SUCCESS, MANIFEST, LOCK] and len(names) == 3 + 6
    assert json.loads((out / SUCCESS).read_text())["rows"] == 41 == result.summary["rows"]
    table = ds.dataset(out, format="parquet").to_table()  # skips the _ files
    assert table.select(reference.column_names).equals(reference.replace_schema_metadata(None))


def test_features_rows_and_null_vectors(inputs, tmp_path):
    out = tmp_path / "features.parquet"
    _run(_job(inputs, out, kind="features"))
    table = pq.read_table(out)
    assert table.schema.names == ["path", "features", "error"]
    assert table.schema.field("features").type == pa.list_(pa.float32(), 1536)
    features = table.column("features")
    assert features.null_count == 4
    module = FakeModule()
    first = irv2.load_image(inputs[0].path)[None]
    # Alone rather than in a batch of 3: BLAS may round the last bits differently.
    expected = module(first, "image_feature_vector")[0]
    np.testing.assert_allclose(np.asarray(features[0].as_py(), np.float32), expected, rtol=1e-5, atol=1e-6)
    assert features[min(BROKEN)].as_py() is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"top_k": 5}, "--top: 3 then, 5 now"),
        ({"draft": False}, "--exact-decode: False then, True now"),
        ({"chunk_size": 4}, "--chunk-size: 8 then, 4 now"),
        ({"kind": "features"}, "the command (classify or features): 'classify' then, 'features' now"),
        ({"module": FakeModule(engine="onnxruntime")}, "--engine: 'fake' then, 'onnxruntime' now"),
        ({"module": FakeModule(dtype="int8", calibration_sha256="ab12")}, "--dtype: 'float32' then, 'int8' now"),
        ({"module": FakeModule(calibration_sha256="ab12")}, "the calibration images (--calibration): None then"),
        ({"module": FakeModule(weights_sha256="other")}, "the weights (--weights): 'fake' then, 'other' now"),
    ],
)
def test_a_resume_with_any_changed_setting_is_refused_naming_it(inputs, tmp_path, change, named):
    out = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        _run(_job(inputs, out, module=FakeModule(fail_after=3)))
    with pytest.raises(JobError, match="other settings") as refused:
        _run(_job(inputs, out, **change))
    assert named in str(refused.value) and "--overwrite" in str(refused.value)
    assert len(os.listdir(f"{out}.parts")) == 2  # the manifest and the one committed part, untouched


def test_a_preprocessing_change_is_refused_when_the_job_is_complete(inputs, tmp_path):
    """A finished single-file job keeps its settings in the file's metadata, so a rerun at another image size
    is told what changed rather than that the file is foreign."""
    out = tmp_path / "out.parquet"
    _run(_job(inputs, out))
    smaller = FakeModule()
    smaller.preprocessing = Preprocessing(image_size=(160, 160))
    changed = r"image size or preprocessing recipe: image_size \[299, 299\] then, \[160, 160\] now"
    with pytest.raises(JobError, match=changed):
        _job(inputs, out, module=smaller).finished()


def test_another_command_is_refused_then_overwrite_starts_again(inputs, tmp_path):
    out = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        _run(_job(inputs, out, module=FakeModule(fail_after=3)))
    with pytest.raises(JobError, match=r"the inputs.*--overwrite"):
        _run(_job(inputs[:-1], out))
    result = _run(_job(inputs[:-1], out), overwrite=True)
    assert result.skipped == 0 and result.summary["rows"] == 40
    (tmp_path / "foreign.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(JobError, match="not written by an irv2 job"):
        _job(inputs, tmp_path / "foreign.parquet").finished()
    with pytest.raises(JobError, match="several processes"):
        _job(inputs, out, Rank(0, 2)).prepare(overwrite=True)


def test_a_folder_holding_other_files_is_refused(inputs, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(JobError, match="not an irv2 job's output"):
        _job(inputs, tmp_path).prepare()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_rank_from_environment():
    assert rank_from_environment({}) == Rank(0, 1, 0)
    assert rank_from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Rank(3, 4, 1)
    with pytest.raises(JobError, match="RANK=4 does not fit WORLD_SIZE=4"):
        rank_from_environment({"RANK": "4", "WORLD_SIZE": "4"})
    assert rank_device("cuda", Rank(3, 4, 1)) == "cuda:1"
    assert rank_device("cuda:0", Rank(3, 4, 1)) == "cuda:0" and rank_device("cuda", Rank()) == "cuda"
