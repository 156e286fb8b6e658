"""``irv2.load`` of registered handles and URLs: fetched once, verified, converted, cached, then offline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_helpers import Route, md5, sha256
from safetensors.torch import save

import irv2
from irv2.api.module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo
from irv2.hub import module_cache_dir, registry, resolve_source
from irv2.model import InceptionResNetV2


def serve_from(monkeypatch, name: str, url: str, checksum: str | None) -> None:
    """Point the registered source ``name`` at ``url`` on the local server (handles and aliases unchanged)."""
    sources, default, _ = registry._registry()
    patched = tuple(dataclasses.replace(s, urls=(url,), checksum=checksum) if s.name == name else s for s in sources)
    default = next(s for s in patched if s.name == default.name)
    index = {}
    for source in patched:
        for key in (source.name, *source.aliases):
            index.setdefault(registry.normalise_handle(key), source)
    monkeypatch.setattr(registry, "_registry", lambda: (patched, default, index))


@pytest.fixture(scope="module")
def timm_weights() -> tuple[bytes, InceptionResNetV2]:
    """A 1000-class state dict with timm's keys, as ``inception_resnet_v2.tf_in1k`` publishes it."""
    torch.manual_seed(3)
    net = InceptionResNetV2(num_classes=1000, aux_logits=False).eval()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return save(state), net


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (2, 299, 299, 3)).astype(np.float32)


def test_url_is_fetched_once_then_served_from_the_native_cache(server, irv2_home, timm_weights, images, monkeypatch):
    data, net = timm_weights
    server.routes["/weights/model.safetensors"] = Route(data)
    url = server.url("/weights/model.safetensors")
    first = irv2.load(url)
    assert server.count() == 1 and first.num_classes == 1000 and first.labels[0] == "tench"
    with torch.no_grad():
        expected = net(torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(first(images), expected, rtol=0, atol=1e-5)
    # Trust on first use: the URL had no published checksum, so the first download's sha256 is recorded.
    assert first.info.provenance["checksum"] == sha256(data)

    second = irv2.load(url)
    assert server.count() == 1  # nothing fetched again
    assert Path(second.info.provenance["loaded_from"]).is_relative_to(irv2_home / "modules")
    assert np.array_equal(second(images), first(images))

    monkeypatch.setenv("IRV2_OFFLINE", "1")
    server.routes.clear()
    assert np.array_equal(irv2.load(url)(images), first(images))


def test_registered_handle_with_checksum(server, irv2_home, timm_weights, monkeypatch):
    data, _ = timm_weights
    server.routes["/timm.safetensors"] = Route(data)
    serve_from(monkeypatch, "timm-tf-in1k", server.url("/timm.safetensors"), md5(data))
    module = irv2.load("timm/inception_resnet_v2.tf_in1k")
    assert module.info.provenance["source"] == "timm-tf-in1k"
    assert module.info.provenance["checksum"] == md5(data)
    assert module.num_classes == 1000


def test_checksum_mismatch_loads_nothing_and_caches_nothing(server, irv2_home, timm_weights, monkeypatch):
    data, _ = timm_weights
    server.routes["/timm.safetensors"] = Route(data)
    serve_from(monkeypatch, "timm-tf-in1k", server.url("/timm.safetensors"), md5(b"other bytes"))
    with pytest.raises(irv2.DownloadError, match=r"(?i)checksum"):
        irv2.load("inception_resnet_v2.tf_in1k")
    assert not (irv2_home / "modules" / "timm-tf-in1k" / "irv2.json").exists()
    assert not list((irv2_home / "downloads").rglob("*.safetensors"))


def test_damaged_native_cache_is_rebuilt(server, irv2_home, timm_weights, images):
    data, _ = timm_weights
    server.routes["/w.safetensors"] = Route(data)
    url = server.url("/w.safetensors")
    good = irv2.load(url)(images)
    (cached,) = (irv2_home / "modules").glob("*/model.safetensors")
    blob = bytearray(cached.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    cached.write_bytes(bytes(blob))
    with pytest.warns(RuntimeWarning, match="damaged cached module"):
        again = irv2.load(url)
    assert np.array_equal(again(images), good)
    assert server.count() == 1  # rebuilt from the verified download, not fetched again


def test_offline_without_cache_says_what_to_do(irv2_home, monkeypatch):
    monkeypatch.setenv("IRV2_OFFLINE", "1")
    with pytest.raises(irv2.DownloadError) as info:
        irv2.load()
    message = str(info.value)
    assert "tfhub-classification-1" in message or "classification" in message
    assert str(irv2_home) in message  # where to put the file
    assert "path of a local copy to irv2.load" in message


def test_kaggle_handles_load_the_cached_tf_hub_modules_offline(irv2_home, monkeypatch):
    """Kaggle Models' spellings of both TF-Hub modules find the converted module cached under the record's
    name, offline. Both records are cached, with different heads, so a handle that resolved to the other
    module would load 1001 classes where 0 are due, or the reverse."""
    for record, num_classes in (("tfhub-classification-1", 1001), ("tfhub-feature-vector-1", 0)):
        net = InceptionResNetV2(num_classes=num_classes, aux_logits=False).eval()
        signature = CLASSIFICATION if num_classes else FEATURE_VECTOR
        info = ModuleInfo(num_classes, irv2.labels() if num_classes else None, default_signature=signature)
        irv2.save(Module(net, info), module_cache_dir(resolve_source(record)))
    monkeypatch.setenv("IRV2_OFFLINE", "1")
    for variation, record, num_classes in (
        ("classification", "tfhub-classification-1", 1001),
        ("feature-vector", "tfhub-feature-vector-1", 0),
    ):
        for handle in (
            f"https://www.kaggle.com/models/google/inception-resnet-v2/TensorFlow1/{variation}/1",
            f"https://www.kaggle.com/models/google/inception-resnet-v2/frameworks/TensorFlow1/variations/{variation}/versions/1",
            f"google/inception-resnet-v2/tensorFlow1/{variation}/1",
        ):
            module = irv2.load(handle, engine="plain")
            assert module.num_classes == num_classes, handle
            assert module.info.provenance["loaded_from"] == str(irv2_home / "modules" / record), handle
    assert not (irv2_home / "downloads").exists()  # nothing was fetched, nothing was even tried


def test_unknown_handle(irv2_home):
    with pytest.raises(irv2.HandleError, match="not a registered handle or URL"):
        irv2.load("no/such/handle")


@pytest.mark.slow
def test_default_handle_is_the_tf_hub_classification_module(
    server, irv2_home, tf_files, tf_outputs, photos, monkeypatch
):
    data = Path(tf_files["hub_tarball"]).read_bytes()
    server.routes["/classification/1.tar.gz"] = Route(data)
    serve_from(monkeypatch, "tfhub-classification-1", server.url("/classification/1.tar.gz"), md5(data))
    module = irv2.load()
    logits = module(photos)
    assert float(np.abs(logits - tf_outputs[0]).max() / np.abs(tf_outputs[0]).max()) < 1e-4
    assert module.info.provenance["source"] == "tfhub-classification-1"
    again = irv2.load("https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1")
    assert server.count() == 1
    assert np.array_equal(again(photos), logits)
