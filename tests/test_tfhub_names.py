"""irv2.tfhub against tensorflow_hub itself: every public name of TF-Hub's package is either irv2's or refused
with what to use instead, and TF-Hub's own image helpers read irv2's modules (slow: imports TensorFlow)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import irv2.tfhub as hub
from irv2.errors import Irv2Error
from requires import require_tensorflow_hub, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow]


def _tensorflow_hub_names() -> list[str]:
    """``tensorflow_hub.__all__`` as its own ``__init__.py`` writes it, and the names that file imports."""
    found = importlib.util.find_spec("tensorflow_hub")
    if found is None or found.origin is None:
        unavailable("tensorflow_hub is not installed: pip install tensorflow-hub (`make setup` does)")
    tree = ast.parse(Path(found.origin).read_text())
    listed: list[str] = []
    imported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            listed += ast.literal_eval(node.value)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tensorflow_hub."):
            imported += [alias.asname or alias.name for alias in node.names]
    assert len(listed) > 15, "tensorflow_hub's __init__.py no longer lists __all__ as a literal"
    return sorted({*listed, *(name for name in imported if not name.startswith("_"))} - {"__version__"})


def test_every_tensorflow_hub_name_is_ours_or_refused():
    names = _tensorflow_hub_names()
    assert {"Module", "KerasLayer", "load", "eval_function_for_module", "resolve"} <= set(names)
    for name in names:
        value = getattr(hub, name)  # never an AttributeError
        if name in hub.__all__:
            continue
        with pytest.raises(Irv2Error, match=f"hub.{name} is not supported by irv2.tfhub: .+"):
            value()


def test_tensorflow_hubs_own_image_helpers_read_irv2_modules(weights_dir, monkeypatch):
    image_util = require_tensorflow_hub(
        monkeypatch, "tensorflow_hub.image_util", "TF-Hub's image helpers (`make setup` installs them)"
    )
    module = hub.Module(weights_dir)
    spec = hub.load_module_spec(weights_dir)
    for target in (module, spec):
        # TF-Hub asks for an attached ImageModuleInfo (its own message type), finds none, reads the input shape.
        assert image_util.get_expected_image_size(target) == [299, 299]
        assert image_util.get_num_image_channels(target) == 3
        assert image_util.get_image_module_info(target) is None
