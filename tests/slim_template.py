"""TF-Slim's inception_resnet_v2 variables, written out independently of irv2 from the spec's template.

The spec's table (section 3.2) was checked against the original TF-Slim code: 908 variables with these
names and shapes. Layers are listed in TF-Slim's creation order, which is also the order Keras creates
its auto-named ``conv2d_N``/``batch_normalization_N`` layers in, so the two can be paired one to one.
"""

from __future__ import annotations

S = "InceptionResnetV2"


def _bn(scope, cin, cout, kh, kw):
    return [("bn", f"{S}/{scope}", (kh, kw, cin, cout))]


def _up(scope, cin, cout):
    return [("up", f"{S}/{scope}", (1, 1, cin, cout))]


def _block35(p):
    return (_bn(f"{p}/Branch_0/Conv2d_1x1", 320, 32, 1, 1) + _bn(f"{p}/Branch_1/Conv2d_0a_1x1", 320, 32, 1, 1)
            + _bn(f"{p}/Branch_1/Conv2d_0b_3x3", 32, 32, 3, 3) + _bn(f"{p}/Branch_2/Conv2d_0a_1x1", 320, 32, 1, 1)
            + _bn(f"{p}/Branch_2/Conv2d_0b_3x3", 32, 48, 3, 3) + _bn(f"{p}/Branch_2/Conv2d_0c_3x3", 48, 64, 3, 3)
            + _up(f"{p}/Conv2d_1x1", 128, 320))  # fmt: skip


def _block17(p):
    return (_bn(f"{p}/Branch_0/Conv2d_1x1", 1088, 192, 1, 1) + _bn(f"{p}/Branch_1/Conv2d_0a_1x1", 1088, 128, 1, 1)
            + _bn(f"{p}/Branch_1/Conv2d_0b_1x7", 128, 160, 1, 7) + _bn(f"{p}/Branch_1/Conv2d_0c_7x1", 160, 192, 7, 1)
            + _up(f"{p}/Conv2d_1x1", 384, 1088))  # fmt: skip


def _block8(p):
    return (_bn(f"{p}/Branch_0/Conv2d_1x1", 2080, 192, 1, 1) + _bn(f"{p}/Branch_1/Conv2d_0a_1x1", 2080, 192, 1, 1)
            + _bn(f"{p}/Branch_1/Conv2d_0b_1x3", 192, 224, 1, 3) + _bn(f"{p}/Branch_1/Conv2d_0c_3x1", 224, 256, 3, 1)
            + _up(f"{p}/Conv2d_1x1", 448, 2080))  # fmt: skip


def _convs(prefix, rows):
    return [
        layer for scope, cin, cout, kh, kw in rows for layer in _bn(f"{prefix}/{scope}".lstrip("/"), cin, cout, kh, kw)
    ]


def layers(num_classes: int = 1001, aux: bool = True):
    """``[(kind, scope, kernel_shape_hwio)]`` in creation order; kind is "bn", "up" or "fc"."""
    out = _convs(
        "",
        [
            ("Conv2d_1a_3x3", 3, 32, 3, 3),
            ("Conv2d_2a_3x3", 32, 32, 3, 3),
            ("Conv2d_2b_3x3", 32, 64, 3, 3),
            ("Conv2d_3b_1x1", 64, 80, 1, 1),
            ("Conv2d_4a_3x3", 80, 192, 3, 3),
        ],
    )
    out += _convs(
        "Mixed_5b",
        [
            ("Branch_0/Conv2d_1x1", 192, 96, 1, 1),
            ("Branch_1/Conv2d_0a_1x1", 192, 48, 1, 1),
            ("Branch_1/Conv2d_0b_5x5", 48, 64, 5, 5),
            ("Branch_2/Conv2d_0a_1x1", 192, 64, 1, 1),
            ("Branch_2/Conv2d_0b_3x3", 64, 96, 3, 3),
            ("Branch_2/Conv2d_0c_3x3", 96, 96, 3, 3),
            ("Branch_3/Conv2d_0b_1x1", 192, 64, 1, 1),
        ],
    )
    for k in range(1, 11):
        out += _block35(f"Repeat/block35_{k}")
    out += _convs(
        "Mixed_6a",
        [
            ("Branch_0/Conv2d_1a_3x3", 320, 384, 3, 3),
            ("Branch_1/Conv2d_0a_1x1", 320, 256, 1, 1),
            ("Branch_1/Conv2d_0b_3x3", 256, 256, 3, 3),
            ("Branch_1/Conv2d_1a_3x3", 256, 384, 3, 3),
        ],
    )
    for k in range(1, 21):
        out += _block17(f"Repeat_1/block17_{k}")
    if aux and num_classes:
        out += _convs("AuxLogits", [("Conv2d_1b_1x1", 1088, 128, 1, 1), ("Conv2d_2a_5x5", 128, 768, 5, 5)])
        out += [("fc", f"{S}/AuxLogits/Logits", (768, num_classes))]
    out += _convs(
        "Mixed_7a",
        [
            ("Branch_0/Conv2d_0a_1x1", 1088, 256, 1, 1),
            ("Branch_0/Conv2d_1a_3x3", 256, 384, 3, 3),
            ("Branch_1/Conv2d_0a_1x1", 1088, 256, 1, 1),
            ("Branch_1/Conv2d_1a_3x3", 256, 288, 3, 3),
            ("Branch_2/Conv2d_0a_1x1", 1088, 256, 1, 1),
            ("Branch_2/Conv2d_0b_3x3", 256, 288, 3, 3),
            ("Branch_2/Conv2d_1a_3x3", 288, 320, 3, 3),
        ],
    )
    for k in range(1, 10):
        out += _block8(f"Repeat_2/block8_{k}")
    out += _block8("Block8") + _bn("Conv2d_7b_1x1", 2080, 1536, 1, 1)
    if num_classes:
        out += [("fc", f"{S}/Logits/Logits", (1536, num_classes))]
    return out


def variables(num_classes: int = 1001, aux: bool = True) -> dict[str, tuple[int, ...]]:
    """Every variable name → TF shape (908 for the full 1001-class network)."""
    shapes = {}
    for kind, scope, shape in layers(num_classes, aux):
        if kind == "bn":
            shapes[f"{scope}/weights"] = shape
            for stat in ("beta", "moving_mean", "moving_variance"):
                shapes[f"{scope}/BatchNorm/{stat}"] = (shape[-1],)
        else:
            shapes[f"{scope}/weights"] = shape
            shapes[f"{scope}/biases"] = (shape[-1],)
    return shapes
