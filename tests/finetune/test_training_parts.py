"""The parts of a run, one at a time: what trains in each mode, heads, optimizers and schedule, dtype,
options, the API's signature, checkpoints and reports (fast; no full training run)."""

from __future__ import annotations

import dataclasses
import inspect
import io
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import irv2
from irv2.api.load import set_train_mode
from irv2.errors import OptionError
from irv2.finetune import FinetuneConfig, session
from irv2.finetune import precision as precision_module
from irv2.finetune.batches import GlobalBatches
from irv2.finetune.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from irv2.finetune.data import DataSplit, Sample
from irv2.finetune.datasets import IndexedDataset, TensorPairDataset
from irv2.finetune.distributed import Distributed
from irv2.finetune.freeze import NUM_UNITS, backbone_units, parameter_groups, plan_training
from irv2.finetune.heads import aux_head_fits, replace_heads
from irv2.finetune.loop import HeadNet, Objective, TrainNet, train_epoch
from irv2.finetune.optim import TFRMSprop, make_optimizer, warmup_cosine, warmup_steps
from irv2.finetune.progress import Progress
from irv2.finetune.report import confusion_matrix, plot_confusion, plot_curves
from irv2.finetune.setups import network_setup
from irv2.model import InceptionResNetV2


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return InceptionResNetV2()


def test_backbone_units_are_the_documented_49(network):
    names = [name for name, _ in backbone_units(network)]
    assert len(names) == NUM_UNITS == 49
    assert names[:6] == ["conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a", "mixed_5b"]
    assert names[-12:] == ["mixed_7a", *(f"repeat_2.{i}" for i in range(9)), "block8", "conv2d_7b"]
    assert names.index("repeat_1.19") == 36  # the 37th unit: the last 32 reach back to repeat_1.0
    units = [p for _, unit in backbone_units(network) for p in unit.parameters()]
    head = list(network.classif.parameters()) + list(network.aux_logits.parameters())
    assert len(units) + len(head) == len(list(network.parameters()))  # every weight is in one unit or a head


def _fresh(classes=5, aux=False):
    torch.manual_seed(0)
    model = InceptionResNetV2(aux_logits=False)
    replace_heads(model, classes, aux=aux)
    set_train_mode(model)
    return model


def test_last_blocks_freezes_all_but_the_last_units():
    model = _fresh()
    plan = plan_training(model, "last-blocks", 2)
    assert plan.trained_units == ["block8", "conv2d_7b"]
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"block8", "conv2d_7b", "classif"}
    assert not any(n.endswith("bn.weight") for n, p in model.named_parameters() if p.requires_grad)
    plan.set_training(model, True)
    assert model.block8.training and model.conv2d_7b.bn.training and model.head_drop.training
    assert not model.repeat_2[8].training and not model.conv2d_1a.bn.training  # frozen: moving averages
    plan.set_training(model, False)
    assert not model.block8.training
    with pytest.raises(ValueError, match="between 1 and 49"):
        plan_training(_fresh(), "last-blocks", 50)


def test_full_mode_parameter_groups():
    model = _fresh(aux=True)
    plan_training(model, "full")
    groups = parameter_groups(model, lr=1e-3, backbone_lr_factor=0.1, weight_decay=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
    assert by_name["head"]["lr"] == 1e-3 and by_name["backbone"]["lr"] == pytest.approx(1e-4)
    assert by_name["backbone_no_decay"]["weight_decay"] == 0.0 and by_name["head"]["weight_decay"] == 1e-4
    assert all(p.ndim == 1 for p in by_name["backbone_no_decay"]["params"])
    head_ids = {id(p) for g in ("head", "head_no_decay") for p in by_name[g]["params"]}
    assert head_ids == {id(p) for p in [*model.classif.parameters(), *model.aux_logits.parameters()] if p.requires_grad}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in groups) == len(trainable)


def test_aux_head_fits_agrees_with_the_network():
    model = _fresh(classes=3, aux=True).eval().to("meta")  # shapes only: no memory, no arithmetic
    for size in (96, 298, 299, 331, 345):
        try:
            model.forward_with_aux(torch.empty(1, 3, size, size, device="meta"))
            ran = True
        except (RuntimeError, ValueError):  # the head refuses a pooled map other than 5 x 5
            ran = False
        assert aux_head_fits(size) == ran, size
    assert aux_head_fits(299) and not aux_head_fits(298)


def test_full_mode_trains_a_new_aux_head_at_299_px():
    model = _fresh(classes=3, aux=True)
    plan = plan_training(model, "full")
    net = TrainNet(model, aux=True)
    plan.set_training(model, True)
    logits, aux = net(torch.rand(2, 3, 299, 299))
    assert logits.shape == aux.shape == (2, 3)
    Objective(0.1, 0.4)(logits, aux, torch.tensor([0, 2])).backward()
    assert model.aux_logits.classif.weight.grad.abs().sum() > 0 and model.conv2d_1a.conv.weight.grad is not None
    plan.set_training(model, False)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 299, 299))[1] is None  # validation: the main head only


@pytest.mark.parametrize(
    ("mode", "size", "aux"), [("full", 299, True), ("full", 128, False), ("last-blocks", 299, False)]
)
def test_setup_uses_aux_logits_only_where_it_can_train(mode, size, aux):
    split = DataSplit(["a", "b"], [Sample(f"{i}.png", i % 2) for i in range(4)], [Sample("v.png", 0)])
    config = FinetuneConfig(mode=mode, image_size=size, blocks=3 if mode == "last-blocks" else None)
    model = InceptionResNetV2()  # 1001 classes with the old AuxLogits: always replaced or removed
    setup = network_setup(model, split, config, dist=Distributed(1, 0, 0, torch.device("cpu")))
    assert setup.aux is aux and (model.aux_logits is not None) is aux and model.classif.out_features == 2
    assert setup.objective.aux_loss_weight == (0.4 if aux else 0.0)
    if aux:
        assert model.aux_logits.classif.out_features == 2 and model.aux_logits.conv2d_1b.bn.momentum == 1 - 0.997


def test_objective_adds_the_weighted_aux_loss():
    logits, aux = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 1])
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits, labels, label_smoothing=0.1) + 0.4 * ce(aux, labels, label_smoothing=0.1)
    torch.testing.assert_close(Objective(0.1, 0.4)(logits, aux, labels), expected)
    torch.testing.assert_close(Objective(0.1, 0.0)(logits, aux, labels), ce(logits, labels, label_smoothing=0.1))


def test_train_net_maps_inputs_to_minus_one_one():
    model = _fresh(classes=3)
    seen = {}
    model.conv2d_1a.register_forward_pre_hook(lambda _, args: seen.setdefault("x", args[0]))
    TrainNet(model, aux=False).eval()(torch.ones(1, 3, 80, 80) * 0.25)
    torch.testing.assert_close(seen["x"], torch.full((1, 3, 80, 80), -0.5))


def test_warmup_then_cosine_per_step():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = warmup_cosine(optimizer, warmup=4, total=14)
    lrs = []
    for _ in range(14):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(lrs[:4], [0.025, 0.05, 0.075, 0.1])
    np.testing.assert_allclose(lrs[4:], [0.05 * (1 + math.cos(math.pi * k / 10)) for k in range(10)], atol=1e-12)
    assert warmup_steps(1.0, 10, 100) == 10 and warmup_steps(1.0, 10, 10) == 5  # at most half the run


def test_tf_rmsprop_update_rule():
    parameter = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = TFRMSprop([parameter], lr=0.1)
    ms, mom, value = torch.ones(2), torch.zeros(2), parameter.detach().clone()
    for grad in ([0.5, -1.0], [0.2, 0.3]):
        g = torch.tensor(grad)
        parameter.grad = g.clone()
        optimizer.step()
        ms = 0.9 * ms + 0.1 * g * g  # TF starts ms at 1 and puts epsilon (1.0) inside the square root
        mom = 0.9 * mom + 0.1 * g / torch.sqrt(ms + 1.0)
        value = value - mom
    torch.testing.assert_close(parameter.detach(), value)
    torch.testing.assert_close(parameter.detach(), torch.tensor([0.9167705, -1.8873626]))  # TF 2.21's numbers
    assert isinstance(make_optimizer("sgd", [{"params": [parameter]}], 0.1), torch.optim.SGD)
    assert make_optimizer("sgd", [{"params": [parameter]}], 0.1).defaults["momentum"] == 0.9


def test_autocast_dtype_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert precision_module.autocast_dtype("float32", cpu) is None
    assert precision_module.autocast_dtype("bfloat16", cpu) is torch.bfloat16
    # auto asks the engine's CPU check (the same one inference uses), not a copy of it
    monkeypatch.setattr(precision_module, "cpu_has_fast_bfloat16", lambda: False)
    assert precision_module.autocast_dtype("auto", cpu) is None
    monkeypatch.setattr(precision_module, "cpu_has_fast_bfloat16", lambda: True)
    assert precision_module.autocast_dtype("auto", cpu) is torch.bfloat16
    assert precision_module.autocast_dtype("auto", torch.device("meta")) is None
    assert precision_module.autocast_name(torch.bfloat16) == "bfloat16"
    assert precision_module.autocast_name(None) == "float32"


def test_config_defaults_and_validation():
    assert FinetuneConfig().epochs == 30 and FinetuneConfig(mode="full").epochs == 10
    assert FinetuneConfig(mode="last-blocks", blocks=3).blocks == 3
    for bad, match in (
        ({"mode": "head"}, "mode must be one of"),
        ({"mode": "last-blocks"}, "blocks must be between 1 and 49"),
        ({"blocks": 2}, "blocks applies to mode 'last-blocks' only"),
        ({"image_size": 64}, "image_size must be a whole number >= 75"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \(0.0, 1.0\)"),
        ({"batch_norm_momentum": 1.0}, "batch_norm_momentum"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"optimizer": "adam"}, "optimizer must be one of adamw, sgd, rmsprop"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"dtype": "float16"}, "dtype must be one of auto, float32, bfloat16; got 'float16'"),
    ):
        with pytest.raises(OptionError, match=match):
            FinetuneConfig(**bad)
    # The old spellings are still accepted, and stored in irv2's vocabulary.
    assert FinetuneConfig(dtype="bf16").dtype == "bfloat16" and FinetuneConfig(dtype="FP32").dtype == "float32"


def test_global_batch_must_give_every_process_an_image():
    FinetuneConfig(batch_size=2).check_processes(2)
    with pytest.raises(OptionError, match=r"batch_size must be at least the number of processes \(4\).*got 3"):
        FinetuneConfig(batch_size=3).check_processes(4)


def test_api_signature_matches_the_config():
    signature = inspect.signature(irv2.finetune)
    options = {n: p.default for n, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}
    fields = {f.name: f.default for f in dataclasses.fields(FinetuneConfig)}
    assert options == fields
    assert list(signature.parameters)[:2] == ["data", "out"]
    with pytest.raises(TypeError, match="learning_rate"):
        irv2.finetune("d", "o", learning_rate=0.1)


def test_api_maps_deprecated_keywords_with_a_warning(monkeypatch):
    monkeypatch.setattr(session, "run", lambda data, out, config: config)
    with pytest.warns(DeprecationWarning, match=r"precision=\.\.\.\) is deprecated; use dtype="):
        assert irv2.finetune("d", "o", precision="bf16").dtype == "bfloat16"
    with pytest.warns(DeprecationWarning, match="sync_bn=.*ignored"):
        assert irv2.finetune("d", "o", sync_bn=True).dtype == "auto"
    with pytest.warns(DeprecationWarning), pytest.raises(OptionError, match="disagree"):
        irv2.finetune("d", "o", dtype="float32", precision="bf16")


def test_checkpoint_round_trip_without_pickle_code(tmp_path):
    torch.manual_seed(3)
    state = {
        "epoch": 2,
        "trainable": {"w": torch.ones(2)},
        "history": [{"epoch": 1, "val_loss": 0.5}],
        "rng": [rng_state()],
    }
    expected = torch.rand(3)
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind
    loaded = load_checkpoint(tmp_path / "checkpoint.pt")  # weights_only=True inside
    assert loaded["epoch"] == 2 and loaded["history"] == state["history"]
    set_rng_state(loaded["rng"][0])
    torch.testing.assert_close(torch.rand(3), expected)
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(irv2.CheckpointError, match=r"bad\.pt"):
        load_checkpoint(tmp_path / "bad.pt")


def test_confusion_matrix_and_plots(tmp_path):
    matrix = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 0.5, "val_accuracy": 0.4, "lr": 0.1}
        for e in (1, 2)
    ]
    for path in (plot_curves(tmp_path, history), plot_confusion(tmp_path, matrix, ["a", "b", "c"], "t")):
        assert path.read_bytes()[:4] == b"\x89PNG"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_not_quiet():
    terminal = _Terminal()
    progress = Progress(stream=terminal)
    progress.start("epoch 1/2 train", 2)
    progress.update(1, 8, loss=0.5, accuracy=0.75)
    progress.update(1, 8, loss=0.4, accuracy=0.8125)
    progress._bar.refresh()
    drawn = terminal.getvalue()
    progress.end()
    assert "\rirv2: epoch 1/2 train:" in drawn and "2/2" in drawn and "loss 0.4000, acc 81.2%" in drawn
    assert terminal.getvalue().endswith("\r")  # erased when the epoch ends
    for stream, quiet in ((io.StringIO(), False), (_Terminal(), True)):
        progress = Progress(stream=stream, quiet=quiet)
        progress.start("x", 1)
        progress.update(1, 1, loss=1.0)
        progress.note("a note")
        assert stream.getvalue() == ("" if quiet else "irv2: a note\n")
    silent = _Terminal()
    Progress(stream=silent, main=False).note("rank 1 says nothing")
    assert silent.getvalue() == ""


def _head_after_one_epoch(batch_size: int, accumulate: int, count: int = 8) -> tuple[torch.Tensor, int]:
    """The head's weight after one epoch of plain SGD, and the number of optimizer steps taken."""
    torch.manual_seed(0)
    features, labels = torch.randn(count, 6), torch.arange(count) % 3
    net = HeadNet(torch.nn.Linear(6, 3))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    scheduler = warmup_cosine(optimizer, warmup=0, total=100)
    loader = DataLoader(
        IndexedDataset(TensorPairDataset(features, labels), range(count)),
        batch_sampler=GlobalBatches(count, batch_size, seed=0),
    )
    train_epoch(
        net,
        loader,
        optimizer,
        scheduler,
        objective=Objective(0.0, 0.0),
        device=torch.device("cpu"),
        dtype=None,
        accumulate=accumulate,
        dist=Distributed(1, 0, 0, torch.device("cpu")),
        progress=Progress(quiet=True),
        set_training=net.train,
    )
    return net.head.weight.detach().clone(), scheduler.last_epoch  # the schedule steps with the optimizer


def test_gradient_accumulation_equals_a_larger_batch():
    big, big_steps = _head_after_one_epoch(batch_size=4, accumulate=1)
    small, small_steps = _head_after_one_epoch(batch_size=2, accumulate=2)
    assert big_steps == small_steps == 2
    torch.testing.assert_close(small, big)
    # 8 images in batches of 3 with accumulate 2: groups (3, 3) and (2): the last, shorter group still steps.
    _, steps = _head_after_one_epoch(batch_size=3, accumulate=2)
    assert steps == 2
    # A group of unequal batches (4, 4, 2) steps on the mean over its 10 images, as one batch of 10 does
    # (the mean of the three batch means would weigh the last two images double).
    grouped, _ = _head_after_one_epoch(batch_size=4, accumulate=3, count=10)
    whole, _ = _head_after_one_epoch(batch_size=10, accumulate=1, count=10)
    torch.testing.assert_close(grouped, whole)
