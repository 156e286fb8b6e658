"""The engines table is the one list of engine names and extras: each engine class reads its name, extra and
dtypes from its record, and no engine module writes them again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from irv2.engine.catalog import ENGINES, FILE_ENGINES, spec_of
from irv2.engine.precision import resolve_precision
from irv2.engine.runtime_engine import RuntimeEngine
from irv2.model import InceptionResNetV2

SOURCE = Path(__file__).resolve().parents[2] / "src" / "irv2"
# The modules the engines live in, and the report that names their libraries: where names were written again.
ENGINE_MODULES = [*sorted((SOURCE / "engine").glob("*.py")), SOURCE / "evaluate" / "summary.py"]


@pytest.mark.parametrize("name", list(ENGINES))
def test_each_record_names_the_class_that_reads_it_back(name):
    spec = ENGINES[name]
    engine_class = spec.engine_class()
    assert spec_of(engine_class, **dict(spec.options)) is spec
    if issubclass(engine_class, RuntimeEngine):
        assert engine_class.spec() is spec and name in FILE_ENGINES
        assert spec.extra is not None and spec.library is not None
    else:
        assert name not in FILE_ENGINES and spec.library is None


def test_torch_engines_are_named_by_their_options():
    model = InceptionResNetV2(num_classes=0, aux_logits=False)
    precision = resolve_precision(torch.float32, torch.device("cpu"))
    for name in ("torch", "plain", "compiled"):
        spec = ENGINES[name]
        engine = spec.engine_class().from_catalog(
            model, precision, image_size=(299, 299), calibration=None, **dict(spec.options)
        )
        assert engine.name == name


def test_unknown_class_or_options_are_not_guessed():
    with pytest.raises(LookupError, match="no engine record names"):
        spec_of(InceptionResNetV2)
    with pytest.raises(LookupError, match=r"'compile': True, 'fused': False"):
        spec_of(ENGINES["torch"].engine_class(), fused=False, compile=True)


def test_no_engine_module_writes_an_engine_name_or_extra_again():
    """Only catalog.py holds an engine's name or extra as a string. A package's name where a package is meant
    (``metadata.version("onnx")``, the converter's version) is not an engine's, nor is ``torch``, the library's
    module name as well (``sys.modules.get("torch")``)."""
    words = {name for name in ENGINES if name != "torch"} | {spec.extra for spec in ENGINES.values() if spec.extra}
    found = []
    for path in ENGINE_MODULES:
        if path.name == "catalog.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        packages = {
            id(argument)
            for call in ast.walk(tree)
            if isinstance(call, ast.Call) and _called(call) in ("version", "find_spec", "import_module")
            for argument in call.args
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in words and id(node) not in packages:
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}: {node.value!r}")
    assert found == []


def _called(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
