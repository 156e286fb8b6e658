"""Session-wide fixtures for the TensorFlow parity tests.

Full-size weights (908 tensors, 237 MB) are generated once per session, written by TensorFlow itself in
each original format, and compared against a TensorFlow forward pass with the same weights. Everything
here is lazy: the fast tests never import TensorFlow.
"""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The suite pins eager PyTorch for every load that names no engine, here and in every irv2 process it starts:
# left to "auto", each new set of weights would first be converted for ONNX Runtime or OpenVINO (seconds to
# minutes per test). Tests of the engines name them; tests of the automatic choice unset this variable.
os.environ["IRV2_ENGINE"] = "torch"

pytest_plugins = ["shared_exports"]


@pytest.fixture(autouse=True)
def _fresh_engine_notices():
    """Each test sees the automatic choice's once-per-process notices afresh."""
    from irv2 import notices

    notices.forget()


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera")


@pytest.fixture(scope="session")
def photo_arrays() -> dict[str, np.ndarray]:
    """Real photos shipped with scikit-image, as uint8 RGB arrays."""
    from skimage import data

    arrays = {}
    for name in PHOTOS:
        image = getattr(data, name)()
        arrays[name] = image[..., :3] if image.ndim == 3 else np.stack([image] * 3, -1)
    return arrays


@pytest.fixture(scope="session")
def photos(photo_arrays) -> np.ndarray:
    """The photos through TensorFlow's TF-Slim eval preprocessing: ``[N, 299, 299, 3]`` in [0, 1]."""
    from tf_reference import tf_preprocess_for_eval

    return np.stack([tf_preprocess_for_eval(image) for image in photo_arrays.values()])


@pytest.fixture(scope="session")
def slim_weights(photos) -> dict[str, np.ndarray]:
    """All 908 TF-Slim variables, seeded, with BatchNorm statistics calibrated on real photos."""
    from fixture_weights import calibrate_batchnorm, random_slim_weights

    weights = random_slim_weights(seed=2016)
    calibrate_batchnorm(weights, photos)
    return weights


@pytest.fixture(scope="session")
def tf_outputs(slim_weights, photos) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow's (logits [N, 1001], features [N, 1536]) for ``photos`` with ``slim_weights``."""
    from tf_reference import keras_forward, keras_reference

    return keras_forward(keras_reference(slim_weights), photos)


@pytest.fixture(scope="session")
def tf_endpoints(slim_weights, photos) -> dict[str, np.ndarray]:
    """TensorFlow's values of every TF-Slim end point (NHWC) for ``photos`` with ``slim_weights``."""
    from tf_reference import keras_endpoints, keras_reference

    return keras_endpoints(keras_reference(slim_weights), photos)


def _without(weights: dict[str, np.ndarray], *scopes: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in weights.items() if not k.startswith(scopes)}


@pytest.fixture(scope="session")
def tf_files(tmp_path_factory, slim_weights) -> dict[str, str]:
    """The weights as TensorFlow writes them: V2 prefix, V1 file, TF1 Hub modules and tarballs."""
    import tf_writers

    root = tmp_path_factory.mktemp("tf_files")
    files = {}
    with_step = {**slim_weights, "global_step": np.array(1000, np.int64)}
    files["v2"] = str(root / "v2" / "model.ckpt")
    tf_writers.write_v2(files["v2"], with_step)
    slim_dir = root / "inception_resnet_v2_2016_08_30"
    slim_dir.mkdir()
    files["v1"] = str(slim_dir / "inception_resnet_v2_2016_08_30.ckpt")
    tf_writers.write_v1(files["v1"], with_step)
    features_only = _without(slim_weights, "InceptionResnetV2/Logits/", "InceptionResnetV2/AuxLogits/")
    files["hub_classification"], files["hub_feature_vector"] = tf_writers.write_hub_modules(
        [
            tf_writers.HubModule(root / "classification_1", slim_weights),
            tf_writers.HubModule(root / "feature_vector_1", features_only, signatures=("image_feature_vector",)),
        ]
    )
    # The TF-Slim tarball holds the single .ckpt file; a compressed TF-Hub module holds the folder's contents.
    files["slim_tarball"] = str(root / "inception_resnet_v2_2016_08_30.tar.gz")
    with tarfile.open(files["slim_tarball"], "w:gz", compresslevel=1) as tar:
        tar.add(files["v1"], arcname="inception_resnet_v2_2016_08_30.ckpt")
    files["hub_tarball"] = str(root / "classification_1.tar.gz")
    with tarfile.open(files["hub_tarball"], "w:gz", compresslevel=1) as tar:
        for entry in sorted(os.listdir(files["hub_classification"])):
            tar.add(os.path.join(files["hub_classification"], entry), arcname=entry)
    return files


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory, photo_arrays):
    """A native irv2 module (``irv2.save``) of a random 1001-class network (for the CLI and batch tests)."""
    import irv2
    from random_module import random_module

    path = tmp_path_factory.mktemp("weights") / "random-irv2"
    irv2.save(random_module(photo_arrays), path)
    return path


# The module size of `small_weights_dir`: near the network's smallest input (75 px), where its grids are
# 5x5 (Mixed_6a) and 2x2 (Conv2d_7b) instead of 17x17 and 8x8.
SMALL_SIZE = 107


@pytest.fixture(scope="session")
def small_weights_dir(tmp_path_factory, weights_dir):
    """``weights_dir``'s network recorded at 107 px, as a module fine-tuned at that size records it: the same
    908 tensors at about a ninth of the work per image. For the tests of what surrounds the network (batch
    jobs that resume, torchrun, Ray), which run it on a hundred images; its numbers are tested at 299 px."""
    import irv2
    from irv2.api import Module, ModuleInfo

    module = irv2.load(weights_dir)
    info = module.info
    small = ModuleInfo(
        info.num_classes,
        info.labels,
        image_size=SMALL_SIZE,
        default_signature=info.default_signature,
        preprocessing=info.preprocessing,
        provenance=info.provenance,
    )
    return irv2.save(Module(module.model, small), tmp_path_factory.mktemp("weights") / f"random-irv2-{SMALL_SIZE}px")


# Fixtures that import TensorFlow: a test that uses one needs TensorFlow and belongs to the slow (parity) layer.
_TENSORFLOW_FIXTURES = {"tf", "photos", "slim_weights", "tf_outputs", "tf_endpoints", "tf_files"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _TENSORFLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.tensorflow)
