"""TF-Hub's {"train"} graph: BatchNorm on batch statistics with TF's decay, dropout, aux logits (fast)."""

import numpy as np
import pytest
import torch

import irv2
from irv2.api import Module, ModuleInfo
from irv2.finetune import set_train_mode
from irv2.model import InceptionResNetV2


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    net = InceptionResNetV2().eval()
    return irv2.save(Module(net, ModuleInfo(1001, irv2.labels())), tmp_path_factory.mktemp("m") / "module")


def test_train_tag_sets_tf_hub_training_state(saved):
    module = irv2.load(saved, tags={"train"})
    assert module.model.head_drop.p == 0.2 and module.model.conv2d_1a.bn.momentum == pytest.approx(0.003)
    # As README.md and irv2.load's docstring spell it: irv2.finetune is the function, and reaches its package.
    irv2.finetune.set_train_mode(module.model, batch_norm_momentum=0.99, dropout_rate=0.3)
    assert irv2.finetune.set_train_mode is set_train_mode and callable(irv2.finetune)
    assert module.training and module.model.head_drop.p == 0.3
    bns = [m for m in module.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bn.training and bn.momentum == pytest.approx(0.01) for bn in bns)
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert "classif.weight" in trainable and "conv2d_1a.conv.weight" in trainable
    assert not any(n.endswith("bn.weight") for n in trainable)
    assert not irv2.load(saved).training


def test_moving_averages_follow_tf_decay(saved):
    module = irv2.load(saved, tags={"train"})
    set_train_mode(module.model, batch_norm_momentum=0.9)
    bn = module.model.conv2d_1a.bn
    old_mean, old_var = bn.running_mean.clone(), bn.running_var.clone()
    seen = {}
    hook = bn.register_forward_pre_hook(lambda _, args: seen.setdefault("x", args[0].detach().clone()))
    images = torch.rand(4, 299, 299, 3)
    module(images)
    hook.remove()
    x = seen["x"]
    batch_mean = x.mean(dim=(0, 2, 3))
    batch_var = x.var(dim=(0, 2, 3), unbiased=True)  # TF's fused batch norm applies Bessel's correction too
    torch.testing.assert_close(bn.running_mean, 0.9 * old_mean + 0.1 * batch_mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, 0.9 * old_var + 0.1 * batch_var, rtol=1e-4, atol=1e-5)


def test_train_mode_gives_aux_logits_and_gradients(saved):
    module = irv2.load(saved, tags=["train"])
    out = module(torch.rand(2, 299, 299, 3), signature="image_classification", as_dict=True)
    assert out["aux_logits"].shape == (2, 1001) and out["aux_logits"] is out["InceptionResnetV2/AuxLogits"]
    (out["default"].sum() + 0.4 * out["aux_logits"].sum()).backward()
    assert module.model.aux_logits.classif.weight.grad is not None
    assert module.model.conv2d_1a.conv.weight.grad is not None
    features = module(torch.rand(2, 299, 299, 3), signature="image_feature_vector", as_dict=True)
    assert features["default"].shape == (2, 1536) and "aux_logits" not in features


def test_bad_training_options(saved):
    with pytest.raises(ValueError, match="unknown tags"):
        irv2.load(saved, tags={"serve"})
    model = irv2.load(saved, tags={"train"}).model
    with pytest.raises(ValueError, match="decay in"):
        set_train_mode(model, batch_norm_momentum=1.5)
    with pytest.raises(ValueError, match="dropout_rate"):
        set_train_mode(model, dropout_rate=1.0)
    with pytest.raises(ValueError, match="runs in eager PyTorch"):
        irv2.load(saved, tags={"train"}, engine="compiled")
    assert isinstance(irv2.load(saved, tags=set())(np.zeros((1, 299, 299, 3), np.float32)), np.ndarray)
