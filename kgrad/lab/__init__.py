"""The laboratory: reference models, small offline data sets, experiments.

- `zoo/`: the model registry and one module per family (`zoo.build`, `zoo.list`).
- `data.py`: embedded data sets, no download by default.
- `experiments.py`: train a zoo model with `GradientMonitor` and measure it.
- `demo.py`: the experiments behind `kgrad demo`, `compare` and `train`.
- `progress.py`: the progress callback of those runs.
- `results_markdown.py`: the results table and markdown file.
- `machine.py`: which machine a measurement ran on.
"""
