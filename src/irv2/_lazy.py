"""Names of a package that resolve to their submodule on first use (PEP 562), so that importing the package
costs only what its eager names need. ``import irv2`` must not import torch: most of irv2's names need it,
and a command that only infers from a prepared ONNX Runtime or OpenVINO file never should."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def lazy_attributes(
    package: str, table: dict[str, str], public: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``table`` maps a name to the module (relative to
    ``package``) that defines it; the value is imported on first access and kept in the package."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where, package), name)
        namespace[name] = value  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table, *public})

    return __getattr__, __dir__


def forwarding(package: str, where: str, name: str, summary: str) -> Callable[..., Any]:
    """A function ``name`` of ``package`` that imports ``where`` (relative to it) on its first call and forwards
    to that module's ``name``: a package's main function, bound eagerly on ``irv2`` (see irv2/__init__.py) while
    what it needs (torch) is imported only when it runs."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(where, package), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = package
    call.__doc__ = (
        f"{summary}.\n\n``{package}{where}.{name}``, imported on the first call so that importing irv2 stays light; "
        "its docstring has the arguments."
    )
    return call
