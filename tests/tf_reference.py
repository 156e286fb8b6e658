"""TensorFlow as the reference: Keras' InceptionResNetV2 carrying TF-Slim weights, and TF-Slim's eval
preprocessing built from TF ops. Tests only; TensorFlow is never a runtime dependency of irv2.
"""

from __future__ import annotations

import re

import numpy as np


def tf_preprocess_for_eval(image_uint8: np.ndarray, size: int = 299) -> np.ndarray:
    """TF-Slim ``preprocess_for_eval`` minus the final [-1, 1] step (the TF-Hub module does that)."""
    import tensorflow as tf

    image = tf.image.convert_image_dtype(tf.constant(image_uint8), tf.float32)
    image = tf.image.central_crop(image, central_fraction=0.875)
    image = tf.compat.v1.image.resize_bilinear(image[None], [size, size], align_corners=False)[0]
    return image.numpy()


def _suffix(name: str) -> int:
    match = re.fullmatch(r"[a-z_0-9]+?(?:_(\d+))?", name)
    return int(match.group(1) or 0) if match else -1


def keras_reference(weights: dict[str, np.ndarray], num_classes: int = 1001):
    """A Keras model ``[-1, 1] NHWC → (logits, avg_pool features)`` holding the TF-Slim ``weights``.

    Pairing (from the spec's verified notes): BN convs in creation order, which is the numeric suffix
    of Keras' auto names; up-projections by ``block35_i_conv``/``block17_i_conv``/``block8_i_conv``
    (the final Block8 is ``block8_10``); ``conv_7b``/``conv_7b_bn``; ``predictions``.
    """
    import keras

    from slim_template import layers as slim_layers

    model = keras.applications.InceptionResNetV2(weights=None, classes=num_classes, classifier_activation=None)
    by_name = {layer.name: layer for layer in model.layers}
    convs = sorted(
        (la for la in model.layers if re.fullmatch(r"conv2d(_\d+)?", la.name)), key=lambda la: _suffix(la.name)
    )
    bns = sorted(
        (la for la in model.layers if re.fullmatch(r"batch_normalization(_\d+)?", la.name)),
        key=lambda la: _suffix(la.name),
    )
    main_bn = [scope for kind, scope, _ in slim_layers(num_classes, aux=False) if kind == "bn"]
    assert main_bn[-1].endswith("Conv2d_7b_1x1")
    assert len(convs) == len(bns) == len(main_bn) - 1, (len(convs), len(bns), len(main_bn))

    def bn_weights(scope):
        return [weights[f"{scope}/BatchNorm/{s}"] for s in ("beta", "moving_mean", "moving_variance")]

    for conv, bn, scope in zip(convs, bns, main_bn[:-1], strict=True):
        conv.set_weights([weights[f"{scope}/weights"]])
        bn.set_weights(bn_weights(scope))
    by_name["conv_7b"].set_weights([weights["InceptionResnetV2/Conv2d_7b_1x1/weights"]])
    by_name["conv_7b_bn"].set_weights(bn_weights("InceptionResnetV2/Conv2d_7b_1x1"))
    for tf_block, keras_block, count in (("Repeat/block35", "block35", 10), ("Repeat_1/block17", "block17", 20),
                                         ("Repeat_2/block8", "block8", 9)):  # fmt: skip
        for i in range(1, count + 1):
            scope = f"InceptionResnetV2/{tf_block}_{i}/Conv2d_1x1"
            by_name[f"{keras_block}_{i}_conv"].set_weights([weights[f"{scope}/weights"], weights[f"{scope}/biases"]])
    scope = "InceptionResnetV2/Block8/Conv2d_1x1"
    by_name["block8_10_conv"].set_weights([weights[f"{scope}/weights"], weights[f"{scope}/biases"]])
    logits = "InceptionResnetV2/Logits/Logits"
    by_name["predictions"].set_weights([weights[f"{logits}/weights"], weights[f"{logits}/biases"]])
    return keras.Model(model.inputs, [model.output, by_name["avg_pool"].output])


def keras_forward(model, images01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and features for images ``[B, H, W, 3]`` in [0, 1], mapped to [-1, 1] as TF-Hub does."""
    logits, features = model([2.0 * images01.astype(np.float32) - 1.0], training=False)
    return np.asarray(logits), np.asarray(features)
