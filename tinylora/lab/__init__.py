"""The width-scaling lab: synthetic experiments that measure LoRA+'s width law.

The analytic toy (`analytic_toy`, paper Eq. 2), the numerical toy as a batched learning-rate grid
(`finetune_toy`, `finetune_toy_model`, `grid`, `landscape`), what the width law predicts
(`predictions`), the balanced rates (`deltas`, `roots`, `balance`, `flatness`), the loss-optimal
width sweep (`sweep`, `optimum`, `sweep_analysis`), the coordinate check (`coordcheck`), their
commands (`*_report`, `figure2`, `demo`) and figures (`plots`, `plots_width`).
Built on the library in `tinylora/`; the library never imports this package.
"""
