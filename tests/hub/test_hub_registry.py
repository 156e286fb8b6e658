"""The registry of weight sources, handle resolution, cache locations and describe()."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from irv2.errors import HandleError
from irv2.hub import (
    artifact_path,
    default_source,
    describe,
    fetch,
    find_source,
    irv2_home,
    is_offline,
    module_cache_dir,
    resolve_source,
    source_for_url,
    sources,
)
from irv2.hub.registry import parse_checksum

CLASSIFICATION = "https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1"
SLIM_URL = "http://download.tensorflow.org/models/inception_resnet_v2_2016_08_30.tar.gz"
KERAS_FILE = "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"


@pytest.mark.parametrize(
    ("handle", "name"),
    [
        ("tfhub-classification-1", "tfhub-classification-1"),
        (CLASSIFICATION, "tfhub-classification-1"),
        (CLASSIFICATION + "/", "tfhub-classification-1"),
        (CLASSIFICATION.replace("https://", "http://"), "tfhub-classification-1"),
        (CLASSIFICATION + "?tf-hub-format=compressed", "tfhub-classification-1"),
        ("  " + CLASSIFICATION.upper() + "/?tf-hub-format=compressed ", "tfhub-classification-1"),
        ("google/imagenet/inception_resnet_v2/classification/1", "tfhub-classification-1"),
        ("google/imagenet/inception_resnet_v2/classification/1/", "tfhub-classification-1"),
        (
            "https://storage.googleapis.com/tfhub-modules/google/imagenet/inception_resnet_v2/classification/1.tar.gz",
            "tfhub-classification-1",
        ),
        ("https://tfhub.dev/google/imagenet/inception_resnet_v2/feature_vector/1", "tfhub-feature-vector-1"),
        ("google/imagenet/inception_resnet_v2/feature_vector/1", "tfhub-feature-vector-1"),
        ("tf-slim-2016-08-30", "tf-slim-2016-08-30"),
        (SLIM_URL, "tf-slim-2016-08-30"),
        (SLIM_URL.replace("http://", "https://"), "tf-slim-2016-08-30"),
        ("inception_resnet_v2_2016_08_30", "tf-slim-2016-08-30"),
        ("keras-imagenet", "keras-imagenet"),
        (
            f"https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/{KERAS_FILE}",
            "keras-imagenet",
        ),
        (f"https://github.com/fchollet/deep-learning-models/releases/download/v0.7/{KERAS_FILE}", "keras-imagenet"),
        ("timm-tf-in1k", "timm-tf-in1k"),
        ("timm/inception_resnet_v2.tf_in1k", "timm-tf-in1k"),
        ("inception_resnet_v2.tf_in1k", "timm-tf-in1k"),
        ("https://huggingface.co/timm/inception_resnet_v2.tf_in1k/resolve/main/model.safetensors", "timm-tf-in1k"),
    ],
)
def test_every_alias_form_resolves(handle, name):
    assert find_source(handle).name == name
    assert resolve_source(handle).name == name


KAGGLE_MODEL = "google/inception-resnet-v2"


def _kaggle_forms(variation: str) -> list[str]:
    """Every way Kaggle Models (where tfhub.dev redirects since November 2023) spells one model version."""
    short = f"https://www.kaggle.com/models/{KAGGLE_MODEL}/TensorFlow1/{variation}/1"
    long = f"https://www.kaggle.com/models/{KAGGLE_MODEL}/frameworks/TensorFlow1/variations/{variation}/versions/1"
    return [
        short,
        long,
        short + "/",
        short.replace("https://", "http://"),
        short.replace("www.kaggle.com", "kaggle.com"),
        short.removeprefix("https://"),  # pasted from an address bar that hides the scheme
        short.removeprefix("https://www."),
        long.removeprefix("https://"),
        long + "?tfhub-redirect=true",  # as tfhub.dev's redirect lands
        short + "?tf-hub-format=compressed",  # as tensorflow_hub fetches it
        long.replace("frameworks", "Frameworks").upper(),
        f"{KAGGLE_MODEL}/tensorFlow1/{variation}/1",  # Kaggle's model handle, as its pages write it
        f"{KAGGLE_MODEL}/TensorFlow1/{variation}/1",
        f"{KAGGLE_MODEL}/tensorflow1/{variation}/1",
        f" {KAGGLE_MODEL}/tensorFlow1/{variation}/1/ ",
        f"https://www.kaggle.com/api/v1/models/{KAGGLE_MODEL}/tensorFlow1/{variation}/1/download",
        f"tfhub.dev/google/imagenet/inception_resnet_v2/{variation.replace('-', '_')}/1",
    ]


@pytest.mark.parametrize(
    ("handle", "name"),
    [(h, "tfhub-classification-1") for h in _kaggle_forms("classification")]
    + [(h, "tfhub-feature-vector-1") for h in _kaggle_forms("feature-vector")],
)
def test_kaggle_models_handles_resolve_offline_to_the_tf_hub_records(handle, name, monkeypatch):
    monkeypatch.setenv("IRV2_OFFLINE", "1")  # resolving is a table look-up: no network, no server
    assert find_source(handle).name == name
    source = resolve_source(handle)
    assert source.name == name
    assert artifact_path(source).parent.name == name  # one cache folder, whatever the spelling


@pytest.mark.parametrize(
    "handle",
    [
        f"{KAGGLE_MODEL}/tensorFlow1/feature_vector/1",  # Kaggle spells the variation with a hyphen
        f"{KAGGLE_MODEL}/tensorFlow1/classification/2",
        f"{KAGGLE_MODEL}/tensorFlow2/classification/1",
        f"www.kaggle.com/models/{KAGGLE_MODEL}/TensorFlow1/classification/2",
        f"example.org/models/{KAGGLE_MODEL}/TensorFlow1/classification/1",
    ],
)
def test_near_miss_kaggle_handles_resolve_to_nothing(handle):
    assert find_source(handle) is None


def test_the_long_kaggle_path_is_shortened_on_kaggle_only():
    url = f"https://example.org/models/{KAGGLE_MODEL}/frameworks/TensorFlow1/variations/classification/versions/1"
    assert find_source(url) is None
    assert resolve_source(url).name.startswith("url-")  # an ad-hoc download, not the registered module


@pytest.mark.parametrize(
    "handle", ["resnet50", "google/imagenet/inception_v3/classification/1", "", "model.safetensors"]
)
def test_unknown_handles_resolve_to_nothing(handle):
    assert find_source(handle) is None
    with pytest.raises(HandleError, match="registered: tfhub-classification-1"):
        resolve_source(handle)


def test_default_source_is_the_tfhub_classification_module():
    source = default_source()
    assert source is resolve_source(None) is sources()[0]
    assert source.name == "tfhub-classification-1"
    assert source.urls[0] == CLASSIFICATION + "?tf-hub-format=compressed"
    assert source.urls[1].startswith("https://storage.googleapis.com/tfhub-modules/")
    assert source.urls[2] == (
        "https://www.kaggle.com/api/v1/models/google/inception-resnet-v2/tensorFlow1/classification/1/download"
    )
    assert (source.num_classes, source.label_offset, source.format) == (1001, 0, "tf-hub-module-tar")
    assert source.checksum is None  # nothing is published: trust on first use
    assert dict(source.preprocessing) == {
        "recipe": "tf_slim_eval",
        "central_fraction": 0.875,
        "resize": "bilinear_tf_legacy",
        "input_range": (0, 1),
    }
    assert source.license == "Apache-2.0"


def test_known_checksums_and_facts():
    by_name = {source.name: source for source in sources()}
    assert set(by_name) == {
        "tfhub-classification-1",
        "tfhub-feature-vector-1",
        "tf-slim-2016-08-30",
        "keras-imagenet",
        "timm-tf-in1k",
    }
    assert by_name["tf-slim-2016-08-30"].checksum == "md5:9e0f18e1259acf943e30690460d96123"
    assert by_name["tf-slim-2016-08-30"].urls == (SLIM_URL.replace("http:", "https:"), SLIM_URL)
    assert by_name["keras-imagenet"].checksum == "md5:e693bd0210a403b3192acc6073ad2e96"
    assert by_name["keras-imagenet"].filename == KERAS_FILE
    assert [u.split("/")[2] for u in by_name["keras-imagenet"].urls] == ["storage.googleapis.com", "github.com"]
    assert by_name["tfhub-feature-vector-1"].num_classes == 0
    assert (
        by_name["tfhub-feature-vector-1"].urls[2].endswith("/inception-resnet-v2/tensorFlow1/feature-vector/1/download")
    )
    assert by_name["timm-tf-in1k"].preprocessing["crop_pct"] == 0.8975
    assert by_name["timm-tf-in1k"].preprocessing["interpolation"] == "bicubic"
    assert by_name["timm-tf-in1k"].format == "safetensors"
    assert by_name["keras-imagenet"].format == "keras-h5"
    assert by_name["tf-slim-2016-08-30"].format == "tf-slim-tar"


@pytest.mark.parametrize("source", sources(), ids=lambda s: s.name)
def test_every_record_is_consistent(source):
    assert source.label_offset == {1001: 0, 1000: 1, 0: 0}[source.num_classes]
    assert all(url.startswith(("http://", "https://")) for url in source.urls)
    assert source.checksum is None or parse_checksum(source.checksum)
    assert source.license and source.description and source.preprocessing["recipe"]
    assert source.to_dict()["name"] == source.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        source.name = "other"
    with pytest.raises(TypeError):
        source.preprocessing["recipe"] = "other"


def test_source_for_url_builds_an_ad_hoc_record():
    url = "https://example.org/models/my%20weights.tar.gz"
    source = source_for_url(url)
    assert source.name == "url-" + hashlib.sha256(url.encode()).hexdigest()[:16]
    assert source.urls == (url,)
    assert source.filename == "my_weights.tar.gz"
    assert (source.checksum, source.format, source.num_classes, source.label_offset) == (None, "auto", None, None)
    assert source_for_url("https://example.org/m/1?tf-hub-format=compressed").filename == "1.tar.gz"
    assert source_for_url("https://example.org/").filename == "download"
    assert source_for_url(SLIM_URL).name == "tf-slim-2016-08-30"  # a registered URL keeps its checksum
    assert resolve_source(url) == source
    with pytest.raises(HandleError):
        source_for_url("ftp://example.org/w.bin")


@pytest.mark.parametrize("checksum", ["md5:abc", "sha1:" + "0" * 40, "sha256:" + "g" * 64, "0" * 32])
def test_malformed_checksums_are_refused(checksum):
    with pytest.raises(ValueError, match="malformed checksum"):
        parse_checksum(checksum)


# -- cache locations ------------------------------------------------------------------------------------


def test_irv2_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("IRV2_HOME", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert irv2_home() == tmp_path / "a"
    monkeypatch.delenv("IRV2_HOME")
    assert irv2_home() == tmp_path / "xdg" / "irv2"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert irv2_home() == tmp_path / "home" / ".cache" / "irv2"


def test_cache_layout(irv2_home):
    source = default_source()
    assert artifact_path(source) == irv2_home / "downloads" / source.name / source.filename
    assert module_cache_dir(source) == irv2_home / "modules" / source.name
    assert not module_cache_dir(source).exists()


@pytest.mark.parametrize(
    ("value", "offline"),
    [("1", True), ("TRUE", True), ("yes", True), ("On", True), ("0", False), ("", False), ("no", False)],
)
def test_is_offline(monkeypatch, value, offline):
    monkeypatch.setenv("IRV2_OFFLINE", value)
    assert is_offline() is offline


# -- describe ---------------------------------------------------------------------------------------------


def test_describe_a_source_not_yet_cached():
    info = describe("inception_resnet_v2_2016_08_30")
    assert info["name"] == "tf-slim-2016-08-30"
    assert info["checksum"] == "md5:9e0f18e1259acf943e30690460d96123"
    assert info["checksum_origin"] == "published"
    assert info["urls"] == [SLIM_URL.replace("http:", "https:"), SLIM_URL]
    assert (info["format"], info["num_classes"], info["label_offset"]) == ("tf-slim-tar", 1001, 0)
    assert info["path"] == str(artifact_path(resolve_source("tf-slim-2016-08-30")))
    assert info["cached"] is False and info["size_on_disk"] is None
    assert info["license"] == "Apache-2.0"
    assert describe(None)["name"] == "tfhub-classification-1"


def test_describe_reports_a_cached_copy_and_its_recorded_checksum():
    source = default_source()
    path = artifact_path(source)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"a module tarball put here by hand")
    fetch(source, offline=True, progress=False)  # trust on first use records its sha256
    info = describe(CLASSIFICATION)
    assert info["cached"] is True
    assert info["size_on_disk"] == path.stat().st_size
    assert info["checksum"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["checksum_origin"] == "trust-on-first-use"
    assert Path(info["path"]) == path
