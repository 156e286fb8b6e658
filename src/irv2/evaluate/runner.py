"""Each image decoded once, then every configuration run on it: the predictions an evaluation scores.

Decoding is ``irv2 classify``'s own pipeline (:func:`irv2.batch.decode_batches`: the module's preprocessing in
threads, a few batches ahead of the network), so images are decoded as classify decodes them and as fast. Each
batch, once decoded, goes through every configuration in turn; a second configuration therefore costs its own
network time and nothing more. Images are processed in chunks of consecutive inputs; with a
:class:`~irv2.evaluate.state.PredictionStore` each chunk is committed as it finishes and a rerun computes only
the chunks that are missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ..api import CLASSIFICATION, Module
from ..batch.decoding import decode_batches, run_module, stack_images
from ..batch.inputs import Input
from ..batch.sharding import chunk_ranges
from ..progress import ProgressBar
from .metrics import kl_divergence, log_softmax
from .state import PredictionStore

# The arrays of a chunk (one part): per image, and per configuration c (first axis) where marked.
#   paths [n] str, errors [n] str ("" where the image was read), top_index [c, n, k] int32 (-1 on errors, and
#   where configuration c gave non-finite outputs), top_prob [c, n, k] float32 (softmax), kl [c, n] float32
#   (KL(reference || c), nats), network_seconds [c], wall_seconds [] (decoding and every configuration, end to
#   end). With ``scored`` outputs (a subset of the classes), top_index, top_prob and kl are over those outputs
#   alone, and top_index_all [c, n, k] over all of them.
PER_IMAGE = ("paths", "errors")
PER_CONFIGURATION = ("top_index", "top_prob", "kl", "top_index_all")


def predict_chunk(
    modules: Sequence[Module],
    inputs: Sequence[Input],
    *,
    k: int,
    scored: np.ndarray | None = None,
    batch_size: int = 8,
    workers: int | None = None,
    draft: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """The predictions of every configuration in ``modules`` for ``inputs``, each image decoded once with the
    first module's preprocessing (every configuration has the same weights, hence the same recipe). ``scored``:
    the outputs to rank (ImageNet-A's and -R's protocol: only their classes' logits), None for all.
    ``on_batch(images, failed)`` follows the progress."""
    started = time.perf_counter()
    count, configurations = len(inputs), len(modules)
    top_index = np.full((configurations, count, k), -1, np.int32)
    top_prob = np.full((configurations, count, k), np.nan, np.float32)
    top_index_all = np.full((configurations, count, k), -1, np.int32) if scored is not None else None
    kl = np.full((configurations, count), np.nan, np.float32)
    network = np.zeros(configurations)
    errors = [""] * count
    pinned = modules[0].device_type == "cuda"
    position = 0
    for batch in decode_batches(inputs, batch_size, modules[0].preprocessing, workers=workers, draft=draft):
        good = [i for i, decoded in enumerate(batch) if decoded.image is not None]
        for i, decoded in enumerate(batch):
            if decoded.image is None:
                errors[position + i] = decoded.error or "unreadable"
        if good:
            rows = position + np.array(good)
            images = stack_images(batch, pin_memory=pinned)
            reference = None
            for c, module in enumerate(modules):
                tic = time.perf_counter()
                logits = run_module(module, images, CLASSIFICATION)
                network[c] += time.perf_counter() - tic
                # A row with NaN or infinity (float16 overflow) has no ranking: it stays -1, an error of this
                # configuration, and out of every score and agreement.
                finite = np.isfinite(logits).all(axis=1)
                logits = np.where(finite[:, None], logits, 0.0)
                ranked = logits if scored is None else logits[:, scored]
                log_p = log_softmax(ranked)
                order = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
                mine = rows[finite]
                top_index[c, mine] = (order if scored is None else scored[order])[finite]
                top_prob[c, mine] = np.exp(np.take_along_axis(log_p, order, axis=1))[finite]
                if top_index_all is not None:
                    top_index_all[c, mine] = np.argsort(-logits, axis=1, kind="stable")[finite, :k]
                if reference is None:
                    reference, reference_finite = log_p, finite
                both = finite & reference_finite
                kl[c, rows[both]] = kl_divergence(reference, log_p)[both]
        position += len(batch)
        if on_batch is not None:
            on_batch(len(batch), len(batch) - len(good))
    arrays = {
        "paths": np.array([item.path for item in inputs], dtype=str),
        "errors": np.array(errors, dtype=str),
        "top_index": top_index,
        "top_prob": top_prob,
        "kl": kl,
        "network_seconds": network,
        "wall_seconds": np.array(time.perf_counter() - started),
    }
    if top_index_all is not None:
        arrays["top_index_all"] = top_index_all
    return arrays


def predict(
    modules: Sequence[Module],
    inputs: Sequence[Input],
    *,
    k: int,
    scored: np.ndarray | None = None,
    store: PredictionStore | None = None,
    chunk_size: int = 1000,
    batch_size: int = 8,
    workers: int | None = None,
    draft: bool = True,
    quiet: bool = False,
    note: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """The predictions for every input, chunk by chunk: the chunks ``store`` has already, the others computed
    (and committed to ``store``). Per-image arrays are joined along the images; timings are summed."""
    chunks = chunk_ranges(len(inputs), chunk_size)
    done = store.committed() if store is not None else set()
    skipped = sum(len(c) for c in chunks if (c.start, c.stop) in done)
    if skipped and note is not None:
        note(f"resuming {store.out}: {skipped} of {len(inputs)} images already done")  # type: ignore[union-attr]
    parts = []
    with ProgressBar(len(inputs), desc="evaluate", initial=skipped, quiet=quiet) as bar:
        for chunk in chunks:
            if store is not None and (chunk.start, chunk.stop) in done:
                parts.append(store.read(chunk))
                continue
            arrays = predict_chunk(
                modules,
                inputs[chunk.start : chunk.stop],
                k=k,
                scored=scored,
                batch_size=batch_size,
                workers=workers,
                draft=draft,
                on_batch=lambda images, failed: bar.update(images, failed=failed),
            )
            if store is not None:
                store.write(chunk, arrays)
            parts.append(arrays)
    if store is not None:
        store.clean()
    return _join(parts, len(modules), k, scored is not None)


def _join(parts: list[dict[str, np.ndarray]], configurations: int, k: int, subset: bool) -> dict[str, np.ndarray]:
    if not parts:
        empty = {
            "paths": np.array([], dtype=str),
            "errors": np.array([], dtype=str),
            "top_index": np.zeros((configurations, 0, k), np.int32),
            "top_prob": np.zeros((configurations, 0, k), np.float32),
            "kl": np.zeros((configurations, 0), np.float32),
            "network_seconds": np.zeros(configurations),
            "wall_seconds": np.array(0.0),
        }
        if subset:
            empty["top_index_all"] = np.zeros((configurations, 0, k), np.int32)
        return empty
    joined = {name: np.concatenate([p[name] for p in parts]) for name in PER_IMAGE}
    joined.update(
        {name: np.concatenate([p[name] for p in parts], axis=1) for name in PER_CONFIGURATION if name in parts[0]}
    )
    joined["network_seconds"] = np.sum([p["network_seconds"] for p in parts], axis=0)
    joined["wall_seconds"] = np.array(sum(float(p["wall_seconds"]) for p in parts))
    return joined
