"""irv2's checkpoint readers against files written by TensorFlow itself, and against damaged files."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import tf_writers
from irv2.errors import CheckpointError
from irv2.formats import (
    FORMAT_HUB,
    FORMAT_V1,
    FORMAT_V2,
    DeclaredTensor,
    extract_archive,
    find_checkpoint,
    hub_module_outputs,
    hub_module_signatures,
    is_hub_module,
    read_checkpoint,
    read_checkpoint_contents,
    read_hub_module,
    read_v1,
    read_v2,
)
from irv2.formats.v2_bundle import shard_path
from requires import require_tensorflow_hub

RNG = np.random.default_rng(2016)


def _sample_tensors() -> dict[str, np.ndarray]:
    return {
        "InceptionResnetV2/Conv2d_1a_3x3/weights": RNG.standard_normal((3, 3, 3, 32), np.float32),
        "InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/beta": RNG.standard_normal(32, np.float32),
        # Big enough to span several table blocks (V1) and many CRC lanes.
        "InceptionResnetV2/Logits/Logits/weights": RNG.standard_normal((300, 257), np.float32),
        "double/matrix": RNG.standard_normal((7, 3)),
        "ints/int32": np.array([-(2**31), -1, 0, 1, 2**31 - 1], np.int32),
        "ints/int64": np.array([[-(2**63), -5], [7, 2**63 - 1]], np.int64),
        "ints/int16": np.array([-32768, 0, 32767], np.int16),
        "ints/int8": np.array([-128, 5, 127], np.int8),
        "ints/uint8": np.arange(0, 256, 15, dtype=np.uint8),
        "global_step": np.array(1000, np.int64),
        "flags": np.array([[True, False, True], [False, False, True]]),
        "half": np.array([0.5, -2.0, 65504.0, 1e-4], np.float16),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(3.25, np.float32),
        "names/ünïcode": np.array([1.0, 2.0], np.float32),
        "strings": np.array([b"abc", b"", b"\x00\xff" * 40], dtype=object),
    }


SAMPLE = _sample_tensors()
# Hub variables are graph variables, so their names must be valid op names.
HUB_SAMPLE = {k: v for k, v in SAMPLE.items() if v.dtype in (np.float32, np.int64) and k.isascii()}
BFLOAT16 = np.array([1.0, -2.5, 3.140625, 1e30], dtype=ml_dtypes.bfloat16)  # what tf.bfloat16.as_numpy_dtype is
PARTITIONED = RNG.standard_normal((200, 3), np.float32)
LONG = RNG.standard_normal(70_001, np.float32)
# Slice starts of 100 and 69_999 need the 2- and 3-byte forms of TF's signed OrderedCode numbers.
SLICES = [
    ("part/x", "200 3 0,100:-", PARTITIONED[:100]),
    ("part/x", "200 3 100,70:-", PARTITIONED[100:170]),
    ("part/x", "200 3 170,30:0,3", PARTITIONED[170:]),
    ("part/long", "70001 0,69999", LONG[:69_999]),
    ("part/long", "70001 69999,2", LONG[69_999:]),
]


def assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        assert np.array_equal(got, want), name


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("formats")


@pytest.fixture(scope="module")
def v2_prefix(root) -> str:
    return tf_writers.write_v2(root / "v2" / "model.ckpt", {**SAMPLE, "bf16": BFLOAT16})


@pytest.fixture(scope="module")
def v1_path(root) -> str:
    return tf_writers.write_v1(root / "v1" / "model.ckpt", SAMPLE)


@pytest.fixture(scope="module")
def hub_dir(root) -> str:
    return tf_writers.write_hub_module(root / "hub", HUB_SAMPLE)


def copy_v2(prefix: str, dest: Path) -> str:
    dest.mkdir()
    for path in Path(prefix).parent.iterdir():
        shutil.copy(path, dest / path.name)
    return str(dest / Path(prefix).name)


def damage(path: str | Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x20]))


@contextlib.contextmanager
def raises_naming(path: str | Path, match: str | None = None):
    """``pytest.raises(CheckpointError)`` that also checks that the message names ``path``."""
    with pytest.raises(CheckpointError, match=match) as info:
        yield info
    assert os.fspath(path) in str(info.value), str(info.value)


# --- TensorFlow-written files read back exactly -----------------------------------------------


@pytest.mark.tensorflow
def test_v2_round_trip(v2_prefix):
    tensors = read_v2(v2_prefix)
    bf16 = tensors.pop("bf16")
    assert_same(tensors, SAMPLE)
    assert bf16.dtype == np.float32  # widened: numpy has no bfloat16
    assert np.array_equal(bf16, BFLOAT16.astype(np.float32))
    assert tensors["InceptionResnetV2/Logits/Logits/weights"].flags.writeable


@pytest.mark.tensorflow
def test_v2_prefix_forms(v2_prefix):
    expected = read_v2(v2_prefix)
    for form in (v2_prefix + ".index", os.path.dirname(v2_prefix), Path(v2_prefix)):
        assert_same(read_v2(form), expected)
    for form in (v2_prefix, v2_prefix + ".index", shard_path(v2_prefix, 0, 1)):
        tensors, fmt = read_checkpoint(form)
        assert fmt == FORMAT_V2
        assert_same(tensors, expected)


@pytest.mark.tensorflow
def test_v1_round_trip(v1_path):
    assert_same(read_v1(v1_path), SAMPLE)
    tensors, fmt = read_checkpoint(v1_path)
    assert fmt == FORMAT_V1
    assert_same(tensors, SAMPLE)


@pytest.mark.tensorflow
def test_v1_written_by_a_v1_saver(root):
    floats = {k: v for k, v in SAMPLE.items() if v.dtype in (np.float32, np.float64, np.int32)}
    path = tf_writers.write_v1_with_saver(root / "saver" / "model.ckpt", floats)
    assert os.path.isfile(path) and not os.path.exists(path + ".index")
    tensors, fmt = read_checkpoint(path)
    assert fmt == FORMAT_V1
    assert_same(tensors, floats)


@pytest.mark.tensorflow
def test_v2_sharded(root):
    parts = [dict(list(SAMPLE.items())[:6]), dict(list(SAMPLE.items())[6:])]
    prefix = tf_writers.write_v2_sharded(root / "sharded" / "model.ckpt", parts)
    assert os.path.isfile(shard_path(prefix, 0, 2)) and os.path.isfile(shard_path(prefix, 1, 2))
    assert_same(read_v2(prefix), SAMPLE)


def test_shard_file_names():
    assert shard_path("a/variables", 0, 1) == "a/variables.data-00000-of-00001"
    assert shard_path("m.ckpt", 11, 12) == "m.ckpt.data-00011-of-00012"


@pytest.mark.tensorflow
@pytest.mark.parametrize("writer", [tf_writers.write_v2, tf_writers.write_v1])
def test_partitioned_tensors_are_assembled(root, writer):
    path = writer(root / f"sliced_{writer.__name__}" / "model.ckpt", {"whole": LONG}, slices=SLICES)
    tensors, _ = read_checkpoint(path)
    assert_same(tensors, {"whole": LONG, "part/x": PARTITIONED, "part/long": LONG})


@pytest.mark.tensorflow
def test_v1_slices_with_a_gap_are_refused(root):
    path = tf_writers.write_v1(root / "gap" / "model.ckpt", {}, slices=SLICES[:2])
    with raises_naming(path, "no saved slice"):
        read_v1(path)


@pytest.mark.tensorflow
def test_hub_module(hub_dir):
    expected = HUB_SAMPLE
    assert is_hub_module(hub_dir)
    assert not is_hub_module(os.path.dirname(hub_dir))
    assert_same(read_hub_module(hub_dir), expected)  # no "module/" prefix on the names
    tensors, fmt = read_checkpoint(hub_dir)
    assert fmt == FORMAT_HUB
    assert_same(tensors, expected)
    names = ["default", "image_classification", "image_feature_vector"]
    assert hub_module_signatures(hub_dir) == {(): names, ("train",): names}
    stand_in = {name: {"default": DeclaredTensor("float32", (None, 1))} for name in names}  # the stand-in graph's
    assert hub_module_outputs(hub_dir) == {(): stand_in, ("train",): stand_in}
    assert read_checkpoint_contents(hub_dir).signature_outputs == hub_module_outputs(hub_dir)


DECLARED = {
    "image_classification": {
        "default": [None, 1001],
        "InceptionResnetV2/Mixed_6a": [None, None, None, 1088],
        "InceptionResnetV2/Conv2d_7b_1x1": [None, 8, 8, 1536],
        "fixed": [2, 3],
    },
}


@pytest.mark.tensorflow
def test_declared_outputs_read_as_tensorflow_hub_reads_them(root, monkeypatch):
    folder = tf_writers.write_hub_module(root / "declaring", HUB_SAMPLE, outputs=DECLARED)
    tensorflow_hub = require_tensorflow_hub(monkeypatch, "tensorflow_hub", "TF-Hub's reading of the same file")
    spec = tensorflow_hub.load_module_spec(folder)
    outputs = hub_module_outputs(folder)
    assert sorted(outputs) == [(), ("train",)]
    for tags, signatures in outputs.items():
        assert sorted(signatures) == sorted(spec.get_signature_names(tags=set(tags)))
        for name, declared in signatures.items():
            theirs = spec.get_output_info_dict(signature=name, tags=set(tags))
            assert sorted(declared) == sorted(theirs)
            for key, tensor in declared.items():
                assert list(tensor.shape) == theirs[key].get_shape().as_list()
                assert tensor.dtype == theirs[key].dtype.name and tensor.encoding == "dense"
    assert outputs[()]["image_classification"]["InceptionResnetV2/Mixed_6a"].shape == (None, None, None, 1088)


# --- tarballs --------------------------------------------------------------------------------


def make_tar(path: Path, members: dict[str, str], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for arcname, source in members.items():
            tar.add(source, arcname=arcname)
    return path


@pytest.mark.tensorflow
def test_tarballs_of_every_format(root, v1_path, v2_prefix, hub_dir):
    slim = make_tar(root / "slim.tar.gz", {"inception_resnet_v2_2016_08_30.ckpt": v1_path})
    tensors, fmt = read_checkpoint(slim)
    assert fmt == FORMAT_V1
    assert_same(tensors, SAMPLE)

    v2_dir = os.path.dirname(v2_prefix)
    bundle = make_tar(root / "bundle.tgz", {"ckpt": v2_dir}, mode="w:gz")
    tensors, fmt = read_checkpoint(bundle)
    assert fmt == FORMAT_V2
    assert sorted(tensors) == sorted([*SAMPLE, "bf16"])

    hub_members = {name: os.path.join(hub_dir, name) for name in os.listdir(hub_dir)}
    hub_tar = make_tar(root / "module.tar", hub_members, mode="w")
    tensors, fmt = read_checkpoint(hub_tar)
    assert fmt == FORMAT_HUB
    assert "InceptionResnetV2/Conv2d_1a_3x3/weights" in tensors
    # The signatures are read from the extracted copy, before it goes; a checkpoint has none.
    assert read_checkpoint_contents(hub_tar).signature_outputs == hub_module_outputs(hub_dir)
    assert read_checkpoint_contents(bundle).signature_outputs == {}


@pytest.mark.tensorflow
def test_extract_and_find(root, v1_path, tmp_path):
    archive = make_tar(root / "nested.tar.gz", {"release/a/model.ckpt": v1_path})
    extract_archive(archive, tmp_path)
    assert find_checkpoint(tmp_path) == str(tmp_path / "release" / "a" / "model.ckpt")


@pytest.mark.tensorflow
def test_hard_link_inside_a_tarball(tmp_path, v1_path):
    archive = tmp_path / "linked.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(v1_path, arcname="a/model.ckpt")
        link = tarfile.TarInfo("b/copy.ckpt")
        link.type, link.linkname = tarfile.LNKTYPE, "a/model.ckpt"
        tar.addfile(link)
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    assert (dest / "b" / "copy.ckpt").read_bytes() == Path(v1_path).read_bytes()
    with raises_naming(archive, "several V1 checkpoints"):
        read_checkpoint(archive)


@pytest.mark.tensorflow
def test_folder_forms(v2_prefix, v1_path, tmp_path):
    saved_model = tmp_path / "saved_model"
    (saved_model / "variables").mkdir(parents=True)
    for path in Path(v2_prefix).parent.iterdir():
        shutil.copy(path, saved_model / "variables" / path.name.replace("model.ckpt", "variables"))
    assert sorted(read_v2(saved_model)) == sorted([*SAMPLE, "bf16"])
    tensors, fmt = read_checkpoint(saved_model)
    assert fmt == FORMAT_V2 and sorted(tensors) == sorted([*SAMPLE, "bf16"])
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a", "b"):
        shutil.copy(v2_prefix + ".index", two / f"{name}.index")
    with raises_naming(two, "several V2 checkpoints"):
        read_v2(two)
    v1_folder = tmp_path / "v1_folder"
    v1_folder.mkdir()
    shutil.copy(v1_path, v1_folder / "model.ckpt")
    tensors, fmt = read_checkpoint(v1_folder)
    assert fmt == FORMAT_V1


@pytest.mark.tensorflow
def test_truncated_tarball(root, v1_path, tmp_path):
    archive = make_tar(root / "whole.tar.gz", {"model.ckpt": v1_path})
    data = archive.read_bytes()
    broken = tmp_path / "truncated.tar.gz"
    broken.write_bytes(data[: len(data) // 2])
    with raises_naming(broken, "truncated or damaged"):
        read_checkpoint(broken)


def test_not_a_gzip_archive(tmp_path):
    fake = tmp_path / "fake.tar.gz"
    fake.write_text("this is not an archive\n")
    with raises_naming(fake, "not a readable tar archive"):
        extract_archive(fake, tmp_path)
    with raises_naming(fake, "not a TensorFlow checkpoint"):
        read_checkpoint(fake)


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, payload: bytes = b"x") -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(payload) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "link", "match"),
    [
        ("../evil", tarfile.REGTYPE, "", "'..'"),
        ("a/../../evil", tarfile.REGTYPE, "", "'..'"),
        ("/tmp/evil", tarfile.REGTYPE, "", "absolute"),
        ("link", tarfile.SYMTYPE, "../../etc/passwd", "outside"),
        ("link", tarfile.SYMTYPE, "/etc/passwd", "absolute"),
        ("hard", tarfile.LNKTYPE, "../outside", "'..'"),
        ("dev", tarfile.CHRTYPE, "", "special file"),
        ("fifo", tarfile.FIFOTYPE, "", "special file"),
    ],
)
def test_unsafe_tar_members_are_refused(tmp_path, name, kind, link, match):
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    archive = _tar_with(tmp_path, member)
    dest = tmp_path / "out"
    dest.mkdir()
    with raises_naming(archive, match):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil").exists()
    with raises_naming(archive):
        read_checkpoint(archive)


def test_symlink_escape_through_an_inner_link_is_refused(tmp_path):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        here = tarfile.TarInfo("here")
        here.type, here.linkname = tarfile.SYMTYPE, "."
        tar.addfile(here)
        up = tarfile.TarInfo("here/up")  # lexically "up", really one level above the folder
        up.type, up.linkname = tarfile.SYMTYPE, ".."
        tar.addfile(up)
    dest = tmp_path / "out"
    dest.mkdir()
    with raises_naming(path, "outside"):
        extract_archive(path, dest)


def test_tarball_without_a_checkpoint(tmp_path):
    text = tmp_path / "README"
    text.write_text("nothing to see")
    archive = make_tar(tmp_path / "empty.tar.gz", {"README": str(text)})
    with raises_naming(archive, "no checkpoint inside"):
        read_checkpoint(archive)


@pytest.mark.tensorflow
def test_damage_inside_a_tarball_names_the_archive_and_member(tmp_path, v1_path):
    broken = tmp_path / "broken.ckpt"
    data = bytearray(Path(v1_path).read_bytes())
    data[len(data) // 2] ^= 0x01
    broken.write_bytes(bytes(data))
    archive = make_tar(tmp_path / "slim.tar.gz", {"inner/model.ckpt": str(broken)})
    with raises_naming(archive, "CRC") as info:
        read_checkpoint(archive)
    assert "inner/model.ckpt" in str(info.value)


# --- damaged and foreign files ---------------------------------------------------------------


@pytest.mark.tensorflow
def test_truncated_v1(v1_path, tmp_path):
    data = Path(v1_path).read_bytes()
    for size in (len(data) // 2, len(data) - 1, 47, 10):
        broken = tmp_path / f"truncated_{size}.ckpt"
        broken.write_bytes(data[:size])
        with raises_naming(broken):
            read_v1(broken)
        with raises_naming(broken):
            read_checkpoint(broken)


@pytest.mark.tensorflow
def test_v1_cut_at_a_block_boundary_keeps_its_footer(v1_path, tmp_path):
    # Drop a middle chunk but keep the footer: the index then points past or into the wrong bytes.
    data = Path(v1_path).read_bytes()
    broken = tmp_path / "holed.ckpt"
    broken.write_bytes(data[: len(data) // 3] + data[len(data) // 2 :])
    with raises_naming(broken):
        read_v1(broken)


@pytest.mark.tensorflow
def test_flipped_byte_in_v1_data(v1_path, tmp_path):
    broken = tmp_path / "flipped.ckpt"
    shutil.copy(v1_path, broken)
    damage(broken, os.path.getsize(broken) // 2)
    with raises_naming(broken, "CRC"):
        read_checkpoint(broken)


@pytest.mark.tensorflow
def test_flipped_byte_in_v2_data(v2_prefix, tmp_path):
    prefix = copy_v2(v2_prefix, tmp_path / "flipped")
    shard = shard_path(prefix, 0, 1)
    damage(shard, os.path.getsize(shard) // 2)
    with raises_naming(shard, "CRC"):
        read_checkpoint(prefix)


@pytest.mark.tensorflow
def test_flipped_byte_in_v2_index(v2_prefix, tmp_path):
    prefix = copy_v2(v2_prefix, tmp_path / "index")
    damage(prefix + ".index", 20)
    with raises_naming(prefix + ".index", "CRC"):
        read_v2(prefix)


@pytest.mark.tensorflow
def test_truncated_v2_index(v2_prefix, tmp_path):
    prefix = copy_v2(v2_prefix, tmp_path / "short_index")
    index = Path(prefix + ".index")
    index.write_bytes(index.read_bytes()[:-10])
    with raises_naming(index, "magic"):
        read_checkpoint(prefix)


@pytest.mark.tensorflow
def test_truncated_v2_shard(v2_prefix, tmp_path):
    prefix = copy_v2(v2_prefix, tmp_path / "short_shard")
    shard = Path(shard_path(prefix, 0, 1))
    shard.write_bytes(shard.read_bytes()[:-100])
    with raises_naming(shard, "truncated data shard"):
        read_checkpoint(prefix)


@pytest.mark.tensorflow
def test_missing_v2_shard(v2_prefix, tmp_path):
    prefix = copy_v2(v2_prefix, tmp_path / "no_shard")
    os.remove(shard_path(prefix, 0, 1))
    with raises_naming(shard_path(prefix, 0, 1), "missing"):
        read_checkpoint(prefix)


@pytest.mark.tensorflow
def test_v2_shard_without_its_index(v2_prefix, tmp_path):
    prefix = copy_v2(v2_prefix, tmp_path / "no_index")
    os.remove(prefix + ".index")
    shard = shard_path(prefix, 0, 1)
    with raises_naming(shard, "without its index"):
        read_checkpoint(shard)
    with raises_naming(prefix, "no such file"):
        read_checkpoint(prefix)


@pytest.mark.tensorflow
def test_v2_index_read_as_v1(v2_prefix):
    with raises_naming(v2_prefix + ".index", "not a V1 checkpoint"):
        read_v1(v2_prefix + ".index")


@pytest.mark.tensorflow
def test_v1_file_read_as_v2(v1_path, tmp_path):
    index = tmp_path / "model.index"
    shutil.copy(v1_path, index)
    with raises_naming(index, "not a V2"):
        read_v2(index)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b'model_checkpoint_path: "model.ckpt-1000"\n' * 3),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(RNG.integers(0, 256, 5000))),
        ("noise.bin", bytes(RNG.integers(0, 256, 100_000, dtype=np.uint8))),
        ("tiny.ckpt", b"\x01"),
    ],
)
def test_foreign_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with raises_naming(path, "not a TensorFlow checkpoint|shorter than"):
        read_checkpoint(path)
    with raises_naming(path):
        read_v1(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with raises_naming(path, "empty file"):
        read_checkpoint(path)
    with raises_naming(path, "empty file"):
        read_v1(path)


def test_empty_folder(tmp_path):
    with raises_naming(tmp_path, "empty folder"):
        read_checkpoint(tmp_path)
    with raises_naming(tmp_path, "no V2 checkpoint"):
        read_v2(tmp_path)


def test_folder_without_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with raises_naming(tmp_path, "no checkpoint inside"):
        read_checkpoint(tmp_path)


def test_missing_path(tmp_path):
    with raises_naming(tmp_path / "nothing", "no such file"):
        read_checkpoint(tmp_path / "nothing")


@pytest.mark.tensorflow
def test_hub_module_checks(hub_dir, tmp_path):
    module = tmp_path / "module"
    shutil.copytree(hub_dir, module)
    (module / "tfhub_module.pb").write_bytes(b"\x08\x02")
    with raises_naming(module / "tfhub_module.pb", "FORMAT_V3"):
        read_checkpoint(module)
    (module / "tfhub_module.pb").write_bytes(b"\x08")
    with raises_naming(module / "tfhub_module.pb", "not a TF-Hub ModuleDef"):
        read_hub_module(module)
    (module / "tfhub_module.pb").write_bytes(b"\x08\x03")
    saved_model = (module / "saved_model.pb").read_bytes()
    (module / "saved_model.pb").write_bytes(saved_model[: len(saved_model) // 2])
    with raises_naming(module / "saved_model.pb", "not a SavedModel: .*past its message"):
        read_checkpoint_contents(module)
    tarball = make_tar(tmp_path / "module.tar", {name: module / name for name in os.listdir(module)})
    with raises_naming(tarball, r"saved_model.pb \(in the archive\): not a SavedModel"):
        read_checkpoint_contents(tarball)
    os.remove(module / "saved_model.pb")
    with raises_naming(module, "saved_model.pb"):
        read_hub_module(module)
