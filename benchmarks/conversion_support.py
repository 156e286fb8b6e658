"""What the conversion benchmarks (onnx_conversion.py, openvino_conversion.py) share: the command line that runs
each way in a child process, and the network with its float32 reference outputs."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

SIZE = (299, 299)


def run(doc: str, ways: tuple[str, ...], measure: Callable[..., dict], child: Callable[..., None]) -> None:
    """Parse the command line; as the parent, ``measure(ways, repeat)`` and print (and save) its JSON; as the
    child (``--convert WAY``), ``child(way, weights, to, repeat)``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ways", default=",".join(ways), help="comma-separated, of: " + ", ".join(ways))
    parser.add_argument("--repeat", type=int, default=1, help="conversions per process (the first is cold)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--convert", choices=ways, help=argparse.SUPPRESS)  # the child process's side
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert:
        child(args.convert, args.weights, args.to, args.repeat)
        return
    chosen = args.ways.split(",")
    unknown = set(chosen) - set(ways)
    if unknown:
        parser.error(f"unknown ways {sorted(unknown)}; choose from {', '.join(ways)}")
    text = json.dumps(measure(chosen, args.repeat), indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def network_and_reference(prefix: str) -> tuple[Path, Path, object, object, dict]:
    """A scratch folder, the seeded random network's weights saved there for the child processes, the bundled
    photo pair (NHWC in [0, 1], and NCHW in [-1, 1]), and the plain network's float32 ``logits`` and
    ``features`` on it."""
    import numpy as np
    import torch

    from irv2.bench.synthetic import calibrated_random_module
    from irv2.data import sample_photos

    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    model = calibrated_random_module(seed=0).model
    weights = scratch / "weights.pt"
    torch.save(model.state_dict(), weights)
    images = sample_photos(SIZE)
    x = np.ascontiguousarray(2.0 * images.transpose(0, 3, 1, 2) - 1.0, dtype=np.float32)
    with torch.inference_mode():
        feature_map = model.forward_features(torch.from_numpy(x))
        reference = {"logits": model.forward_head(feature_map).numpy()}
        reference["features"] = model.forward_head(feature_map, pre_logits=True).numpy()
    return scratch, weights, images, x, reference


def load_network(weights: Path):
    """The network the parent saved (in a child process), in eval mode."""
    import torch

    from irv2.model import InceptionResNetV2

    model = InceptionResNetV2(num_classes=1001)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()
