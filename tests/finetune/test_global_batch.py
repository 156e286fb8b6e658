"""The parts that make N processes train what one process trains (fast): global batches and each
process's share of them, dropout seeded per image, BatchNorm over the global batch."""

from __future__ import annotations

from itertools import chain

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from irv2.finetune.batches import GlobalBatches, ShareCollate, share
from irv2.finetune.batchnorm import GlobalBatchNorm2d, global_batchnorm
from irv2.finetune.datasets import IndexedDataset, TensorPairDataset
from irv2.finetune.dropout import SampleDropout, sample_noise


def _steps(count, batch_size, world_size, *, epoch=0, drop_single=False):
    """Each step's shares, in rank order, of ``world_size`` processes."""
    samplers = [
        GlobalBatches(count, batch_size, seed=7, world_size=world_size, rank=r, drop_single=drop_single)
        for r in range(world_size)
    ]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(step) for step in zip(*samplers, strict=True)]


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_processes_share_the_global_batches_of_one_process(world_size):
    one = [shares[0] for shares in _steps(10, 4, 1)]
    assert [len(b) for b in one] == [4, 4, 2] and sorted(chain(*one)) == list(range(10))
    several = _steps(10, 4, world_size)
    assert [list(chain(*shares)) for shares in several] == one  # the same images, in the same order
    for shares in several:
        sizes = [len(s) for s in shares]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)  # the first take the extra
    if world_size > 2:
        assert [len(s) for s in several[-1]][-1] == 0  # a short last batch leaves a process with none
    assert share(10, 4, 0) == (0, 3) and share(10, 4, 3) == (8, 10)  # 3, 3, 2, 2


def test_order_is_seeded_per_epoch_and_a_single_last_image_can_be_left_out():
    first, again, second = _steps(9, 4, 1, epoch=0), _steps(9, 4, 1, epoch=0), _steps(9, 4, 1, epoch=1)
    assert first == again and first != second
    assert [len(s[0]) for s in first] == [4, 4, 1]
    assert [len(s[0]) for s in _steps(9, 4, 1, drop_single=True)] == [4, 4]
    assert [len(s[0]) + len(s[1]) for s in _steps(9, 4, 2, drop_single=True)] == [4, 4]  # the same rule
    assert len(GlobalBatches(9, 4, seed=0, drop_single=True)) == 2
    with pytest.raises(ValueError, match="cannot be shared by 3 processes"):
        GlobalBatches(9, 2, seed=0, world_size=3, rank=0)


def test_an_empty_share_collates_to_an_empty_batch():
    dataset = IndexedDataset(TensorPairDataset(torch.ones(3, 5), torch.tensor([0, 1, 2])), range(3))
    features, labels, samples = ShareCollate(dataset)([])
    assert features.shape == (0, 5) and labels.shape == samples.shape == (0,)
    features, labels, samples = ShareCollate(dataset)([dataset[2], dataset[0]])
    assert features.shape == (2, 5) and samples.tolist() == [2, 0]


def test_dropout_mask_belongs_to_the_image_and_the_epoch():
    layer = SampleDropout(0.25, seed=3).train()
    x = torch.ones(3, 1000)
    with sample_noise(layer, torch.tensor([4, 9, 2])):
        together = layer(x)
    with sample_noise(layer, torch.tensor([9])):
        alone = layer(x[:1])
    torch.testing.assert_close(alone[0], together[1])  # image 9, wherever it sits and whoever holds it
    assert not torch.equal(together[0], together[1])
    assert torch.equal(together.unique(), torch.tensor([0.0, 1.0 / 0.75]))  # kept values scaled as nn.Dropout does
    assert 0.7 < (together > 0).float().mean() < 0.8
    layer.set_epoch(1)
    with sample_noise(layer, torch.tensor([9])):
        assert not torch.equal(layer(x[:1]), alone)  # a new epoch, new noise
    assert layer.samples is None  # only inside the block
    assert torch.equal(layer.eval()(x), x)
    layer.train()
    with sample_noise(layer, torch.tensor([1, 2])), pytest.raises(ValueError, match="2 image indices for a batch of 3"):
        layer(x)


def _batchnorm(cls=nn.BatchNorm2d) -> nn.BatchNorm2d:
    torch.manual_seed(0)
    layer = cls(4, eps=1e-3, momentum=0.1)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-1, 1)
        layer.running_mean.fill_(2.5)
    return layer


def _batches():
    """Two training steps' inputs [N, 4, 3, 3] (mean far from zero) and upstream gradients."""
    generator = torch.Generator().manual_seed(1)
    return [
        (3.0 + torch.randn(n, 4, 3, 3, generator=generator), torch.randn(n, 4, 3, 3, generator=generator))
        for n in (5, 4)
    ]


# Each step's split over two processes: uneven (3 and 2), then everything on one process (4 and 0).
SPLITS = ((3, 2), (4, 0))


def _reference():
    """nn.BatchNorm2d on the whole batches: outputs, input and parameter gradients, then running statistics."""
    layer = _batchnorm()
    steps = []
    for x, upstream in _batches():
        x = x.clone().requires_grad_(True)
        y = layer(x)
        (y * upstream).sum().backward()
        steps.append((y.detach(), x.grad, layer.weight.grad.clone(), layer.bias.grad.clone()))
        layer.weight.grad = layer.bias.grad = None
    return steps, layer.state_dict()


def test_global_batchnorm_alone_is_batchnorm2d():
    ours, theirs = _batchnorm(GlobalBatchNorm2d), _batchnorm()
    for x, upstream in _batches():
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = ours(a), theirs(b)
        (ya * upstream).sum().backward()
        (yb * upstream).sum().backward()
        assert torch.equal(ya, yb) and torch.equal(a.grad, b.grad) and torch.equal(ours.bias.grad, theirs.bias.grad)
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key

    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(nn.BatchNorm2d(4)))
    net[1][0].weight.requires_grad_(False)
    weight = net[1][0].weight
    global_batchnorm(net, torch.device("cpu"))
    assert type(net[1][0]) is GlobalBatchNorm2d and net[1][0].weight is weight and not weight.requires_grad


def _two_process_worker(rank: int, world_size: int, rendezvous: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    layer = _batchnorm(GlobalBatchNorm2d)
    steps = []
    for (x, upstream), split in zip(_batches(), SPLITS, strict=True):
        start = sum(split[:rank])
        part = x[start : start + split[rank]].clone().requires_grad_(True)
        y = layer(part)
        (y * upstream[start : start + split[rank]]).sum().backward()
        steps.append((y.detach(), part.grad, layer.weight.grad.clone(), layer.bias.grad.clone()))
        layer.weight.grad = layer.bias.grad = None
    torch.save({"steps": steps, "state": layer.state_dict()}, f"{results}/{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_global_batchnorm_over_two_processes_is_batchnorm2d_on_the_whole_batch(tmp_path):
    mp.spawn(_two_process_worker, args=(2, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2)
    expected_steps, expected_state = _reference()
    ranks = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]
    # Float32 rounding only: the sums run in another order (and around the running mean) than
    # BatchNorm2d's kernel; measured: outputs 1e-7, gradients 2e-7 of their largest value (values of 0.1-10).
    tolerance = {"rtol": 1e-5, "atol": 1e-5}
    for step, (y, x_grad, weight_grad, bias_grad) in enumerate(expected_steps):
        bounds = np.cumsum([0, *SPLITS[step]])
        for rank, result in enumerate(ranks):
            part_y, part_grad, _, _ = result["steps"][step]
            torch.testing.assert_close(part_y, y[bounds[rank] : bounds[rank + 1]], **tolerance)
            torch.testing.assert_close(part_grad, x_grad[bounds[rank] : bounds[rank + 1]], **tolerance)
        # Each process holds the gradient of its own images' losses; DDP adds them up (and averages).
        torch.testing.assert_close(sum(r["steps"][step][2] for r in ranks), weight_grad, **tolerance)
        torch.testing.assert_close(sum(r["steps"][step][3] for r in ranks), bias_grad, **tolerance)
    for result in ranks:
        assert result["state"]["num_batches_tracked"] == expected_state["num_batches_tracked"] == 2
        for key in ("running_mean", "running_var"):  # unbiased variance, momentum 0.1, as BatchNorm2d
            torch.testing.assert_close(result["state"][key], expected_state[key], rtol=1e-6, atol=1e-6)
