"""Helpers shared by the fine-tuning tests (a module with its own name: several folders have a conftest)."""

from __future__ import annotations

import os

import numpy as np
import torch
from shapes import CLASSES, draw

import irv2
from irv2.api.module import Module, ModuleInfo
from irv2.model import InceptionResNetV2
from irv2.preprocessing import preprocess_for_eval

# Linear mode's image size in these tests: small enough for a 2-core CPU, large enough for the patterns.
IMAGE_SIZE = 128


def random_module(seed: int = 0) -> Module:
    """A random 1001-class network with BatchNorm statistics calibrated on eight drawn images."""
    torch.manual_seed(seed)
    model = InceptionResNetV2()
    rng = np.random.default_rng(seed + 100)
    images = np.stack([preprocess_for_eval(draw(kind, rng), IMAGE_SIZE) for kind in CLASSES for _ in range(2)])
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the one calibration batch
    model.train()
    with torch.no_grad():
        model.forward_features(torch.from_numpy(2.0 * images - 1.0).permute(0, 3, 1, 2))
    return Module(model.eval(), ModuleInfo(1001, irv2.labels()))


def cpu_env(threads: int | None = None) -> dict[str, str]:
    """The environment for a subprocess, optionally with fewer threads (several processes share 2 cores)."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env
