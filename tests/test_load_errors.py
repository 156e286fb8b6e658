"""Bad weights files through ``irv2.load``: each fails with irv2's own error naming the file and problem."""

import shutil
from pathlib import Path

import numpy as np
import pytest

import irv2

pytestmark = pytest.mark.slow


def copy_v2(prefix: str, dest: Path) -> Path:
    dest.mkdir()
    for path in Path(prefix).parent.iterdir():
        shutil.copy(path, dest / path.name)
    return dest / Path(prefix).name


def test_truncated_v1_file(tf_files, tmp_path):
    broken = tmp_path / "truncated.ckpt"
    data = Path(tf_files["v1"]).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(irv2.CheckpointError, match=r"truncated\.ckpt"):
        irv2.load(broken)


def test_flipped_byte_in_a_tensor(tf_files, tmp_path):
    prefix = copy_v2(tf_files["v2"], tmp_path / "flipped")
    (shard,) = prefix.parent.glob("*.data-*")
    with open(shard, "r+b") as f:
        f.seek(shard.stat().st_size // 3)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x10]))
    with pytest.raises(irv2.CheckpointError, match=r"(?i)crc|checksum") as info:
        irv2.load(prefix)
    assert "flipped" in str(info.value)


def test_flipped_byte_in_v1(tf_files, tmp_path):
    broken = tmp_path / "flipped.ckpt"
    data = bytearray(Path(tf_files["v1"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    broken.write_bytes(bytes(data))
    with pytest.raises(irv2.CheckpointError, match=r"flipped\.ckpt"):
        irv2.load(broken)


def test_wrong_shape_is_named(slim_weights, tmp_path):
    import tf_writers

    weights = dict(slim_weights)
    name = "InceptionResnetV2/Repeat/block35_3/Branch_2/Conv2d_0b_3x3/weights"
    weights[name] = np.zeros((3, 3, 32, 47), np.float32)
    tf_writers.write_v2(str(tmp_path / "wrong" / "model.ckpt"), weights)
    with pytest.raises(irv2.WeightMismatchError, match=rf"{name}: shape \[3, 3, 32, 47\], expected \[3, 3, 32, 48\]"):
        irv2.load(tmp_path / "wrong" / "model.ckpt")


def test_missing_variable_is_named(slim_weights, tmp_path):
    import tf_writers

    name = "InceptionResnetV2/Mixed_7a/Branch_2/Conv2d_0b_3x3/BatchNorm/moving_mean"
    weights = {k: v for k, v in slim_weights.items() if k != name}
    tf_writers.write_v2(str(tmp_path / "missing" / "model.ckpt"), weights)
    with pytest.raises(irv2.WeightMismatchError, match=f"missing tensor {name}"):
        irv2.load(tmp_path / "missing" / "model.ckpt")


@pytest.mark.tensorflow
def test_foreign_checkpoint_is_refused(tmp_path):
    import tf_writers

    tf_writers.write_v2(str(tmp_path / "other" / "model.ckpt"), {"resnet/conv1/kernel": np.ones((3, 3), np.float32)})
    with pytest.raises(irv2.WeightMismatchError, match="missing tensor InceptionResnetV2/Conv2d_1a_3x3/weights"):
        irv2.load(tmp_path / "other" / "model.ckpt")


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("these are not the weights you are looking for\n" * 10)
    with pytest.raises(irv2.CheckpointError, match=r"notes\.ckpt"):
        irv2.load(text)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(irv2.CheckpointError, match=r"empty\.ckpt"):
        irv2.load(empty)


def test_empty_directory(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(irv2.CheckpointError, match="nothing"):
        irv2.load(tmp_path / "nothing")
