"""What a TF-Hub module's own ``saved_model.pb`` declares each signature to output, kept with the weights (in
``info.provenance``, so in ``irv2.json`` too) and read by the info dicts.

The file is the truth where it speaks: for a signature it declares, an info dict lists the keys the file lists, with
the file's dtype and shape (None where the file leaves a dimension unknown), not irv2's own list. Two limits keep an
info dict a promise about what the call returns:

- A key the file declares that irv2's call does not give (an output of another graph, e.g. ``AuxLogits`` outside
  the train graph) is left out; the file's full declaration stays readable in the provenance.
- Where the file's dtype or shape contradicts what irv2 computes (another rank, another size, a sparse tensor), or
  leaves the rank unknown, the key keeps irv2's own dtype and shape.

``default`` is always listed: it is what ``module(images)`` returns. A module read from a checkpoint, or from a
module file without signatures, has no declaration, and its info dicts are irv2's own list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .signatures import DEFAULT, TensorInfo, is_default

if TYPE_CHECKING:
    from ..formats import DeclaredTensor, SignatureOutputs

# The provenance entry: {tag set: {signature: {output key: {"dtype": ..., "shape": [...], "encoding": ...}}}}, a tag
# set written as its tags, sorted and joined by commas ("" for the inference graph, "train"); "shape" null for an
# unknown rank, each unknown dimension null; "encoding" only for an output that is not a dense tensor.
PROVENANCE_KEY = "signature_outputs"


def provenance_record(outputs: SignatureOutputs) -> dict[str, Any]:
    """``outputs`` (as ``irv2.formats.hub_module_outputs`` reads them) as the JSON-ready provenance entry."""
    return {
        _tag_key(tags): {
            signature: {key: _tensor_record(tensor) for key, tensor in declared.items()}
            for signature, declared in signatures.items()
        }
        for tags, signatures in outputs.items()
    }


def recorded_outputs(provenance: Mapping[str, Any]) -> dict[str, dict[str, dict[str, DeclaredTensor]]]:
    """The provenance entry read back, ``{tag key: {signature: {output key: DeclaredTensor}}}`` (``{}`` when there is
    none). ``ValueError`` saying what is wrong with an entry that irv2 did not write."""
    record = provenance.get(PROVENANCE_KEY)
    if record is None:
        return {}
    try:
        return {
            str(tags): {
                str(signature): {str(key): _tensor_of(tensor) for key, tensor in declared.items()}
                for signature, declared in signatures.items()
            }
            for tags, signatures in record.items()
        }
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"provenance {PROVENANCE_KEY!r} is not what irv2 writes ({exc})") from None


def signature_output_info(
    computed: dict[str, TensorInfo], provenance: Mapping[str, Any], signature: str | None, tags: Iterable[str]
) -> dict[str, TensorInfo]:
    """The info dict of ``signature`` (as asked: None or ``"default"`` for the default signature) in the graph of
    ``tags``: ``computed``, irv2's own, as the module's file declares it (see the module docstring)."""
    name = DEFAULT if is_default(signature) else signature
    declared = recorded_outputs(provenance).get(_tag_key(tags), {}).get(name)
    if declared is None:
        return computed
    return {
        key: _reported(declared.get(key), info) for key, info in computed.items() if key in declared or key == DEFAULT
    }


def _reported(declared: DeclaredTensor | None, computed: TensorInfo) -> TensorInfo:
    if declared is None or declared.shape is None or not _describes(declared, computed):
        return computed
    return TensorInfo(declared.dtype, declared.shape)


def _describes(declared: DeclaredTensor, computed: TensorInfo) -> bool:
    """Whether the file's output can be what irv2 computes: a dense tensor of the same dtype and rank whose known
    sizes agree (a size one side leaves unknown agrees with any)."""
    dims = computed.get_shape().as_list()
    if declared.encoding != "dense" or declared.dtype != computed.dtype.name or len(declared.shape) != len(dims):
        return False
    return all(a is None or b is None or a == b for a, b in zip(declared.shape, dims, strict=True))


def _tag_key(tags: Iterable[str]) -> str:
    return ",".join(sorted(tags))


def _tensor_record(tensor: DeclaredTensor) -> dict[str, Any]:
    record: dict[str, Any] = {"dtype": tensor.dtype, "shape": None if tensor.shape is None else list(tensor.shape)}
    if tensor.encoding != "dense":
        record["encoding"] = tensor.encoding
    return record


def _tensor_of(record: Mapping[str, Any]) -> DeclaredTensor:
    from ..formats.saved_model import DeclaredTensor  # on use: a module without a record never imports the readers

    shape = record["shape"]
    if shape is not None:
        if not all(dim is None or (type(dim) is int and dim >= 0) for dim in shape):
            raise ValueError(f"shape {shape} is not a list of sizes and nulls")
        shape = tuple(shape)
    return DeclaredTensor(str(record["dtype"]), shape, str(record.get("encoding", "dense")))
