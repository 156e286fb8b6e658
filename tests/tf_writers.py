"""TensorFlow itself writes the checkpoints that irv2's readers are tested against.

Every writer takes ``{name: np.ndarray}`` (names may contain ``/``) and feeds the arrays through
placeholders, so full-size weights (hundreds of MB) never become graph constants. Each writer builds
its own ``tf.Graph`` and session, so it works whether or not eager execution is on.

- ``write_v2(prefix, tensors)``: a V2 bundle, ``<prefix>.index`` + ``<prefix>.data-00000-of-00001``.
- ``write_v2_sharded(prefix, parts)``: one data shard per dict in ``parts``, merged by TF.
- ``write_v1(path, tensors)``: a V1 SavedTensorSlices file, as ``tf.compat.v1.train.Saver(V1)``.
- ``write_hub_module(folder, tensors)``: a TF1 Hub module exported by ``tensorflow_hub`` 0.15,
  in a subprocess (``hub.Module`` needs graph mode, which is process-wide); ``write_hub_modules``
  exports several in one such process.

``slices``: extra ``(name, shape_and_slice, array)`` triples, TF's slice spec syntax
(``"200 3 0,100:-"`` = rows 0..99 of a [200, 3] tensor), for partitioned tensors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

Slices = Iterable[tuple[str, str, np.ndarray]]


def _tf():
    import tensorflow as tf

    return tf


def _tf_dtype(array: np.ndarray):
    tf = _tf()
    return tf.string if array.dtype.kind in "OSU" else tf.as_dtype(array.dtype)


def _run_with_placeholders(build, arrays: Sequence[np.ndarray]) -> None:
    """Runs the op ``build(placeholders)`` in a fresh graph, feeding ``arrays``."""
    tf = _tf()
    with tf.Graph().as_default():
        placeholders = [
            tf.compat.v1.placeholder(_tf_dtype(a), shape=a.shape, name=f"t{i}") for i, a in enumerate(arrays)
        ]
        op = build(placeholders)
        with tf.compat.v1.Session() as session:
            session.run(op, feed_dict=dict(zip(placeholders, arrays, strict=True)))


def _triples(tensors: Mapping[str, np.ndarray], slices: Slices) -> tuple[list, list, list]:
    names, specs, arrays = [], [], []
    for name, value in tensors.items():
        names.append(name)
        specs.append("")
        arrays.append(np.asarray(value))
    for name, spec, value in slices:
        names.append(name)
        specs.append(spec)
        arrays.append(np.asarray(value))
    return names, specs, arrays


def _make_parent(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


def write_v2(prefix: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], *, slices: Slices = ()) -> str:
    """Writes a single-shard V2 checkpoint with ``SaveV2``; returns the prefix."""
    tf = _tf()
    prefix = _make_parent(prefix)
    names, specs, arrays = _triples(tensors, slices)
    _run_with_placeholders(
        lambda ph: tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=specs, tensors=ph),
        arrays,
    )
    return prefix


def write_v2_sharded(prefix: str | os.PathLike[str], parts: Sequence[Mapping[str, np.ndarray]]) -> str:
    """Writes ``len(parts)`` data shards, one per dict, the way a sharded ``Saver`` does.

    Each part is saved to its own temporary bundle and ``MergeV2Checkpoints`` merges the indexes
    and renames the data files to ``<prefix>.data-0000i-of-0000n``.
    """
    tf = _tf()
    prefix = _make_parent(prefix)
    tmp_prefixes = []
    for i, part in enumerate(parts):
        tmp_prefixes.append(write_v2(f"{prefix}_temp/part-{i:05d}-of-{len(parts):05d}", part))
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        session.run(
            tf.raw_ops.MergeV2Checkpoints(
                checkpoint_prefixes=tmp_prefixes, destination_prefix=prefix, delete_old_dirs=True
            )
        )
    return prefix


def write_v1(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], *, slices: Slices = ()) -> str:
    """Writes a V1 (SavedTensorSlices) checkpoint file with ``SaveSlices``; returns the path."""
    tf = _tf()
    path = _make_parent(path)
    names, specs, arrays = _triples(tensors, slices)
    _run_with_placeholders(
        lambda ph: tf.raw_ops.SaveSlices(filename=path, tensor_names=names, shapes_and_slices=specs, data=ph),
        arrays,
    )
    return path


def write_v1_with_saver(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray]) -> str:
    """Writes a V1 checkpoint the way TF-Slim's era did: variables saved by a V1 ``Saver``."""
    tf = _tf()
    path = _make_parent(path)
    with tf.Graph().as_default():
        variables, assigns, feed = [], [], {}
        for i, value in enumerate(tensors.values()):
            value = np.asarray(value)
            # The Saver's dict gives the stored names, so any string works, not only op names.
            var = tf.compat.v1.Variable(tf.zeros(value.shape, _tf_dtype(value)), name=f"v{i}", use_resource=False)
            placeholder = tf.compat.v1.placeholder(_tf_dtype(value), value.shape)
            variables.append(var)
            assigns.append(var.assign(placeholder))
            feed[placeholder] = value
        saver = tf.compat.v1.train.Saver(
            {name: var for name, var in zip(tensors, variables, strict=True)},
            write_version=tf.compat.v1.train.SaverDef.V1,
        )
        with tf.compat.v1.Session() as session:
            session.run(assigns, feed_dict=feed)
            saver.save(session, path, write_meta_graph=False, write_state=False)
    return path


_HUB_SCRIPT = r"""
import json, sys, types
import numpy as np

# tensorflow_hub 0.15 imports its estimator support at import time; TF 2.21 has no estimator.
fake = types.ModuleType("tensorflow_hub.estimator")
fake.LatestModuleExporter = None
fake.register_module_for_export = None
sys.modules["tensorflow_hub.estimator"] = fake

import tensorflow as tf
import tensorflow_hub as hub



def module_fn(is_training, names, values, signatures, declared):
    # Variables are created with their final names (the module adds, and export strips, "module/").
    variables = [
        tf.compat.v1.get_variable(
            name, shape=v.shape, dtype=tf.as_dtype(v.dtype),
            initializer=tf.compat.v1.zeros_initializer(),
        )
        for name, v in zip(names, values)
    ]
    images = tf.compat.v1.placeholder(tf.float32, [None, 299, 299, 3], name="images")
    # Not the network: just a graph that reads [0, 1] images the way the real module does (2x - 1)
    # and touches a variable, so each signature has an output.
    pixels = tf.reduce_mean(images * 2.0 - 1.0, axis=[1, 2, 3])
    floats = [v for v in variables if v.dtype.base_dtype == tf.float32]
    scale = tf.reduce_mean(floats[0]) if floats else tf.constant(1.0)
    out = pixels[:, None] * scale
    if is_training:
        out = tf.identity(out, name="training_output")
    for signature in signatures:
        shapes = declared.get(signature, {"default": [None, 1]})
        outputs = {key: stand_in(out, shape) for key, shape in shapes.items()}
        hub.add_signature(signature, inputs={"images": images}, outputs=outputs)


def stand_in(out, shape):
    # out ([batch, 1]) broadcast to shape, whose static shape the signature then declares: the batch follows
    # the images, and placeholder_with_default leaves the other None sizes unknown.
    sizes = [1 if size is None else size for size in shape[1:]]
    value = tf.reshape(out, [-1] + [1] * len(sizes)) * tf.ones(sizes)
    return tf.compat.v1.placeholder_with_default(value, shape)


def export(folder, arrays_file, spec):
    names, signatures, declared = spec["names"], spec["signatures"], spec["outputs"]
    arrays = np.load(arrays_file, allow_pickle=False)
    values = [arrays[f"t{i}"] for i in range(len(names))]
    graph = {"names": names, "values": values, "signatures": signatures, "declared": declared}
    spec = hub.create_module_spec(
        module_fn,
        tags_and_args=[(set(), {"is_training": False, **graph}), ({"train"}, {"is_training": True, **graph})],
    )
    with tf.Graph().as_default():
        module = hub.Module(spec)
        variable_map = module.variable_map
        assert sorted(variable_map) == sorted(names), "variable names changed on the way"
        placeholders = {n: tf.compat.v1.placeholder(variable_map[n].dtype.base_dtype, v.shape)
                        for n, v in zip(names, values)}
        assigns = [variable_map[n].assign(placeholders[n]) for n in names]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(assigns, feed_dict={placeholders[n]: v for n, v in zip(names, values)})
            module.export(folder, session)


# One TensorFlow process for every module asked for: importing TensorFlow and tensorflow_hub is most of the time.
for folder, arrays_file, spec_file in json.load(open(sys.argv[1])):
    export(folder, arrays_file, json.load(open(spec_file)))
"""


class HubModule(NamedTuple):
    """One TF1 Hub module for :func:`write_hub_modules` to export (the arguments of :func:`write_hub_module`)."""

    folder: str | os.PathLike[str]
    tensors: Mapping[str, np.ndarray]
    signatures: Sequence[str] = ("image_classification", "image_feature_vector")
    outputs: Mapping[str, Mapping[str, Sequence[int | None]]] | None = None


def write_hub_module(
    folder: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    signatures: Sequence[str] = ("image_classification", "image_feature_vector"),
    outputs: Mapping[str, Mapping[str, Sequence[int | None]]] | None = None,
) -> str:
    """Exports a TF1 Hub module (FORMAT_V3) holding ``tensors`` as its variables; returns ``folder``.

    Tag sets ``{}`` and ``{"train"}``; each signature (plus ``default``, which aliases the first)
    takes ``images`` float32 [batch, 299, 299, 3] in [0, 1] and outputs ``default`` [batch, 1]. The
    graph is a stand-in, not Inception-ResNet-v2: its outputs are not the network's.

    ``outputs``: for the signatures it names (``"default"`` included), the output keys and static
    shapes (None: unknown) to declare instead, the same in both tag sets, e.g.
    ``{"image_classification": {"default": [None, 1001], "InceptionResnetV2/Mixed_6a": [None, 17, 17, 1088]}}``.
    """
    (written,) = write_hub_modules([HubModule(folder, tensors, signatures, outputs)])
    return written


def write_hub_modules(modules: Sequence[HubModule]) -> list[str]:
    """Exports each module as :func:`write_hub_module` does, all in one TensorFlow process; returns the folders."""
    jobs = []
    with tempfile.TemporaryDirectory(prefix="irv2-hub-") as tmp:
        for i, module in enumerate(modules):
            if not module.signatures:
                raise ValueError("a hub module needs at least one signature")
            names = list(module.tensors)
            all_signatures = list(dict.fromkeys(["default", *module.signatures]))
            arrays_file = os.path.join(tmp, f"arrays-{i}.npz")
            spec_file = os.path.join(tmp, f"spec-{i}.json")
            np.savez(arrays_file, **{f"t{j}": np.asarray(module.tensors[n]) for j, n in enumerate(names)})
            with open(spec_file, "w") as f:
                json.dump({"names": names, "signatures": all_signatures, "outputs": module.outputs or {}}, f)
            jobs.append((os.fspath(module.folder), arrays_file, spec_file))
        jobs_file = os.path.join(tmp, "jobs.json")
        with open(jobs_file, "w") as f:
            json.dump(jobs, f)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        result = subprocess.run(
            [sys.executable, "-c", _HUB_SCRIPT, jobs_file], capture_output=True, text=True, env=env, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"hub module export failed:\n{result.stderr[-4000:]}")
    return [folder for folder, _, _ in jobs]
