"""The width-scaling lab: synthetic experiments that measure LoRA+'s width law.

The analytic toy (`toy`, paper Eq. 2), the numerical toy as a batched learning-rate grid
(`toy_problem`, `grid`, `landscape`), the width sweep (`sweep`), the coordinate check
(`coordcheck`), their commands (`*_report`, `toy_heatmap`, `demo`) and figures (`plots`).
Built on the library in `tinylora/`; the library never imports this package.
"""
