"""``model_fingerprint`` decides when an engine's fused copy is stale: every way weights change must show."""

import pytest
import torch
from torch import nn

from irv2.engine.fingerprint import model_fingerprint, weights_sha256


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def _in_place(model):
    with torch.no_grad():
        model[2][1].bias += 1


def _new_parameter(model):
    model[0].weight = nn.Parameter(model[0].weight.detach().clone())


def _new_buffer(model):
    model[1].running_mean = model[1].running_mean.clone()


def _new_submodule(model):
    model[2][1] = nn.Linear(4, 2)


def _state_dict_copy(model):
    model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})


def _state_dict_assign(model):
    model.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, assign=True)


def _cast(model):
    model.double()


def _data_swap(model):
    model[0].weight.data = model[0].weight.data.clone()


@pytest.mark.parametrize(
    "change",
    [_in_place, _new_parameter, _new_buffer, _new_submodule, _state_dict_copy, _state_dict_assign, _cast, _data_swap],
)
def test_every_change_of_weights_changes_the_fingerprint(change):
    model = _model()
    before = model_fingerprint(model)
    change(model)
    assert model_fingerprint(model) != before


def test_calls_and_no_op_moves_keep_the_fingerprint():
    model = _model().eval()
    before = model_fingerprint(model)
    with torch.no_grad():
        model(torch.zeros(1, 3, 3, 3))
    model.to("cpu", torch.float32)
    assert model_fingerprint(model) == before


def test_modules_built_elsewhere_keep_the_fingerprint():
    """Engines build modules of their own (fused copies, traces): that must not look like changed weights."""
    model = _model()
    before = model_fingerprint(model)
    _model(), nn.Linear(3, 3)
    assert model_fingerprint(model) == before


def test_a_loaded_module_leaves_no_global_hooks_in_torch(weights_dir, batch):
    """A library must not change torch's process-wide state: after a load and calls on every engine that
    watches the weights, nn.Module's global registration and forward hooks are as torch left them."""
    from torch.nn.modules import module as torch_module

    import irv2

    tables = [name for name in vars(torch_module) if name.startswith("_global_") and name.endswith("hooks")]
    assert tables, "torch keeps its global nn.Module hooks elsewhere now: update this test"
    before = {name: dict(getattr(torch_module, name)) for name in tables}
    for engine in ("torch", "torchscript"):
        module = irv2.load(weights_dir, engine=engine)
        module(batch[:1])
        module.model.classif.bias.data += 1  # a change the engine must notice, without any hook
        module(batch[:1])
    after = {name: dict(getattr(torch_module, name)) for name in tables}
    assert after == before


def test_weights_digest_follows_the_values_not_the_storage():
    model = _model()
    digest = weights_sha256(model)
    assert len(digest) == 64 and weights_sha256(_copy(model)) == digest
    model.double()  # the same values in another precision: the same weights
    assert weights_sha256(model) == digest
    with torch.no_grad():
        model[2][1].bias[0] += 1
    assert weights_sha256(model) != digest


def _copy(model: nn.Module) -> nn.Module:
    twin = _model()
    twin.load_state_dict(model.state_dict())
    return twin
