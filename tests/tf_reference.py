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


# Keras' layer for each TF-Slim end point of the base network. The stem's layers have automatic names, so
# they are found by kind and position instead: five conv + BN + ReLU units and two max pools, in order.
_STEM_ACTIVATIONS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
_STEM_POOLS = ("MaxPool_3a_3x3", "MaxPool_5a_3x3")
_NAMED_ENDPOINTS = {
    "Mixed_5b": "mixed_5b",
    "Mixed_6a": "mixed_6a",
    "PreAuxLogits": "block17_20_ac",
    "Mixed_7a": "mixed_7a",
    "Conv2d_7b_1x1": "conv_7b_ac",
}


def keras_endpoints(reference, images01: np.ndarray, *, training: bool = False) -> dict[str, np.ndarray]:
    """TensorFlow's values of TF-Slim's end points (NHWC) for images ``[B, H, W, 3]`` in [0, 1], from the model
    ``keras_reference`` returns: the base network's, then ``global_pool``, ``PreLogitsFlatten``, ``Logits`` and
    ``Predictions`` (``tf.nn.softmax``). ``training`` runs BatchNorm on batch statistics (the train graph)."""
    import keras
    import tensorflow as tf

    layers = reference.layers
    activations = [la for la in layers if type(la).__name__ == "Activation"][: len(_STEM_ACTIVATIONS)]
    pools = [la for la in layers if type(la).__name__ == "MaxPooling2D"][: len(_STEM_POOLS)]
    sources = {
        **dict(zip(_STEM_ACTIVATIONS, activations, strict=True)),
        **dict(zip(_STEM_POOLS, pools, strict=True)),
        **{name: reference.get_layer(layer) for name, layer in _NAMED_ENDPOINTS.items()},
    }
    logits_layer = reference.get_layer("predictions")
    pool_layer = reference.get_layer("avg_pool")
    names = list(sources)
    probe = keras.Model(
        reference.inputs, [sources[name].output for name in names] + [pool_layer.output, logits_layer.output]
    )
    *maps, pooled, logits = probe([2.0 * images01.astype(np.float32) - 1.0], training=training)
    points = {name: np.asarray(value) for name, value in zip(names, maps, strict=True)}
    points["global_pool"] = np.asarray(pooled)[:, None, None, :]
    points["PreLogitsFlatten"] = np.asarray(pooled)
    points["Logits"] = np.asarray(logits)
    points["Predictions"] = np.asarray(tf.nn.softmax(logits))
    return points


def tf_aux_logits(pre_aux_logits: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """TF-Slim's ``AuxLogits`` head in its train graph, in TensorFlow ops: 5x5/3 VALID average pool, two
    conv + BatchNorm (on batch statistics, epsilon 0.001, no scale) + ReLU, flatten, fully connected."""
    import tensorflow as tf

    def conv_bn_relu(x, scope, padding):
        x = tf.nn.conv2d(x, weights[f"{scope}/weights"], strides=1, padding=padding)
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
        x = tf.nn.batch_normalization(x, mean, variance, weights[f"{scope}/BatchNorm/beta"], None, 1e-3)
        return tf.nn.relu(x)

    scope = "InceptionResnetV2/AuxLogits"
    x = tf.nn.avg_pool2d(tf.constant(pre_aux_logits), ksize=5, strides=3, padding="VALID")
    x = conv_bn_relu(x, f"{scope}/Conv2d_1b_1x1", "SAME")
    x = conv_bn_relu(x, f"{scope}/Conv2d_2a_5x5", "VALID")
    x = tf.reshape(x, [x.shape[0], -1])
    return np.asarray(tf.matmul(x, weights[f"{scope}/Logits/weights"]) + weights[f"{scope}/Logits/biases"])
