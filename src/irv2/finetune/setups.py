"""Each mode's training setup: what trains, on which data loaders, with which optimizer and schedule.

Both builders return a :class:`Setup`, which the epoch loop in ``session.py`` drives without knowing
the mode: ``linear`` trains a head on cached features, ``full`` and ``last-blocks`` train the network on
augmented images.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from ..api.load import set_train_mode
from ..model import InceptionResNetV2
from .batches import GlobalBatches, ShareCollate, per_process
from .batchnorm import global_batchnorm
from .config import FinetuneConfig
from .data import DataSplit
from .datasets import ImageDataset, IndexedDataset, TensorPairDataset
from .distributed import Distributed
from .dropout import SampleDropout
from .freeze import parameter_groups, plan_training
from .heads import aux_head_fits, linear_head, replace_heads
from .linear import cached_features, extract_features, features_cache_key, save_features
from .loop import HeadNet, Objective, TrainNet
from .optim import make_optimizer, warmup_cosine, warmup_steps
from .progress import Progress


@dataclass
class Setup:
    """What the epoch loop needs, whatever the mode."""

    net: nn.Module  # called by train_epoch; wrapped in DDP under torchrun
    eval_net: nn.Module  # the same, unwrapped: validation shards may differ in size, DDP's forward must not run
    trainable: nn.Module  # whose state dict the checkpoint keeps
    train_loader: DataLoader
    val_loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    objective: Objective
    set_training: Callable[[bool], None]
    export: Callable[[], InceptionResNetV2]  # the network with the new head(s), for irv2.save
    aux: bool = False
    epoch_hooks: list[Any] = field(default_factory=list)  # objects with set_epoch(epoch)
    info: dict[str, Any] = field(default_factory=dict)

    def start_epoch(self, epoch: int) -> None:
        for hook in self.epoch_hooks:
            hook.set_epoch(epoch)

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the trainable weights, the optimizer and the schedule from a checkpoint."""
        self.trainable.load_state_dict(state["trainable"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def linear_setup(
    model: InceptionResNetV2,
    split: DataSplit,
    config: FinetuneConfig,
    *,
    out: Path,
    dist: Distributed,
    dtype: torch.dtype | None,
    progress: Progress,
) -> Setup:
    """Features from the frozen backbone (cached), then a DDP-ready head over them."""
    device = dist.device
    samples = split.train + split.val
    batch_size = per_process(config.batch_size, dist.world_size)
    key = features_cache_key(model, samples, config.image_size, dtype)
    features = cached_features(out, key, len(samples))
    # Every process must either have the cache or take part in extracting (a collective).
    if all(dist.gather(features is not None)):
        progress.note(f"using cached features ({out / 'cache'})")
    else:
        model.to(device)
        features = extract_features(
            model,
            samples,
            image_size=config.image_size,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            dist=dist,
            workers=config.workers,
            progress=progress,
        )
        model.to("cpu")
        if dist.is_main:
            save_features(out, key, features)
    n_train = len(split.train)
    train_labels = torch.tensor([s.label for s in split.train])
    val_labels = torch.tensor([s.label for s in split.val])
    torch.manual_seed(config.seed)  # the same initial head in every process and every rerun
    head = linear_head(len(split.classes), config.dropout_rate, config.seed).to(device)
    net = HeadNet(head)
    batches = GlobalBatches(n_train, config.batch_size, seed=config.seed, world_size=dist.world_size, rank=dist.rank)
    train_loader = _train_loader(TensorPairDataset(features[:n_train], train_labels), batches, 0, device)
    val_set = IndexedDataset(TensorPairDataset(features[n_train:], val_labels), dist.shard(len(split.val)))
    val_loader = DataLoader(val_set, batch_size=batch_size)
    groups = parameter_groups(
        head, lr=config.lr, backbone_lr_factor=1.0, weight_decay=config.weight_decay, is_head=lambda _: True
    )
    optimizer, scheduler = _optimizer_and_schedule(groups, config, len(train_loader))

    def export() -> InceptionResNetV2:
        model.classif = copy.deepcopy(head[1]).to("cpu")
        model.num_classes = len(split.classes)
        model.aux_logits = None
        return model

    return Setup(
        net=_ddp(net, dist),
        eval_net=net,
        trainable=head,
        train_loader=train_loader,
        val_loader=val_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        objective=Objective(config.label_smoothing, 0.0),
        set_training=net.train,
        export=export,
        epoch_hooks=[batches, head[0]],
        info={"features_cache": key},
    )


def network_setup(model: InceptionResNetV2, split: DataSplit, config: FinetuneConfig, *, dist: Distributed) -> Setup:
    """``full`` or ``last-blocks``: new heads, TF-Hub's train graph, the frozen units frozen, DDP.

    Under torchrun, BatchNorm normalises over the global batch (``batchnorm.py``) and dropout draws per
    image (``dropout.py``), so N processes train the network one process trains.
    """
    device = dist.device
    aux = config.mode == "full" and config.aux_loss_weight > 0 and aux_head_fits(config.image_size)
    torch.manual_seed(config.seed)  # the same new heads in every process and every rerun
    replace_heads(model, len(split.classes), aux=aux)
    set_train_mode(model, batch_norm_momentum=config.batch_norm_momentum, dropout_rate=config.dropout_rate)
    plan = plan_training(model, config.mode, config.blocks)
    if dist.enabled:
        model = global_batchnorm(model, device)
    model.head_drop = SampleDropout(config.dropout_rate, config.seed)
    model.to(device)
    net = TrainNet(model, aux=aux)

    train_set = ImageDataset(
        split.train, config.image_size, train=True, seed=config.seed, color_jitter=config.color_jitter
    )
    batches = GlobalBatches(
        len(train_set),
        config.batch_size,
        seed=config.seed,
        world_size=dist.world_size,
        rank=dist.rank,
        drop_single=True,
    )
    train_loader = _train_loader(train_set, batches, config.workers, device)
    val_set = IndexedDataset(ImageDataset(split.val, config.image_size, train=False), dist.shard(len(split.val)))
    val_loader = DataLoader(
        val_set, batch_size=per_process(config.batch_size, dist.world_size), num_workers=config.workers
    )
    groups = parameter_groups(
        model, lr=config.lr, backbone_lr_factor=config.backbone_lr_factor, weight_decay=config.weight_decay
    )
    optimizer, scheduler = _optimizer_and_schedule(groups, config, len(train_loader))
    return Setup(
        net=_ddp(net, dist),
        eval_net=net,
        trainable=model,
        train_loader=train_loader,
        val_loader=val_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        objective=Objective(config.label_smoothing, config.aux_loss_weight if aux else 0.0),
        set_training=lambda training: plan.set_training(model, training),
        export=lambda: model,
        aux=aux,
        epoch_hooks=[batches, train_set, model.head_drop],
        info={"trained_units": plan.trained_units},
    )


def _train_loader(dataset: Dataset, batches: GlobalBatches, workers: int, device: torch.device) -> DataLoader:
    """``(inputs, labels, samples)``: this process's share of each global batch, with the images' indices."""
    indexed = IndexedDataset(dataset, range(len(dataset)))
    return DataLoader(
        indexed,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=ShareCollate(indexed),
        pin_memory=device.type == "cuda",
    )


def _optimizer_and_schedule(groups, config: FinetuneConfig, batches_per_epoch: int):
    optimizer = make_optimizer(config.optimizer, groups, config.lr)
    steps_per_epoch = math.ceil(batches_per_epoch / config.accumulate)
    total = steps_per_epoch * config.epochs
    scheduler = warmup_cosine(optimizer, warmup=warmup_steps(config.warmup_epochs, steps_per_epoch, total), total=total)
    return optimizer, scheduler


def _ddp(net: nn.Module, dist: Distributed) -> nn.Module:
    if not dist.enabled:
        return net
    device_ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids)
