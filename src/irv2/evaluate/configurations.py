"""The configurations one evaluation compares: the same weights in every precision and engine asked for.

``dtypes`` and ``engines`` (repeated ``--dtype`` and ``--engine``) combine as every dtype with every engine,
dtypes first: ``--dtype bfloat16 --dtype float32 --engine torch`` gives ``torch bfloat16`` then ``torch
float32``; an engine left unset is ``irv2.load``'s choice for each dtype. The first configuration is the
reference the others are compared with. When both are repeated, pairs the engine table
refuses (bfloat16 on ONNX Runtime) are left out and reported; otherwise every pair must run, since the user
named it. The names and checks are the engine table's own (``irv2.engine``).
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api import Module, load
from ..api.load import calibration_images
from ..engine import EngineSpec, Precision, build_engine, resolve_engine, resolve_precision
from ..errors import CheckpointError, MissingDependencyError, OptionError

if TYPE_CHECKING:
    import torch

Source = str | os.PathLike[str] | Module | None


def configuration_name(module: Module) -> str:
    """How reports name a configuration: its engine and precision (``torch bfloat16``)."""
    return f"{module.engine_name} {module.precision}"


def pairs(
    dtypes: Sequence[str | None] | None, engines: Sequence[str | None] | None
) -> list[tuple[str | None, str | None]]:
    """Every dtype with every engine, dtypes first, without repeats; None means the default."""
    return list(dict.fromkeys(itertools.product(dtypes or [None], engines or [None])))


@dataclass(frozen=True)
class Plan:
    """The configurations to load, checked against the engine table before any weights are read.

    Attributes:
        source: the handle, path or module they come from.
        device: where they run.
        runs: per configuration, the dtype and engine asked for and their resolved precision and engine record;
            None to use a module as it is (no dtype or engine asked for).
        skipped: pairs left out (``dtype``, ``engine``, ``reason``).
    """

    source: Source
    device: torch.device
    runs: list[tuple[str | None, str | None, Precision, EngineSpec]] | None
    skipped: list[dict[str, Any]] = field(default_factory=list)


def plan_configurations(
    source: Source,
    dtypes: Sequence[str] | None = None,
    engines: Sequence[str] | None = None,
    *,
    device: str | torch.device | None = None,
) -> Plan:
    """Check every pair of ``dtypes`` and ``engines`` (see the module docstring).

    Raises:
        OptionError: a pair that cannot run here (naming it and why), or no pair at all.
    """
    import torch

    target = torch.device(device) if device is not None else _default_device(source)
    if isinstance(source, Module) and not dtypes and not engines and target == source.device:
        return Plan(source, target, None)
    optional = len(dtypes or ()) > 1 and len(engines or ()) > 1
    runs, skipped = [], []
    for dtype, engine in pairs(dtypes, engines):
        try:
            precision = resolve_precision(dtype, target)
            runs.append((dtype, engine, precision, resolve_engine(engine, precision, target)))
        except (ValueError, MissingDependencyError) as exc:
            if not optional:
                raise _refusal(dtype, engine, exc) from None
            skipped.append({"dtype": dtype, "engine": engine, "reason": str(exc)})
    if not runs:
        raise OptionError(f"dtypes and engines: none of the pairs asked for runs here ({skipped[0]['reason']})")
    return Plan(source, target, runs, skipped)


def load_configurations(
    plan: Plan,
    *,
    calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None = None,
    progress: bool | None = None,
) -> list[Module]:
    """One module per configuration of ``plan``, the reference first.

    Every configuration runs a copy of one set of float32 weights: from a handle or path they are read once
    (``irv2.load`` with the plain engine, which builds nothing), then each configuration builds its engine.
    From a loaded module its own weights are copied (a module loaded in float32 gives exact copies; one loaded
    in bfloat16 has only bfloat16 weights to give).

    Raises:
        OptionError: a configuration that cannot be built (int8 without calibration images).
    """
    if plan.runs is None:
        return [plan.source]  # type: ignore[list-item]
    source = plan.source
    if not isinstance(source, Module):
        try:
            source = load(source, engine="plain", progress=progress)
        except OSError as exc:  # a weights file that cannot be opened (permissions, a vanished mount)
            raise CheckpointError(str(plan.source), f"cannot read the weights ({exc.strerror or exc})") from None
    modules = []
    for dtype, engine, precision, spec in plan.runs:
        try:
            modules.append(_configure(source, precision, spec, plan.device, calibration))
        except ValueError as exc:  # int8 without calibration images, images that do not fit, no bfloat16 here
            raise _refusal(dtype, engine, exc) from None
    return modules


def _named(dtype: str | None, engine: str | None) -> str:
    return f"dtype {dtype or 'float32'}" + (f" with engine {engine!r}" if engine else "")


def _refusal(dtype: str | None, engine: str | None, exc: Exception) -> OptionError:
    """``exc`` as an error naming the configuration once (the precision check names the dtype itself)."""
    return OptionError(f"{_named(dtype, engine)}: {re.sub(r'^dtype [^:]+: ', '', str(exc))}")


def _default_device(source: Source) -> torch.device:
    import torch

    return source.device if isinstance(source, Module) else torch.device("cpu")


def _configure(
    module: Module, precision: Precision, spec: EngineSpec, device: torch.device, calibration: Any
) -> Module:
    """``module``'s weights run by engine ``spec`` in ``precision``: the module itself when it is that already."""
    if module.engine_name == spec.name and module.precision == precision.name and module.device == device:
        return module
    model = copy.deepcopy(module.model).float().eval()
    images = calibration_images(calibration, module.preprocessing) if precision.name == "int8" else None
    engine = build_engine(spec, model, precision, device=device, image_size=module.info.image_size, calibration=images)
    return Module(model, module.info, engine)
