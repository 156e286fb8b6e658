"""Each image decoded once for every configuration; predictions committed chunk by chunk, resumed after an
interruption to exactly what an uninterrupted run gives, and never mixed with another setting's.

A fast stand-in for the network (batch_support.FakeModule) makes these run in a blink; the real network's
resume after ``kill -9`` is tested through the command line in test_evaluate_cli.py."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
import torch

from batch_support import BROKEN, FakeModule, make_images
from irv2.batch.inputs import Input
from irv2.errors import JobError
from irv2.evaluate.runner import predict
from irv2.evaluate.state import PredictionStore, job_settings
from irv2.preprocessing import Preprocessing

COUNT = 12  # image 7 is broken


class CountingPreprocessing:
    """The module's recipe, counting how often each file is decoded (from several decoding threads)."""

    def __init__(self) -> None:
        self.recipe = Preprocessing()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, source, **options):
        with self._lock:
            self.calls[str(source)] += 1
        return self.recipe(source, **options)


class Sharper(FakeModule):
    """The stand-in's logits scaled: the same ranking, a different softmax (a KL divergence above zero)."""

    def __call__(self, images, signature="default"):
        return 1.5 * super().__call__(images, signature)


class OnGpu(FakeModule):
    """The stand-in, as if on a GPU (its logits would differ from the CPU's in their last bits)."""

    device = torch.device("cuda:0")
    device_type = "cuda"


class Overflowing(FakeModule):
    """The stand-in, with the outputs of every third image of a batch overflowed (float16's infinity, NaN)."""

    def __call__(self, images, signature="default"):
        logits = super().__call__(images, signature).copy()
        logits[::3, 5] = np.inf
        logits[::3, 6] = np.nan
        return logits


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, photo_arrays) -> list[Input]:
    return [Input(p) for p in make_images(tmp_path_factory.mktemp("twelve"), photo_arrays, COUNT)]


def _without_timings(arrays: dict) -> dict:
    return {k: v for k, v in arrays.items() if not k.endswith("_seconds")}


def test_each_image_is_decoded_once_for_every_configuration(inputs):
    recipe = CountingPreprocessing()
    modules = [FakeModule(), FakeModule(), Sharper()]
    for module in modules:
        module.preprocessing = recipe
    result = predict(modules, inputs, k=5, chunk_size=5, batch_size=2, quiet=True)
    assert sorted(recipe.calls) == sorted(i.path for i in inputs) and set(recipe.calls.values()) == {1}
    assert modules[0].calls == modules[1].calls == modules[2].calls == 7  # one per batch: 3 + 3 + 1
    errors = result["errors"].tolist()
    assert [bool(e) for e in errors] == [i in BROKEN for i in range(COUNT)]
    good = result["errors"] == ""
    assert (result["top_index"][:, ~good] == -1).all() and np.isnan(result["kl"][:, ~good]).all()
    np.testing.assert_array_equal(result["top_index"][0], result["top_index"][1])
    np.testing.assert_array_equal(result["top_index"][0], result["top_index"][2])  # same ranking ...
    assert (result["kl"][1, good] == 0).all() and (result["kl"][2, good] > 0).all()  # ... another softmax
    assert (result["top_prob"][0, good].sum(axis=1) <= 1 + 1e-6).all()  # five probabilities of a softmax
    assert result["network_seconds"].shape == (3,) and float(result["wall_seconds"]) > 0


def test_an_interrupted_run_resumes_to_the_uninterrupted_predictions(inputs, tmp_path):
    settings = job_settings([FakeModule()], draft=True, batch_size=2)
    store = PredictionStore(tmp_path / "out", inputs, settings, chunk_size=4)
    store.prepare()
    with pytest.raises(KeyboardInterrupt):  # as Ctrl-C during the second chunk's second batch
        predict([FakeModule(fail_after=3)], inputs, k=5, store=store, chunk_size=4, batch_size=2, quiet=True)
    assert store.committed() == {(0, 4)}
    notes = []
    again = PredictionStore(tmp_path / "out", inputs, settings, chunk_size=4)
    again.prepare()
    second = FakeModule()
    resumed = predict([second], inputs, k=5, store=again, chunk_size=4, batch_size=2, quiet=True, note=notes.append)
    assert notes == [f"resuming {tmp_path / 'out'}: 4 of {COUNT} images already done"]
    assert second.calls == 4  # the two chunks left, two batches each (image 7's batch still has image 6)
    whole = predict([FakeModule()], inputs, k=5, chunk_size=4, batch_size=2, quiet=True)
    for name, value in _without_timings(whole).items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert again.committed() == {(0, 4), (4, 8), (8, 12)}


def test_predictions_of_other_settings_are_never_mixed(inputs, tmp_path):
    PredictionStore(tmp_path, inputs, job_settings([FakeModule()], draft=True, batch_size=2), chunk_size=4).prepare()
    changed = [
        (
            job_settings([FakeModule(dtype="bfloat16")], draft=True, batch_size=2),
            "--dtype: ['float32'] then, ['bfloat16'] now",
        ),
        (job_settings([FakeModule()], draft=False, batch_size=2), "--exact-decode: False then, True now"),
        (job_settings([FakeModule(), FakeModule(engine="plain")], draft=True, batch_size=2), "--engine: ['fake'] then"),
        (job_settings([FakeModule()], draft=True, batch_size=8), "--batch-size: 2 then, 8 now"),
        (job_settings([OnGpu()], draft=True, batch_size=2), "--device: 'cpu' then, 'cuda:0' now"),
    ]
    for settings, named in changed:
        with pytest.raises(JobError) as caught:
            PredictionStore(tmp_path, inputs, settings, chunk_size=4).prepare()
        assert named in str(caught.value) and "--overwrite" in str(caught.value) and "--out" in str(caught.value)
    with pytest.raises(JobError, match="the inputs"):
        PredictionStore(
            tmp_path, inputs[:-1], job_settings([FakeModule()], draft=True, batch_size=2), chunk_size=4
        ).prepare()
    fresh = PredictionStore(tmp_path, inputs, changed[0][0], chunk_size=4)
    fresh.prepare(overwrite=True)  # discards the other job's manifest and parts, and starts this one
    assert fresh.committed() == set()


def test_outputs_that_are_not_finite_are_errors_of_their_configuration_only(inputs):
    result = predict([FakeModule(), Overflowing()], inputs, k=5, chunk_size=6, batch_size=3, quiet=True)
    read = result["errors"] == ""
    overflowed = np.zeros(COUNT, bool)
    overflowed[::3] = True  # batches of 3 from image 0: the first of each
    assert (result["top_index"][0, read] >= 0).all()  # the reference scored every image it read
    assert (result["top_index"][1, read & overflowed] == -1).all() and np.isnan(result["kl"][1, overflowed]).all()
    np.testing.assert_array_equal(
        result["top_index"][1, read & ~overflowed], result["top_index"][0, read & ~overflowed]
    )


def test_a_subset_of_classes_ranks_only_their_outputs(inputs):
    whole = predict([FakeModule()], inputs, k=5, chunk_size=12, batch_size=4, quiet=True)
    scored = np.arange(1, 1001, 5)  # 200 outputs
    result = predict([FakeModule()], inputs, k=5, scored=scored, chunk_size=12, batch_size=4, quiet=True)
    read = result["errors"] == ""
    np.testing.assert_array_equal(result["top_index_all"][:, read], whole["top_index"][:, read])
    logits = FakeModule()(np.stack([Preprocessing()(i.path) for i, ok in zip(inputs, read, strict=True) if ok]))
    expected = scored[np.argsort(-logits[:, scored], axis=1, kind="stable")[:, :5]]
    np.testing.assert_array_equal(result["top_index"][0, read], expected)
    assert np.isin(result["top_index"][0, read], scored).all() and not np.isin(whole["top_index"], scored).all()
