"""The output dict of a named signature called with ``as_dict=True``, computed as TensorFlow fetches it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class SignatureOutputs(Mapping[str, Any]):
    """``default`` and the end points of one call: ``default`` is given; the end points are computed by
    ``compute`` when one is first read, all in that one pass, and kept. ``keys()`` lists them all from the start.

    TF-Hub's ``module(..., as_dict=True)["default"]`` fetches one tensor, and TensorFlow runs only what that
    tensor needs. Computing and copying all 16 end points (about 6M floats an image) for it would make TF-Hub's
    standard call several times the plain one.
    """

    def __init__(self, default: Any, endpoint_keys: tuple[str, ...], compute: Callable[[], dict[str, Any]]) -> None:
        self._values: dict[str, Any] = {"default": default}
        self._keys = (*endpoint_keys, "default")  # the order the eager dict had: network order, then default
        self._compute: Callable[[], dict[str, Any]] | None = compute

    def __getitem__(self, key: str) -> Any:
        if key not in self._values and key in self._keys and self._compute is not None:
            self._values.update(self._compute())  # every end point in this one pass
            self._compute = None
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __repr__(self) -> str:
        pending = "" if self._compute is None else ", end points not computed yet"
        return f"SignatureOutputs({list(self._keys)}{pending})"
