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
    """A callable ``name`` of ``package`` that imports ``where`` (relative to it) on its first call and forwards
    to that module's ``name``: a package's main function, bound eagerly on ``irv2`` (see irv2/__init__.py) while
    what it needs (torch) is imported only when it runs. ``inspect.signature`` and ``help`` see the real
    function's signature and docstring (importing it then)."""
    return _Forwarding(package, where, name, summary)


class _Forwarding:
    def __init__(self, package: str, where: str, name: str, summary: str) -> None:
        self._target = (package, where, name)
        self.__name__ = self.__qualname__ = name
        self.__module__ = package
        self._summary = summary

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        """The real function (``inspect.signature`` follows this)."""
        package, where, name = self._target
        return getattr(importlib.import_module(where, package), name)

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        return self.__wrapped__.__doc__ or self._summary

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        """The package's other public names: on ``irv2``, ``irv2.finetune`` is this function, and
        ``irv2.finetune.set_train_mode`` should still reach the package's ``set_train_mode``."""
        if attribute.startswith("_"):  # copy, pickle and inspect probe these: they are not the package's
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._target[0]), attribute)

    def __dir__(self) -> list[str]:
        return sorted({*object.__dir__(self), *dir(importlib.import_module(self._target[0]))})

    def __repr__(self) -> str:
        package, where, name = self._target
        return f"<function {package}.{name} (from {package}{where}, imported on first call)>"
