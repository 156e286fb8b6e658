"""The server in the test process, over a stand-in module whose timing the test controls.

Batching, the bounded queue, deadlines and hung-up clients are about time, not about the network: a module
that sleeps a fixed time per forward pass makes those tests deterministic and fast, where the real
network's 0.2 s per image on a shared CPU would not be.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from aiohttp import web

import irv2
from irv2.preprocessing import Preprocessing
from irv2.serve import ServeConfig, create_app
from irv2.serve.server import make_runner


class StubModule:
    """Quacks like ``irv2.Module``; sleeps ``delay`` s per forward pass and records each batch's size.

    Row ``i`` of the logits is ``mean(image_i) * [1, 2, ..., 1001] / 1001``, so a test can tell which
    image a row came from (and catch rows handed to the wrong request).
    """

    num_classes = 1001
    device = torch.device("cpu")
    dtype = torch.float32
    preprocessing = Preprocessing()
    expected_image_size = preprocessing.image_size

    def preprocess(self, image: Any, **options: Any) -> np.ndarray:
        return self.preprocessing(image, **options)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.started = threading.Event()
        self.labels = irv2.labels()
        self.model = SimpleNamespace(classif=torch.nn.Linear(1536, 1001))

    def __call__(self, images: np.ndarray, signature: str | None = None) -> np.ndarray:
        self.started.set()
        time.sleep(self.delay)
        self.batches.append(len(images))
        width = 1536 if signature == irv2.FEATURE_VECTOR else 1001
        return expected_rows(images.reshape(len(images), -1).mean(axis=1), width)


def expected_rows(means: np.ndarray, width: int = 1001) -> np.ndarray:
    """What :class:`StubModule` answers for images with these mean values."""
    return (np.asarray(means, np.float32)[:, None] * np.arange(1, width + 1, dtype=np.float32) / width).astype(
        np.float32
    )


class InProcessServer:
    """``create_app(module, ServeConfig(**options))`` on 127.0.0.1, an ephemeral port, in a thread of its own."""

    def __init__(self, module: Any, **options: Any) -> None:
        self.config = ServeConfig(**options)
        self.app = create_app(module, self.config, warm_up=False)
        self.port: int | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = make_runner(self.app, self.config)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> InProcessServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the in-process server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the in-process server did not stop"
