"""Strict conversion of TF-Slim tensors: every tensor used once, offenders named (fast, no TensorFlow)."""

import numpy as np
import pytest
import torch

from irv2.errors import WeightMismatchError
from irv2.model import InceptionResNetV2
from irv2.weights.slim_convert import inspect_layout, slim_to_state_dict
from slim_template import variables


def zeros(num_classes=1001, aux=True):
    return {name: np.zeros(shape, np.float32) for name, shape in variables(num_classes, aux).items()}


def convert(tensors):
    layout = inspect_layout(tensors)
    net = InceptionResNetV2(num_classes=layout.num_classes, aux_logits=layout.aux_logits)
    return net, slim_to_state_dict(tensors, {k: v.shape for k, v in net.state_dict().items()}, layout=layout)


def test_layout_is_read_from_the_tensors():
    assert inspect_layout(zeros()) == (1001, True)
    assert inspect_layout(zeros(1000, aux=False)) == (1000, False)
    assert inspect_layout(zeros(0, aux=False)) == (0, False)  # a feature_vector module


def test_layout_transforms():
    tensors = zeros()
    kernel = np.arange(3 * 3 * 3 * 32, dtype=np.float32).reshape(3, 3, 3, 32)  # HWIO
    dense = np.arange(1536 * 1001, dtype=np.float32).reshape(1536, 1001)  # [in, out]
    tensors["InceptionResnetV2/Conv2d_1a_3x3/weights"] = kernel
    tensors["InceptionResnetV2/Logits/Logits/weights"] = dense
    net, conversion = convert(tensors)
    net.load_state_dict(conversion.state_dict, strict=True)
    # PyTorch's [out, in, kh, kw][o, i, y, x] must be TF's [kh, kw, in, out][y, x, i, o].
    assert net.conv2d_1a.conv.weight[5, 2, 1, 0] == kernel[1, 0, 2, 5]
    assert net.classif.weight[7, 100] == dense[100, 7]
    assert torch.equal(net.conv2d_1a.bn.weight, torch.ones(32))


def test_non_weights_are_ignored_and_reported():
    tensors = zeros()
    tensors["global_step"] = np.array(7, np.int64)
    tensors["InceptionResnetV2/Conv2d_1a_3x3/weights/RMSProp"] = np.zeros((3, 3, 3, 32), np.float32)
    _, conversion = convert(tensors)
    assert sorted(conversion.ignored) == ["InceptionResnetV2/Conv2d_1a_3x3/weights/RMSProp", "global_step"]


def test_missing_tensor_is_named():
    tensors = zeros()
    del tensors["InceptionResnetV2/Repeat_1/block17_7/Branch_1/Conv2d_0b_1x7/BatchNorm/moving_variance"]
    with pytest.raises(WeightMismatchError, match=r"missing tensor .*block17_7/Branch_1/Conv2d_0b_1x7/BatchNorm"):
        convert(tensors)


def test_wrong_shape_is_named_in_tf_layout():
    tensors = zeros()
    tensors["InceptionResnetV2/Mixed_6a/Branch_0/Conv2d_1a_3x3/weights"] = np.zeros((3, 3, 320, 383), np.float32)
    with pytest.raises(WeightMismatchError, match=r"Mixed_6a/Branch_0/Conv2d_1a_3x3/weights: shape \[3, 3, 320, 383\], "
                       r"expected \[3, 3, 320, 384\]"):  # fmt: skip
        convert(tensors)


def test_unknown_tensor_inside_the_scope_is_an_error():
    # A gamma means a network built with scale=True: not this one, and silently dropping it would be wrong.
    tensors = zeros()
    tensors["InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/gamma"] = np.ones(32, np.float32)
    with pytest.raises(WeightMismatchError, match="unexpected tensor InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/gamma"):
        convert(tensors)


def test_integer_tensor_is_refused():
    tensors = zeros()
    tensors["InceptionResnetV2/Conv2d_7b_1x1/BatchNorm/beta"] = np.zeros(1536, np.int32)
    with pytest.raises(WeightMismatchError, match="Conv2d_7b_1x1/BatchNorm/beta: dtype int32"):
        convert(tensors)
