"""irv2's streaming safetensors writer writes what ``safetensors.torch.save`` writes, byte for byte, and the
checksum it returns is that file's SHA-256."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch
from safetensors.torch import load, save

from irv2.model import InceptionResNetV2
from irv2.weights.safetensors_writer import write_safetensors


def _written(tensors, metadata) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    sha256 = write_safetensors(buffer, tensors, metadata)
    return buffer.getvalue(), sha256


def test_the_network_as_safetensors_writes_it():
    tensors = InceptionResNetV2(num_classes=1001).state_dict()  # float32 weights and int64 BatchNorm counters
    data, sha256 = _written(tensors, {"format": "pt"})
    assert data == save(tensors, metadata={"format": "pt"})
    assert sha256 == hashlib.sha256(data).hexdigest()


def test_every_dtype_empty_and_scalar_tensors_and_unicode_names():
    tensors = {
        "z-empty": torch.zeros(0, 3),
        "b-scalar": torch.tensor(3),
        "ü-bf16": torch.randn(3, dtype=torch.bfloat16),
        "a-f64": torch.ones(2, 3, dtype=torch.float64),
        "m-bool": torch.tensor([True, False, True]),
        "h-f16": torch.randn(5).half(),
        "i-i32": torch.arange(4, dtype=torch.int32),
        "u-u8": torch.arange(3, dtype=torch.uint8),
        "t-transposed": torch.arange(6.0).reshape(2, 3).t(),  # not contiguous: written as its values
    }
    metadata = {"format": "pt"}  # one key: safetensors keeps metadata in a hash map, its order differs per process
    data, sha256 = _written(tensors, metadata)
    assert data == save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
    assert sha256 == hashlib.sha256(data).hexdigest()
    back = load(data)
    for name, tensor in tensors.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name


def test_a_dtype_safetensors_lacks_is_refused_by_name():
    with pytest.raises(TypeError, match=r"weird: safetensors has no dtype for torch\.complex64"):
        _written({"weird": torch.zeros(2, dtype=torch.complex64)}, {})
