"""Event files for the Gradients tab's tests: real fits, and a long synthetic run.

`fit_runs` trains two tiny models with `GradientMonitor` (a ReLU MLP whose
first layer dies, so a finding is written, and a SimpleRNN, so
`temporal_grad` is written); `write_synthetic_run` writes a run of any size
with kgrad's own writer and tag scheme, in seconds (benchmarks use it too).
"""

import json

import keras
import numpy as np

MLP_STEPS = 12  # 3 epochs x 4 batches, every batch logged


def fit_runs(logdir):
    """Trains the two models into `logdir/mlp` and `logdir/rnn`.

    Returns:
        `{run name: model}` (run names as TensorBoard lists them).
    """
    from kgrad import GradientMonitor

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    dead = keras.initializers.Constant(-1.5)  # most first-layer ReLUs die
    mlp = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, "relu", bias_initializer=dead, name="hidden_1"),
            keras.layers.Dense(8, "relu", name="hidden_2"),
            keras.layers.Dense(3, name="logits"),
        ],
        name="mlp",
    )
    rnn = keras.Sequential(
        [
            keras.Input((5, 2)),
            keras.layers.SimpleRNN(4, name="recurrent"),
            keras.layers.Dense(1, name="out"),
        ],
        name="rnn",
    )
    models = {"mlp": mlp, "rnn": rnn}
    data = {
        "mlp": (rng.normal(size=(32, 6)), rng.integers(0, 3, size=32)),
        "rnn": (rng.normal(size=(32, 5, 2)), rng.normal(size=(32, 1))),
    }
    losses = {"mlp": "sparse_categorical_crossentropy", "rnn": "mse"}
    for name, model in models.items():
        model.compile(optimizer="sgd", loss=losses[name])
        monitor = GradientMonitor(
            f"{logdir}/{name}", norms_every="batch", histograms_every=4, verbose=0
        )
        x, y = data[name]
        model.fit(x, y, batch_size=8, epochs=3, callbacks=[monitor], verbose=0)
    return {f"{name}/train": model for name, model in models.items()}


def write_synthetic_run(run_dir, variables, steps, findings_every=0):
    """Writes `steps` logged steps of `variables` gradient norms, kgrad-style.

    The norm of variable `i` at step `s` is `10 ** (-i / variables) * s`, so a
    test can check every value; `kgrad/run_info` lists the variables.

    Args:
        run_dir: The run directory (`log_dir/train`).
        variables: How many variables (`layer_<i>/kernel`).
        steps: How many logged steps (1 to `steps`).
        findings_every: Write a findings text every this many steps (`0`:
            never). Defaults to `0`.

    Returns:
        The variable paths, input first.
    """
    from kgrad.monitor import summaries
    from kgrad.monitor.event_writer import RunWriter

    paths = [f"layer_{i:03d}/kernel" for i in range(variables)]
    writer = RunWriter(str(run_dir))
    info = {"model": "synthetic", "variables": paths, "layers": [], "batch_size": 8}
    writer.write(0, [summaries.text_value("kgrad/run_info", json.dumps(info))])
    scale = 10.0 ** (-np.arange(variables) / variables)
    for step in range(1, steps + 1):
        scalars = [
            (f"grad_norm/{p}", float(v * step))
            for p, v in zip(paths, scale, strict=True)
        ]
        values = []
        if findings_every and step % findings_every == 0:
            text = f"- Warning: vanishing gradients in layer_000. Step {step}. Fix it."
            values.append(summaries.text_value("kgrad/findings", text))
        writer.write(step, values, scalars)
    writer.close()
    return paths


def synthetic_value(variables, index, step):
    """The norm `write_synthetic_run` writes for variable `index` at `step`."""
    return 10.0 ** (-index / variables) * step
