"""``hub.eval_function_for_module``: TF-Hub's way to run a module on numpy values without writing a graph."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .module import Module
from .spec import ModuleSpec


@contextlib.contextmanager
def eval_function_for_module(
    spec: ModuleSpec | str | os.PathLike[str], tags: Iterable[str] | None = None
) -> Iterator[Callable[..., Any]]:
    """``with hub.eval_function_for_module(handle) as f: outputs = f(images, signature=..., as_dict=...)``.

    ``f`` takes what :class:`Module` takes (``images`` float ``[B, H, W, 3]`` in [0, 1], or ``dict(images=...)``)
    and gives numpy values: the signature's output, or with ``as_dict=True`` its output dict. ``signature``
    None is ``"default"``. TF-Hub builds a graph and a session for this; here the module is loaded once and
    released when the block ends.
    """
    held = [Module(spec, tags=tags)]  # emptied when the block ends, as TF-Hub closes its session

    def evaluate(inputs: Any = None, _sentinel: None = None, signature: str | None = None, as_dict: bool | None = None):
        if _sentinel is not None:
            raise TypeError("pass signature and as_dict by keyword, as TF-Hub's function takes them")
        if not held:
            raise RuntimeError("the function of hub.eval_function_for_module runs inside its `with` block only")
        return held[0](_as_numpy(inputs), signature=signature, as_dict=as_dict)

    try:
        yield evaluate
    finally:
        held.clear()


def _as_numpy(inputs: Any) -> Any:
    """Numpy in, numpy out: TF-Hub's function feeds and fetches values, never tensors."""
    import numpy as np

    if isinstance(inputs, dict):
        return {key: np.asarray(value) for key, value in inputs.items()}
    return np.asarray(inputs)
