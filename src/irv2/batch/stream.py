"""Many images through a module, batch by batch, in input order: what ``irv2 classify`` prints, what
``irv2 features -o OUT.npz`` saves, and what the Parquet jobs and Ray Data rows are made of.

Every function decodes with the module's own preprocessing (``module.preprocessing``) in decoding threads
while the network runs, and turns an unreadable image into an error in its place, never a stopped run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..api import CLASSIFICATION, FEATURE_VECTOR, Module
from ..api.signatures import endpoint_key, output_info, resolve_endpoints
from ..atomic import atomic_write
from ..labels import Prediction, top_k
from ..model import NUM_FEATURES
from .decoding import Decoded, decode_batches, run_module, stack_images
from .inputs import Input


@dataclass(frozen=True)
class Result:
    """The outcome for one input: its predictions (best first), or the error that stopped it."""

    path: str
    predictions: list[Prediction] | None = None
    error: str | None = None


def class_labels(module: Module) -> list[str]:
    """The module's class names; a custom head without labels still has class indices, so those."""
    return module.labels or [str(i) for i in range(module.num_classes)]


def predict_batch(module: Module, batch: Sequence[Decoded], k: int, labels: Sequence[str]) -> list[Result]:
    """One :class:`Result` per item of ``batch``, in order: top-``k`` softmax predictions, or the error."""
    images = stack_images(batch, pin_memory=module.device_type == "cuda")
    logits = run_module(module, images, CLASSIFICATION) if images is not None else None
    predictions = iter(top_k(logits, k, labels) if logits is not None else ())
    return [
        Result(d.input.path, error=d.error) if d.image is None else Result(d.input.path, next(predictions))
        for d in batch
    ]


def endpoint_of(module: Module, endpoint: str) -> str:
    """The output key of end point ``endpoint`` (``Mixed_6a`` or ``InceptionResnetV2/Mixed_6a``) of ``module``;
    OptionError naming the end points there are for an unknown one."""
    (name,) = resolve_endpoints(endpoint, module.endpoint_names)
    return endpoint_key(name)


def output_shape(module: Module, endpoint: str | None = None) -> tuple[int, ...]:
    """The shape of one image's row: ``(1536,)`` for the feature vector, else end point ``endpoint``'s (NHWC,
    batch left out)."""
    if endpoint is None:
        return (NUM_FEATURES,)
    # The shapes irv2 computes at the module's image size, which ``module.endpoints`` gives, not the info dict's:
    # that follows a TF-Hub module's own file, which may leave sizes unknown or list fewer end points.
    computed = output_info(FEATURE_VECTOR, module.expected_image_size, module.num_classes, module.endpoint_names)
    return tuple(computed[endpoint_of(module, endpoint)].get_shape().as_list()[1:])


def embed_batch(module: Module, batch: Sequence[Decoded], endpoint: str | None = None) -> np.ndarray:
    """The 1536-d features of ``batch``'s images, ``[len(batch), 1536]`` float32, or with ``endpoint`` that end
    point's maps ``[len(batch), h, w, c]``; zeros where an image failed."""
    rows = np.zeros((len(batch), *output_shape(module, endpoint)), np.float32)
    images = stack_images(batch, pin_memory=module.device_type == "cuda")
    if images is not None:
        good = [i for i, d in enumerate(batch) if d.image is not None]
        if endpoint is None:
            rows[good] = run_module(module, images, FEATURE_VECTOR)
        else:
            (rows[good],) = module.endpoints(images, [endpoint]).values()
    return rows


def classify_inputs(
    module: Module,
    inputs: Sequence[Input],
    *,
    k: int = 5,
    batch_size: int = 8,
    workers: int | None = None,
    draft: bool = True,
) -> Iterator[list[Result]]:
    """The top-``k`` of every input, one list of :class:`Result` per batch, in input order."""
    labels = class_labels(module)
    for batch in decode_batches(inputs, batch_size, module.preprocessing, workers=workers, draft=draft):
        yield predict_batch(module, batch, k, labels)


@dataclass(frozen=True)
class NpzSummary:
    """What :func:`write_features_npz` wrote: vectors for ``written`` images, ``failed`` images left out."""

    written: int
    failed: int


def write_features_npz(
    module: Module,
    inputs: Sequence[Input],
    output: str,
    *,
    batch_size: int = 8,
    workers: int | None = None,
    draft: bool = True,
    endpoint: str | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> NpzSummary:
    """Embed ``inputs`` and save one ``.npz`` archive at ``output``, written atomically, also when some
    images fail. Its arrays, readable with ``numpy.load`` (no pickle needed):

    * ``paths``: unicode ``[N]``, the images that succeeded, in input order;
    * ``features``: float32 ``[N, 1536]``, their ``image_feature_vector``; with ``endpoint`` (a TF-Slim end point,
      ``Mixed_6a``) its maps instead, ``[N, h, w, c]`` (NHWC);
    * ``failed_paths``: unicode ``[M]``, the images that could not be read;
    * ``errors``: unicode ``[M]``, why, one message per failed path;
    * ``endpoint``: with ``endpoint`` only, a unicode scalar, its key (``InceptionResnetV2/Mixed_6a``).

    ``on_batch(images, failed)`` follows the progress; ``on_error(path, message)`` hears of each failure as it
    happens. OSError when ``output`` cannot be written (nothing is left behind).
    """
    paths: list[str] = []
    vectors: list[np.ndarray] = []
    failed_paths: list[str] = []
    errors: list[str] = []
    for batch in decode_batches(inputs, batch_size, module.preprocessing, workers=workers, draft=draft):
        rows = embed_batch(module, batch, endpoint)
        good = [i for i, d in enumerate(batch) if d.image is not None]
        vectors.append(rows[good])
        paths.extend(batch[i].input.path for i in good)
        for decoded in batch:
            if decoded.image is None:
                failed_paths.append(decoded.input.path)
                errors.append(decoded.error or "")
                if on_error is not None:
                    on_error(decoded.input.path, decoded.error or "")
        if on_batch is not None:
            on_batch(len(batch), len(batch) - len(good))
    shape = output_shape(module, endpoint)
    features = np.concatenate(vectors) if vectors else np.zeros((0, *shape), np.float32)
    named = {} if endpoint is None else {"endpoint": np.array(endpoint_of(module, endpoint))}
    with atomic_write(output) as f:
        # A file object, so numpy does not append ".npz" to the name.
        np.savez(
            f,
            paths=np.array(paths, dtype=str),
            features=features.astype(np.float32, copy=False),
            failed_paths=np.array(failed_paths, dtype=str),
            errors=np.array(errors, dtype=str),
            **named,
        )
    return NpzSummary(len(paths), len(failed_paths))
