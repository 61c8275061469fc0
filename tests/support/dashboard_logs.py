"""Event files for the Gradients tab's tests, from real fits.

`fit_runs` trains two tiny models with `GradientMonitor`: a ReLU MLP whose
first layer mostly dies, so a finding is written, and a SimpleRNN, so
`temporal_grad` is written. (`dashboard_session.py` beside it writes long
synthetic runs.)
"""

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


def findings_data(diagnoses):
    """The `tags.FINDINGS_DATA` texts the monitor writes for `diagnoses`.

    Args:
        diagnoses: `[(step, [Finding])]`, the findings of each diagnosis.

    Returns:
        `[(step, tag, text)]` for `write_run`'s `texts`.
    """
    from kgrad import findings_record, tags

    timeline, texts = findings_record.Timeline(), []
    for step, found in diagnoses:
        timeline.update(found, step)
        texts.append(
            (step, tags.FINDINGS_DATA, findings_record.dumps(timeline.records, step))
        )
    return texts


def write_run(run_dir, scalars, info, texts=()):
    """Writes a kgrad-style run: `scalars` `{tag: {step: value}}`, `texts`
    `[(step, tag, markdown)]`, and `info` as `kgrad/run_info` at step 0.

    For cases a fit does not give on demand (an exact 0, a logged NaN, a
    run written while the page is open).
    """
    import json

    from kgrad import tags
    from kgrad.monitor.log import summaries
    from kgrad.monitor.log.event_writer import RunWriter

    writer = RunWriter(str(run_dir))
    writer.write(0, [summaries.text_value(tags.RUN_INFO, json.dumps(info))])
    steps = sorted({s for points in scalars.values() for s in points})
    for step in steps:
        values = [
            summaries.text_value(tag, text) for s, tag, text in texts if s == step
        ]
        items = [(tag, v[step]) for tag, v in scalars.items() if step in v]
        writer.write(step, values, items)
    writer.close()
