"""Print irv2's agreement with TensorFlow for every original file format (the parity tests' numbers).

    .venv/bin/python benchmarks/parity_report.py

TensorFlow writes seeded full-size TF-Slim weights (BatchNorm statistics calibrated on real photos) as a
V2 checkpoint, a V1 checkpoint, a TF1 Hub module and their tarballs; irv2 loads each and is compared
with a TensorFlow (Keras) forward pass of the same weights on scikit-image's photos.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from skimage import data

import irv2
import tf_writers
from fixture_weights import calibrate_batchnorm, random_slim_weights
from tf_reference import keras_forward, keras_reference, tf_preprocess_for_eval


def main() -> None:
    names = ("astronaut", "chelsea", "coffee", "rocket")
    photos = np.stack([tf_preprocess_for_eval(getattr(data, n)()) for n in names])
    weights = random_slim_weights(seed=2016)
    calibrate_batchnorm(weights, photos)
    tf_logits, tf_features = keras_forward(keras_reference(weights), photos)
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "TF checkpoint V2": tf_writers.write_v2(f"{tmp}/v2/model.ckpt", weights),
            "TF checkpoint V1 (.ckpt)": tf_writers.write_v1(f"{tmp}/slim/model.ckpt", weights),
            "TF1 Hub module folder": tf_writers.write_hub_module(f"{tmp}/hub", weights),
        }
        with tarfile.open(f"{tmp}/slim.tar.gz", "w:gz", compresslevel=1) as tar:
            tar.add(files["TF checkpoint V1 (.ckpt)"], arcname="inception_resnet_v2_2016_08_30.ckpt")
        files["TF-Slim tarball (.tar.gz)"] = f"{tmp}/slim.tar.gz"
        print(f"{'source':28} {'load s':>7} {'logits':>9} {'features':>9}  top-1 equal")
        for label, path in files.items():
            start = time.perf_counter()
            module = irv2.load(path)
            seconds = time.perf_counter() - start
            logits, features = module(photos), module(photos, signature="image_feature_vector")
            err_l = np.abs(logits - tf_logits).max() / np.abs(tf_logits).max()
            err_f = np.abs(features - tf_features).max() / np.abs(tf_features).max()
            same = bool((logits.argmax(1) == tf_logits.argmax(1)).all())
            print(f"{label:28} {seconds:7.2f} {err_l:9.2e} {err_f:9.2e}  {same}")
        native = irv2.save(irv2.load(files["TF checkpoint V2"]), f"{tmp}/native")
        start = time.perf_counter()
        irv2.load(native)(photos[:1])
        print(f"native irv2 module: load + first prediction {time.perf_counter() - start:.2f} s")
    print("(errors are max |irv2 - TF| / max |TF|)")


if __name__ == "__main__":
    main()
