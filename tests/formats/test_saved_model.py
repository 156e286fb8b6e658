"""The signatures' outputs of a ``saved_model.pb``, read from SavedModel bytes built here field by field (spec 4.3,
6.3 and TensorFlow's ``meta_graph.proto``), and damaged files, which must be a ``CheckpointError`` naming the file.
``test_readers.py`` reads files that TensorFlow wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from irv2.errors import CheckpointError
from irv2.formats import DeclaredTensor, hub_module_outputs, hub_module_signatures
from protobuf_encoding import field_bytes, field_varint

FLOAT, INT64, FLOAT_REF = 1, 9, 101  # DataType numbers; a ref type is its base + 100


def shape(dims: list[int] | None) -> bytes:
    """A TensorShapeProto: a dim (field 2) of size (1) each; None is an unknown rank (field 3)."""
    if dims is None:
        return field_varint(3, 1)
    return b"".join(field_bytes(2, field_varint(1, size)) for size in dims)


def tensor_info(dtype: int, dims: list[int] | None, *, encoding: int = 1, name: str = "out:0") -> bytes:
    """A TensorInfo: the encoding (name = 1, coo_sparse = 4, composite_tensor = 5), dtype = 2, tensor_shape = 3."""
    encoded = field_bytes(1, name.encode()) if encoding == 1 else field_bytes(encoding, field_bytes(1, b"x"))
    return encoded + field_varint(2, dtype) + field_bytes(3, shape(dims))


def entry(key: str, value: bytes) -> bytes:
    """A map entry: key = 1, value = 2."""
    return field_bytes(1, key.encode()) + field_bytes(2, value)


def signature_def(outputs: dict[str, bytes]) -> bytes:
    """A SignatureDef: inputs = 1, outputs = 2 (maps), method_name = 3."""
    inputs = field_bytes(1, entry("images", tensor_info(FLOAT, [-1, 299, 299, 3], name="images:0")))
    method = field_bytes(3, b"image_classification")
    return inputs + b"".join(field_bytes(2, entry(key, info)) for key, info in outputs.items()) + method


def meta_graph(tags: list[str], signatures: dict[str, bytes]) -> bytes:
    """A MetaGraphDef: meta_info_def = 1 (tags = 4), graph_def = 2 (left as opaque bytes), signature_def = 5."""
    info = b"".join(field_bytes(4, tag.encode()) for tag in tags)
    graph = field_bytes(1, b"\x0a\x03Mul")  # a stand-in GraphDef: never parsed
    return (
        field_bytes(1, info)
        + field_bytes(2, graph)
        + b"".join(field_bytes(5, entry(k, v)) for k, v in signatures.items())
    )


def saved_model(*graphs: bytes) -> bytes:
    """A SavedModel: saved_model_schema_version = 1, meta_graphs = 2."""
    return field_varint(1, 1) + b"".join(field_bytes(2, graph) for graph in graphs)


def module_folder(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "tfhub_module.pb").write_bytes(b"\x08\x03")
    (tmp_path / "saved_model.pb").write_bytes(data)
    return tmp_path


CLASSIFICATION = signature_def(
    {
        "default": tensor_info(FLOAT, [-1, 1001]),
        "InceptionResnetV2/Mixed_6a": tensor_info(FLOAT_REF, [-1, -1, -1, 1088]),
        "rank_unknown": tensor_info(FLOAT, None),
        "ids": tensor_info(INT64, [-1], encoding=4),
        "ragged": tensor_info(FLOAT, [-1, -1], encoding=5),
        "scalar": tensor_info(0, []),
        "future": tensor_info(77, [2]),
    }
)
FEATURES = signature_def({"default": tensor_info(FLOAT, [-1, 1536])})


def test_outputs_of_each_signature_per_tag_set(tmp_path):
    data = saved_model(
        meta_graph([], {"default": CLASSIFICATION, "image_classification": CLASSIFICATION}),
        meta_graph(["train"], {"image_feature_vector": FEATURES}),
        meta_graph(["serve", "gpu"], {}),
    )
    outputs = hub_module_outputs(module_folder(tmp_path, data))
    assert list(outputs) == [(), ("train",), ("gpu", "serve")]  # tags sorted, tag sets in file order
    assert outputs[("gpu", "serve")] == {}  # a graph without signatures
    assert outputs[("train",)] == {"image_feature_vector": {"default": DeclaredTensor("float32", (None, 1536))}}
    declared = outputs[()]["image_classification"]
    assert declared == outputs[()]["default"]
    assert declared == {
        "default": DeclaredTensor("float32", (None, 1001)),
        "InceptionResnetV2/Mixed_6a": DeclaredTensor("float32", (None, None, None, 1088)),  # a ref type as its base
        "rank_unknown": DeclaredTensor("float32", None),
        "ids": DeclaredTensor("int64", (None,), "coo_sparse"),
        "ragged": DeclaredTensor("float32", (None, None), "composite_tensor"),
        "scalar": DeclaredTensor("invalid", ()),
        "future": DeclaredTensor("DataType 77", (2,)),
    }
    assert hub_module_signatures(tmp_path) == {
        (): ["default", "image_classification"],
        ("train",): ["image_feature_vector"],
        ("gpu", "serve"): [],
    }


def test_a_key_given_twice_keeps_its_last_value(tmp_path):
    outputs = field_bytes(2, entry("default", tensor_info(FLOAT, [-1, 1]))) + field_bytes(
        2, entry("default", tensor_info(FLOAT, [-1, 1001]))
    )
    data = saved_model(meta_graph([], {"default": outputs}))
    assert hub_module_outputs(module_folder(tmp_path, data)) == {
        (): {"default": {"default": DeclaredTensor("float32", (None, 1001))}}
    }


def test_a_file_without_graphs_declares_nothing(tmp_path):
    assert hub_module_outputs(module_folder(tmp_path, field_varint(1, 1))) == {}


GOOD = saved_model(meta_graph([], {"default": CLASSIFICATION}), meta_graph(["train"], {"default": CLASSIFICATION}))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (GOOD[:-7], "runs .* bytes past its message"),  # truncated
        (GOOD[:1], "truncated varint"),
        (b"\x12", "truncated varint"),
        (field_varint(2, 5), "field 2 should be a message"),  # meta_graphs as a number
        (saved_model(field_bytes(1, field_bytes(4, b"\xff\xfe"))), "utf-8"),  # a tag that is not text
        (saved_model(field_bytes(5, entry("default", field_varint(2, 1)))), "field 2 should be a message"),
        (b"\x0f" + GOOD, "unsupported wire type 7"),
        (b"PK\x03\x04 not a protobuf at all", "not a SavedModel"),
    ],
)
def test_a_damaged_saved_model_names_the_file(tmp_path, data, problem):
    folder = module_folder(tmp_path, data)
    with pytest.raises(CheckpointError, match=problem) as caught:
        hub_module_outputs(folder)
    assert caught.value.path == str(folder / "saved_model.pb")
    assert "not a SavedModel" in str(caught.value)


def test_a_missing_saved_model_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read") as caught:
        hub_module_outputs(tmp_path)
    assert caught.value.path == str(tmp_path / "saved_model.pb")
