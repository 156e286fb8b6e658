"""The engines that can run a loaded network, by name: the one vocabulary of ``irv2.load(engine=...)``,
``--engine`` on every command, ``irv2 bench`` and the batch jobs' manifests.

Each engine is a record: what it is, where and in which precisions it runs, the extra it needs, the class that
runs it and the library whose files it runs. Adding an engine is adding a record; nothing else lists engine
names or extras: each engine class reads its name, extra and dtypes from its record (:func:`spec_of`). Nothing
here imports torch: the choice is made before irv2 knows whether the engine needs it. A device is a
``torch.device``, a string (``cuda:1``) or None for the CPU.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from ..errors import MissingDependencyError
from ..extras import missing_modules, require_extra
from ..notices import notify
from .precision import Precision, device_type


@dataclass(frozen=True)
class EngineSpec:
    """One way to run the network.

    Attributes:
        name: what users write (``engine="torchscript"``, ``--engine torchscript``).
        summary: one line for help texts and ``irv2 bench``.
        devices: the device types it runs on (``cpu``, ``cuda``, ``mps``).
        dtypes: the precisions it runs (names from :data:`irv2.engine.precision.PRECISIONS`).
        extra: the pip extra it needs (``pip install 'irv2[onnx]'``), or None.
        trains: whether TF-Hub's ``{"train"}`` graph can run on it (only eager PyTorch has gradients).
        needs: modules a precision needs beyond the extra's (OpenVINO's int8 needs nncf); same extra.
        implementation: the class that runs it, ``module:Class`` under ``irv2.engine``, imported when built.
        options: the keyword arguments that class is built with (one class runs several engines).
        library: the distribution whose files the engine runs (prepared once, opened without torch), or None
            for the engines that run PyTorch; its version keys the prepared files and is recorded in reports.
        runs_export: the kind of file ``irv2 export`` writes that this engine runs when ``irv2.load`` is given
            one (``irv2.api.exported.export_kind``), or None.
    """

    name: str
    summary: str
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    implementation: str
    options: tuple[tuple[str, Any], ...] = ()
    extra: str | None = None
    library: str | None = None
    runs_export: str | None = None
    trains: bool = False
    needs: tuple[tuple[str, str], ...] = ()  # (dtype, module)

    def engine_class(self) -> type:
        """The class that runs this engine (importing its module, and torch with most)."""
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module, __package__), name)

    def installed(self, dtype: str) -> bool:
        """Whether everything running ``dtype`` on this engine needs can be imported here."""
        if self.extra is not None and missing_modules(self.extra):
            return False
        return all(importlib.util.find_spec(module) is not None for needed, module in self.needs if needed == dtype)

    def check(self, precision: Precision, device: Any, *, train: bool = False) -> None:
        """Raise ValueError saying why this engine cannot run ``precision`` on ``device`` (or train)."""
        kind = device_type(device)
        if kind not in self.devices:
            raise ValueError(f"engine {self.name!r} runs on {' or '.join(self.devices)}, not {kind}")
        if precision.name not in self.dtypes:
            others = [repr(name) for name in engines_for(precision.name)]
            listed = f"{', '.join(others[:-1])} or {others[-1]}" if len(others) > 1 else "".join(others)
            hint = f"; {precision.name} runs on engine {listed}" if others else ""
            raise ValueError(f"engine {self.name!r} runs dtype {', '.join(self.dtypes)}, not {precision.name}{hint}")
        if train and not self.trains:
            raise ValueError(f"the {{'train'}} graph runs in eager PyTorch (engine 'torch'), not engine {self.name!r}")
        if self.extra is not None:
            require_extra(self.extra, f"engine {self.name!r}")


_GPU_AND_CPU = ("cpu", "cuda", "mps")
_TORCH_DTYPES = ("float32", "tf32", "bfloat16", "float16")
# float64 is a reference mode for checking numerics (``dtype=torch.float64``), not a precision to deploy.
_EAGER_DTYPES = (*_TORCH_DTYPES, "float64")
_INFERENCE_ENGINE = ".runner:InferenceEngine"

ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name="torch",
            summary="eager PyTorch on the fused network (BatchNorm folded, kernels fused, channels-last)",
            devices=_GPU_AND_CPU,
            dtypes=_EAGER_DTYPES,
            implementation=_INFERENCE_ENGINE,
            options=(("fused", True), ("compile", False)),
            trains=True,
        ),
        EngineSpec(
            name="plain",
            summary="eager PyTorch on the plain TF-Slim network, unfused: the reference the others are checked against",
            devices=_GPU_AND_CPU,
            dtypes=_EAGER_DTYPES,
            implementation=_INFERENCE_ENGINE,
            options=(("fused", False), ("compile", False)),
            trains=True,
        ),
        EngineSpec(
            name="compiled",
            summary="torch.compile of the fused network: a slow first call per batch shape (cached on disk), then fast",
            devices=("cpu", "cuda"),
            dtypes=_TORCH_DTYPES,
            implementation=_INFERENCE_ENGINE,
            options=(("fused", True), ("compile", True)),
        ),
        EngineSpec(
            name="torchscript",
            summary="the fused network traced and run through oneDNN Graph; compiles on the first calls, for long runs",
            devices=("cpu",),
            dtypes=("float32", "bfloat16"),
            implementation=".torchscript_engine:TorchScriptEngine",
        ),
        EngineSpec(
            name="onnxruntime",
            summary="ONNX Runtime: float32, the graph exported once and cached",
            devices=("cpu",),
            dtypes=("float32",),
            implementation=".onnxruntime_engine:OnnxRuntimeEngine",
            extra="onnx",
            library="onnxruntime",
            runs_export="onnx",
        ),
        EngineSpec(
            name="openvino",
            summary="Intel OpenVINO: float32, bfloat16, or int8 quantized by NNCF on your images; converted once",
            devices=("cpu",),
            dtypes=("float32", "bfloat16", "int8"),
            implementation=".openvino_engine:OpenVinoEngine",
            extra="openvino",
            library="openvino",
            runs_export="openvino",
            needs=(("int8", "nncf"),),
        ),
    )
}
# The engines that run a file of their library's format, which can be prepared once and opened without torch.
FILE_ENGINES = tuple(name for name, spec in ENGINES.items() if spec.library is not None)
# PyTorch: what runs where no faster engine is installed, on GPUs, and always for the train graph.
TORCH_ENGINE = "torch"
AUTO = "auto"
# What ``engine`` left unset means: this variable's engine if set (``IRV2_ENGINE=torch`` pins PyTorch for a whole
# process tree, as a test suite or a service may want), else "auto".
ENGINE_VARIABLE = "IRV2_ENGINE"
# engine="auto": the fastest engine installed, by device and precision, first installed wins. The order comes
# from the engines measured side by side on one machine (docs/performance.md, "Which engine runs"). Elsewhere
# (CUDA, float16, tf32) PyTorch is the only choice.
AUTO_ORDER: dict[tuple[str, str], tuple[str, ...]] = {
    ("cpu", "float32"): ("onnxruntime", "openvino", "torch"),
    ("cpu", "bfloat16"): ("openvino", "torch"),
    ("cpu", "int8"): ("openvino",),
}
# Earlier spellings, still understood: ``irv2 bench --engine fused`` named the default engine so.
ALIASES = {"fused": "torch", "eager": "torch", "compile": "compiled", "ort": "onnxruntime", "ov": "openvino"}


def engine_names() -> tuple[str, ...]:
    """Every engine's name, the default first (what ``--engine`` accepts)."""
    return tuple(ENGINES)


def engines_for(dtype: str) -> list[str]:
    """The engines that run ``dtype``."""
    return [spec.name for spec in ENGINES.values() if dtype in spec.dtypes]


def auto_engine(precision: Precision, device: Any, *, train: bool = False) -> str:
    """The engine ``engine="auto"`` (and ``engine`` left unset) picks (:func:`auto_choice`), its notice about a
    faster engine that is missing given as one line on stderr (:func:`irv2.notices.notify`), once per process."""
    name, notice = auto_choice(precision, device, train=train)
    if notice is not None:
        notify(notice, once=True)
    return name


def auto_choice(precision: Precision, device: Any, *, train: bool = False) -> tuple[str, str | None]:
    """The first of :data:`AUTO_ORDER` for the device and precision whose extra is installed, and a one-line
    notice naming a faster engine that is missing (None if none is); the train graph always runs on PyTorch.
    MissingDependencyError when no engine for the precision is installed, naming the extras."""
    order = AUTO_ORDER.get((device_type(device), precision.name), ())
    if train or not order:
        name = TORCH_ENGINE if precision.name in ENGINES[TORCH_ENGINE].dtypes else engines_for(precision.name)[0]
        return name, None
    missing = []
    for name in order:
        extra = ENGINES[name].extra
        if ENGINES[name].installed(precision.name):
            notice = None
            if missing:
                notice = (
                    f"running {precision.name} on engine {name!r}: {missing[0][0]!r} is faster here "
                    f"(pip install 'irv2[{missing[0][1]}]'; engine={name!r} or {ENGINE_VARIABLE}={name} keeps "
                    "this choice quietly)"
                )
            return name, notice
        missing.append((name, extra))
    names = ", ".join(f"{name!r} (pip install 'irv2[{extra}]')" for name, extra in missing)
    raise MissingDependencyError(f"{precision.name} on {device_type(device)} needs one of the engines {names}")


def default_engine() -> str:
    """What ``engine`` left unset means here: ``$IRV2_ENGINE`` when set, else ``"auto"``."""
    return os.environ.get(ENGINE_VARIABLE, "").strip() or AUTO


def resolve_engine(name: str | None, precision: Precision, device: Any, *, train: bool = False) -> EngineSpec:
    """The engine ``name`` (None: :func:`default_engine`; ``"auto"``: :func:`auto_engine`), checked against the
    device, the precision and the train graph; ValueError naming the engine (and ``$IRV2_ENGINE`` when that
    chose it) and what it can do otherwise."""
    source = ""
    if name is None:
        name = default_engine()
        source = f" ({ENGINE_VARIABLE}={name})" if name != AUTO else ""
    if str(name).lower() == AUTO:
        name = auto_engine(precision, device, train=train)
    key = ALIASES.get(str(name).lower(), str(name).lower())
    spec = ENGINES.get(key)
    if spec is None:
        raise ValueError(f"unknown engine {name!r}{source}; use one of {', '.join(map(repr, ENGINES))} or 'auto'")
    try:
        spec.check(precision, device, train=train)
    except ValueError as exc:
        raise ValueError(f"{exc}{source}") from None
    return spec


def build_engine(
    spec: EngineSpec,
    model: Any,
    precision: Precision,
    *,
    device: Any,
    image_size: tuple[int, int],
    calibration: Any = None,
    train: bool = False,
) -> Any:
    """The engine ``spec`` names over ``model``, which it moves to ``device`` (and casts to the precision),
    in eval mode and ready for its first call. ``model`` comes in float32: an engine in a lower precision
    folds the weights before it casts them, so each weight is rounded once. ``train``: the model is about to
    become TF-Hub's train graph; nothing is folded now."""
    engine = spec.engine_class().from_catalog(
        model, precision, image_size=image_size, calibration=calibration, **dict(spec.options)
    )
    engine.place(device, fold=not train)
    return engine


def spec_of(engine_class: type, **options: Any) -> EngineSpec:
    """The record of the engine that ``engine_class`` runs when built with ``options``: where an engine class
    reads its name, extra and dtypes. LookupError for a class and options that no record names."""
    return _spec_of(f"{engine_class.__module__}:{engine_class.__qualname__}", tuple(sorted(options.items())))


@functools.cache
def _spec_of(implementation: str, options: tuple[tuple[str, Any], ...]) -> EngineSpec:
    for spec in ENGINES.values():
        module, _, name = spec.implementation.partition(":")
        same_class = f"{importlib.util.resolve_name(module, __package__)}:{name}" == implementation
        if same_class and tuple(sorted(spec.options)) == options:
            return spec
    raise LookupError(f"no engine record names {implementation} built with {dict(options)}")
