"""The 20-line script irv2 classify is measured against: onnxruntime, numpy and Pillow, one ONNX file of the
same network (irv2's cached engine graph: NCHW in [-1, 1]), a central crop and a resize, the top class."""

import sys

import numpy as np
import onnxruntime
from PIL import Image

model, photo = sys.argv[1], sys.argv[2]
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
image = Image.open(photo).convert("RGB")
width, height = image.size
side_w, side_h = int(width * 0.875), int(height * 0.875)
left, top = (width - side_w) // 2, (height - side_h) // 2
image = image.crop((left, top, left + side_w, top + side_h)).resize((299, 299), Image.BILINEAR)
x = np.asarray(image, np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
logits = session.run(["logits"], {"x": x})[0][0]
probs = np.exp(logits - logits.max())
probs /= probs.sum()
best = int(probs.argmax())
print(f"{photo}\n  {probs[best]:.4f}  class {best}")
