"""Keras .h5 files that are not the right weights fail clearly (fast; the parity test is in test_parity)."""

import h5py
import numpy as np
import pytest

import irv2


def test_hdf5_that_is_not_keras_weights(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(irv2.CheckpointError, match=r"data\.h5: .*not Keras weights"):
        irv2.load(path)


def test_keras_weights_of_another_network(tmp_path):
    path = tmp_path / "vgg.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv2d_1", b"dense_1"]
        for layer, weight in (("conv2d_1", "kernel:0"), ("dense_1", "kernel:0")):
            group = f.create_group(layer)
            group.attrs["weight_names"] = [f"{layer}/{weight}".encode()]
            group[f"{layer}/{weight}"] = np.zeros((3, 3), np.float32)
    with pytest.raises(irv2.WeightMismatchError, match=r"vgg\.h5: not Keras' InceptionResNetV2: 1 auto-named convs"):
        irv2.load(path)


def test_truncated_hdf5(tmp_path):
    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"conv2d"]
        f.create_group("conv2d")["w"] = np.zeros((64, 64), np.float32)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(irv2.CheckpointError, match=r"cut\.h5"):
        irv2.load(path)
