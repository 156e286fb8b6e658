"""The names of the graphs' inputs and outputs that irv2 writes and reads (plain data, no torch)."""

LOGITS = "logits"
FEATURES = "features"
# The input of the engines' own graphs: NCHW in [-1, 1] (exports take ``images``, NHWC in [0, 1]).
ENGINE_INPUT = "x"
# The input of every export: TF-Hub's images, NHWC in [0, 1].
EXPORT_INPUT = "images"
# torch 2.13's exporter defaults to opset 20; every operator this network needs exists in 18, which older
# runtimes load too (onnxruntime from 1.14).
OPSET = 18
