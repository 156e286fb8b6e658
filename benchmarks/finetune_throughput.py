"""Full fine-tuning throughput: images/s of forward + backward + optimizer step, fp32 vs bf16 autocast.

What ``irv2 finetune --mode full`` does per step, without data loading: TF-Hub's train graph
(BatchNorm on batch statistics, dropout), the new 10-class head and AuxLogits (299 px), AdamW with the
backbone at a tenth of the head's learning rate, label-smoothed loss with the 0.4 auxiliary term.
Random weights and images: speed does not depend on the values.

    python benchmarks/finetune_throughput.py                 # CPU, 299 px, batch 16, 2 + 5 steps
    python benchmarks/finetune_throughput.py --device cuda --steps 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from irv2.engine.precision import cpu_has_fast_bfloat16
from irv2.finetune import set_train_mode
from irv2.finetune.freeze import parameter_groups, plan_training
from irv2.finetune.heads import aux_head_fits, replace_heads
from irv2.finetune.loop import Objective, TrainNet
from irv2.finetune.optim import make_optimizer
from irv2.finetune.precision import autocast
from irv2.model import InceptionResNetV2


def measure(dtype_name: str, *, device: torch.device, batch: int, size: int, warmup: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = InceptionResNetV2()
    aux = aux_head_fits(size)
    replace_heads(model, 10, aux=aux)
    set_train_mode(model)
    plan = plan_training(model, "full")
    model.to(device)
    net = TrainNet(model, aux=aux)
    optimizer = make_optimizer(
        "adamw", parameter_groups(model, lr=1e-3, backbone_lr_factor=0.1, weight_decay=1e-4), lr=1e-3
    )
    objective = Objective(0.1, 0.4 if aux else 0.0)
    dtype = torch.bfloat16 if dtype_name == "bfloat16" else None
    images = torch.rand(batch, 3, size, size, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    plan.set_training(model, True)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast(device, dtype):
            logits, aux_logits = net(images)
        loss = objective(logits, aux_logits, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    return {"dtype": dtype_name, "median_step_s": seconds, "images_per_s": batch / seconds, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=299)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_flush_denormal(True)
    rows = [
        measure(p, device=device, batch=args.batch_size, size=args.image_size, warmup=args.warmup, steps=args.steps)
        for p in args.dtypes.split(",")
    ]
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_native_bf16": cpu_has_fast_bfloat16(),
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "results": rows,
    }
    print(f"batch {args.batch_size}, {args.image_size} px, {device}, {torch.get_num_threads()} threads")
    print(f"{'dtype':<10} {'step (s)':>9} {'images/s':>9}")
    for row in rows:
        print(f"{row['dtype']:<10} {row['median_step_s']:>9.2f} {row['images_per_s']:>9.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)
            handle.write("\n")


if __name__ == "__main__":
    main()
