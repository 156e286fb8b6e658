"""``model_fingerprint``: whether a network's weights changed since the engine last looked.

Engines keep a fused, cast or compiled copy of the plain network, and must never serve it after the weights
change: an optimizer step or ``load_state_dict`` (each tensor's in-place counter moves), ``.to`` or ``.half``
(each tensor gets new storage), or a parameter, buffer or submodule replaced by assignment. The question is
asked before every call, so it has to be cheap: walking the module tree's 1,320 tensors cost 2.5 ms through
``parameters()`` + ``buffers()`` with warm caches, and 3.8 ms between calls (caches cold) even reading the
module tables directly, 5% of a bfloat16 call at batch 1; this costs about 1 ms there.

So the tree is walked only when it may have changed shape. PyTorch announces every registration of a
parameter, buffer or submodule (assignments included) to process-wide hooks; one counts them. Between
registrations the list of tensors is kept, and a call reads just their in-place counters and storage
addresses. What bypasses ``nn.Module``'s registration (writing to the private ``_parameters`` table) is
not seen.
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch import nn

from .kernels import tensor_version

_registrations = 0  # parameters, buffers and submodules registered anywhere in the process so far
_hooks_lock = threading.Lock()
_hooks_installed = False
# Per model: the registration count when its tree was last walked, its tensors, and their identities' hash.
_tensor_lists: weakref.WeakKeyDictionary[nn.Module, tuple[int, tuple[torch.Tensor, ...], int]] = (
    weakref.WeakKeyDictionary()
)


def model_fingerprint(model: nn.Module) -> int:
    """A number that changes whenever a parameter or buffer of ``model`` is replaced, moved, cast or
    modified in place."""
    _install_hooks()
    listed = _tensor_lists.get(model)
    if listed is None or listed[0] != _registrations:
        # Any registration anywhere (an engine building its fused copy, too) means walking again; the
        # fingerprint itself depends only on which tensors the walk finds, so an unrelated one changes nothing.
        seen = _registrations  # read first: a registration during the walk makes the next call walk again
        tensors = _tensors_of(model)
        listed = (seen, tensors, hash(tuple(map(id, tensors))))
        _tensor_lists[model] = listed
    _, tensors, identities = listed
    # The storage address changes with .to()/.half() (a new .data), which leaves the in-place counter alone.
    return hash((identities, tuple(map(tensor_version, tensors)), tuple(map(torch.Tensor.data_ptr, tensors))))


def _tensors_of(model: nn.Module) -> tuple[torch.Tensor, ...]:
    """Every parameter and buffer under ``model`` (``modules()`` without the dotted names it builds)."""
    found: list[torch.Tensor] = []
    pending = [model]
    while pending:
        module = pending.pop()
        for table in (module._parameters, module._buffers):
            found.extend(t for t in table.values() if t is not None)
        pending.extend(child for child in module._modules.values() if child is not None)
    return tuple(found)


def _count_registration(*_args: object) -> None:
    global _registrations
    _registrations += 1  # returns None: the registered value is left as it is


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    with _hooks_lock:
        if not _hooks_installed:
            from torch.nn.modules import module as module_hooks

            module_hooks.register_module_parameter_registration_hook(_count_registration)
            module_hooks.register_module_buffer_registration_hook(_count_registration)
            module_hooks.register_module_module_registration_hook(_count_registration)
            _hooks_installed = True
