"""The speed benchmark: a LoRA training step against its matrix-product floor and PyTorch.

`workloads` (what is timed), `run` (the `tinylora bench` command) and `torch_mirror` (the same
steps in PyTorch eager, when it is installed). The library never imports this package.
"""
