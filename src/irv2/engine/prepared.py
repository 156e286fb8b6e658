"""Engine files prepared for a weights source, found again without torch.

The first ``irv2.load`` of some weights on ONNX Runtime or OpenVINO reads them into PyTorch, converts the
network once (cached by the weights' own digest) and writes a record here, keyed by what can be known without
torch: the source's file digests (``irv2.hub.digests``), the engine, its runtime's version, the precision and
the int8 calibration set. The record holds everything the module answers with besides the network's outputs
(classes, labels, signatures, preprocessing, provenance, the weights' digest), so a later load opens the file and
answers at once; the network itself is read only if someone asks for ``module.model``.

Layout: ``$IRV2_HOME/engines/prepared/<key>.json``. A record whose engine file is gone or changed (size or
modification time) is ignored, and the load goes the long way, which writes it anew.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..atomic import write_text
from .catalog import ENGINES

_FORMAT = 1


@dataclass(frozen=True)
class Prepared:
    """A prepared engine file and what the module answers with."""

    engine: str
    precision: str
    path: Path
    info: dict[str, Any]
    weights_sha256: str
    calibration_sha256: str | None


def find(source: str, engine: str, precision: str, calibration: str | None) -> Prepared | None:
    """The record for these weights, engine, precision and int8 calibration set (``calibration``: its key, from
    the images' files), if one is there and its file is unchanged."""
    try:
        record = json.loads(_record_path(source, engine, precision, calibration).read_text(encoding="utf-8"))
        if record.get("format") != _FORMAT:
            return None
        path = Path(record["path"])
        if _stat(path) != record["stat"]:
            return None
        return Prepared(
            engine=record["engine"],
            precision=record["precision"],
            path=path,
            info=record["info"],
            weights_sha256=record["weights_sha256"],
            calibration_sha256=record.get("calibration_sha256"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(source: str, module: Any, default_signature: str, calibration: str | None = None) -> None:
    """Record ``module``'s engine file for ``source`` (best effort: a record that cannot be written only means
    the next load goes the long way)."""
    engine = module.engine
    path = getattr(engine, "path", None)
    if path is None:
        return
    info = module.info
    record = {
        "format": _FORMAT,
        "engine": module.engine_name,
        "precision": module.precision,
        "path": str(path),
        "stat": _stat(Path(path)),
        "weights_sha256": module.weights_sha256(),
        "calibration_sha256": engine.calibration_sha256,
        "info": {
            "num_classes": info.num_classes,
            "labels": info.labels,
            "default_signature": default_signature,
            "preprocessing": info.preprocessing.to_dict(),
            "provenance": info.provenance,
        },
    }
    target = _record_path(source, module.engine_name, module.precision, calibration)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, json.dumps(record, indent=1) + "\n")
    except (OSError, TypeError, ValueError):
        pass


def _record_path(source: str, engine: str, precision: str, calibration: str | None) -> Path:
    from ..hub.cache import irv2_home

    fields = (
        f"{_FORMAT} irv2 {__version__} {engine} {_runtime_version(engine)} {precision}",
        f"source {source} calibration {calibration or '-'}",
    )
    key = hashlib.sha256("\n".join(fields).encode()).hexdigest()[:32]
    return irv2_home() / "engines" / "prepared" / f"{key}.json"


def _runtime_version(engine: str) -> str:
    return ENGINES[engine].engine_class().runtime_version()


def _stat(path: Path) -> list[list[Any]]:
    """Name, size and modification time of the engine's files (a folder's files, or the one file)."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
