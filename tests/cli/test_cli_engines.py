"""``irv2 info --engines``: the engines installed here and what ``--engine auto`` runs, without any weights."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

import irv2.cli.weights
from irv2.cli.main import main
from irv2.engine import catalog
from irv2.engine.precision import BFLOAT16_VARIABLE, cpu_has_fast_bfloat16, resolve_precision
from irv2.extras import missing_modules

CPU = torch.device("cpu")
CPU_DTYPES = ("float32", "bfloat16", "int8")  # what resolve_precision accepts on a CPU


def _info(capsys, *args: str) -> tuple[str, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["info", "--engines", *args]) == 0
    # auto_engine's notice about a missing faster engine is part of the output, not a warning printed besides.
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    captured = capsys.readouterr()
    return captured.out, captured.err


def _auto(dtype: str, device: torch.device = CPU) -> str:
    return catalog.auto_choice(resolve_precision(dtype, device), device)[0]


def _runs(dtype: str) -> bool:
    """Whether this CPU runs ``dtype`` (bfloat16 needs its instructions)."""
    return dtype != "bfloat16" or cpu_has_fast_bfloat16()


def _installed(name: str) -> bool:
    extra = catalog.ENGINES[name].extra
    return extra is None or not missing_modules(extra)


@pytest.fixture
def no_weights(monkeypatch):
    """Loading or looking up any weights fails the test: --engines describes the machine only."""

    def refuse(*args, **kwargs):
        raise AssertionError("irv2 info --engines touched weights")

    monkeypatch.setattr(irv2.cli.weights, "load", refuse)
    monkeypatch.setattr("irv2.hub.describe", refuse)


@pytest.fixture
def only(monkeypatch):
    """``only(*extras)``: pretend that only these extras are installed (auto_engine and info both ask
    ``catalog.missing_modules``)."""

    def pretend(*present: str) -> None:
        monkeypatch.setattr(catalog, "missing_modules", lambda extra: [] if extra in present else [f"{extra}-module"])

    return pretend


def test_json_lists_every_engine_and_the_auto_choices(capsys, no_weights):
    out, err = _info(capsys, "--json")
    assert err == ""
    info = json.loads(out)
    assert list(info["engines"]) == list(catalog.ENGINES)
    for name, spec in catalog.ENGINES.items():
        engine = info["engines"][name]
        assert engine["installed"] is _installed(name), name
        assert engine["extra"] == spec.extra
        assert (engine["devices"], engine["dtypes"]) == (list(spec.devices), list(spec.dtypes))
    assert list(info["auto"]["cpu"]) == list(CPU_DTYPES)
    for dtype, choice in info["auto"]["cpu"].items():
        if not _runs(dtype):  # bfloat16 on a CPU without its instructions: refused, saying why
            assert choice["engine"] is None and "no bfloat16 instructions" in choice["note"], choice
            continue
        assert choice["engine"] == _auto(dtype), dtype
    assert ("cuda" in info["auto"]) is torch.cuda.is_available()
    for dtype, choice in info["auto"].get("cuda", {}).items():
        assert choice["engine"] == _auto(dtype, torch.device("cuda")), dtype
    assert isinstance(info["cpu_fast_bfloat16"], bool)


def test_text_lists_every_engine_and_the_auto_choices(capsys, no_weights):
    out, err = _info(capsys)
    assert err == ""
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    for name, spec in catalog.ENGINES.items():
        row = rows[name]
        assert row[1] == ("yes" if _installed(name) else "no:"), row
        assert ", ".join(spec.dtypes) in " ".join(row)
    auto = [line.split() for line in out.splitlines() if line.startswith("  cpu ")]
    assert auto == [["cpu", dtype, _auto(dtype) if _runs(dtype) else "refused"] for dtype in CPU_DTYPES]


def test_everything_installed_picks_the_fastest(capsys, only):
    only("onnx", "openvino")
    info = json.loads(_info(capsys, "--json")[0])
    assert all(engine["installed"] for engine in info["engines"].values())
    bfloat16 = info["auto"]["cpu"].pop("bfloat16")
    assert info["auto"]["cpu"] == {
        "float32": {"engine": "onnxruntime", "note": None},
        "int8": {"engine": "openvino", "note": None},
    }
    assert bfloat16["engine"] == ("openvino" if _runs("bfloat16") else None)


def test_a_missing_extra_is_marked_and_named_in_a_note(capsys, only):
    only("openvino")
    info = json.loads(_info(capsys, "--json")[0])
    onnxruntime = info["engines"]["onnxruntime"]
    assert (onnxruntime["installed"], onnxruntime["missing"]) == (False, ["onnx-module"])
    assert info["engines"]["openvino"]["installed"] and info["engines"]["torch"]["installed"]
    float32 = info["auto"]["cpu"]["float32"]
    assert float32["engine"] == "openvino" == _auto("float32")
    assert "'onnxruntime' is faster here (pip install 'irv2[onnx]'" in float32["note"]
    assert info["auto"]["cpu"]["int8"] == {"engine": "openvino", "note": None}

    out, err = _info(capsys)
    assert err == ""
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("  onnxruntime")] == [
        ["onnxruntime", "no:", "pip"]
    ]
    assert "no: pip install 'irv2[onnx]'" in out
    assert f"note: cpu float32: {float32['note']}" in out.splitlines()


def test_no_engine_for_a_dtype_says_what_to_install(capsys, only, monkeypatch):
    only()  # neither ONNX Runtime nor OpenVINO: int8 has no engine
    monkeypatch.setenv(BFLOAT16_VARIABLE, "0")  # and a CPU without bfloat16 instructions
    info = json.loads(_info(capsys, "--json")[0])
    int8 = info["auto"]["cpu"]["int8"]
    assert int8["engine"] is None
    assert "pip install 'irv2[openvino]'" in int8["note"] and "onnx" not in int8["note"]
    assert info["auto"]["cpu"]["float32"]["engine"] == "torch" and info["cpu_fast_bfloat16"] is False

    out, _ = _info(capsys)
    assert ["cpu", "int8", "none", "installed"] in [line.split() for line in out.splitlines()]
    assert ["cpu", "bfloat16", "refused"] in [line.split() for line in out.splitlines()]
    assert "note: cpu bfloat16: dtype bfloat16: this CPU has no bfloat16 instructions" in out


def test_engines_with_a_handle_is_a_usage_error(capsys):
    assert main(["info", "some-weights", "--engines"]) == 2
    assert capsys.readouterr().err == "irv2: error: --engines describes this machine, not weights: give it no HANDLE\n"


def test_as_a_user_runs_it(irv2_cli, tmp_path):
    env = {"IRV2_HOME": str(tmp_path / "empty-cache"), "IRV2_OFFLINE": "1"}  # no weights anywhere
    result = irv2_cli("info", "--engines", "--json", env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert set(json.loads(result.stdout)["engines"]) == set(catalog.ENGINES)
    assert not (tmp_path / "empty-cache").exists()
