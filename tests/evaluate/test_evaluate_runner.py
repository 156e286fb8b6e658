"""Each image decoded once for every configuration; predictions committed chunk by chunk, resumed after an
interruption to exactly what an uninterrupted run gives, and never mixed with another setting's.

A fast stand-in for the network (batch_support.FakeModule) makes these run in a blink; the real network's
resume after ``kill -9`` is tested through the command line in test_evaluate_cli.py."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

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
    settings = job_settings([FakeModule()], draft=True)
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
    PredictionStore(tmp_path, inputs, job_settings([FakeModule()], draft=True), chunk_size=4).prepare()
    changed = [
        (job_settings([FakeModule(dtype="bfloat16")], draft=True), "--dtype: ['float32'] then, ['bfloat16'] now"),
        (job_settings([FakeModule()], draft=False), "--exact-decode: False then, True now"),
        (job_settings([FakeModule(), FakeModule(engine="plain")], draft=True), "--engine: ['fake'] then"),
    ]
    for settings, named in changed:
        with pytest.raises(JobError) as caught:
            PredictionStore(tmp_path, inputs, settings, chunk_size=4).prepare()
        assert named in str(caught.value) and "--overwrite" in str(caught.value) and "--out" in str(caught.value)
    with pytest.raises(JobError, match="the inputs"):
        PredictionStore(tmp_path, inputs[:-1], job_settings([FakeModule()], draft=True), chunk_size=4).prepare()
    fresh = PredictionStore(tmp_path, inputs, changed[0][0], chunk_size=4)
    fresh.prepare(overwrite=True)  # discards the other job's manifest and parts, and starts this one
    assert fresh.committed() == set()
