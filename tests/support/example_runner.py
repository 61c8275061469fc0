"""Runs an example of `examples/` in this process, with or without the monitor.

`tests/test_unchanged.py` runs each example twice and compares what it
trained; `tests/distributed/example_unchanged.py` does the same for the
distributed example in a process with two logical CPUs.

Example:

```python
monitored = run_example("gan", log_dir, monitored=True)
plain = run_example("gan", log_dir, monitored=False)
assert_same_examples(plain, monitored)
```
"""

import importlib.util
import pathlib

import keras
import numpy as np

from kgrad import GradientMonitor

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
IN_PROCESS = [
    "custom_loop",
    "fine_tuning",
    "fit",
    "gan",
    "mixed_precision",
    "zoo_comparison",
]
"""The examples that run in the test process (the distributed one needs its own)."""


def run_example(name, log_dir, monitored):
    """Runs `examples/<name>.py --quick`; returns what it trained.

    Returns `[(weights, history)]` of every model it fits (and, for a custom
    loop, of every zoo model it builds), in order. Without the monitor, the
    `GradientMonitor` callbacks are left out of each `fit` and `record` does
    nothing; the example then reads back the logs of a monitored run in
    `log_dir`, so run the monitored one first.
    """
    keras.backend.clear_session()  # the same layer names in both runs
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    trained = []
    fit = keras.Model.fit

    def recorded_fit(self, *args, **kwargs):
        if not monitored:
            kept = kwargs.get("callbacks") or []
            kwargs["callbacks"] = [
                c for c in kept if not isinstance(c, GradientMonitor)
            ]
        result = fit(self, *args, **kwargs)
        trained.append((self, _history(result)))
        return result

    undo = [(keras.Model, "fit", fit)]
    keras.Model.fit = recorded_fit
    zoo = getattr(module, "zoo", None)
    if zoo is not None:
        build = zoo.build

        def recorded_build(*args, **kwargs):
            model = build(*args, **kwargs)
            trained.append((model, None))
            return model

        undo.append((zoo, "build", build))
        zoo.build = recorded_build
    if not monitored:
        undo.append((GradientMonitor, "record", GradientMonitor.record))
        GradientMonitor.record = lambda *args, **kwargs: None
    try:
        module.main(str(log_dir), quick=True)
    finally:
        for owner, attribute, value in reversed(undo):
            setattr(owner, attribute, value)
    return [([w.copy() for w in m.get_weights()], h) for m, h in trained]


def assert_same_examples(plain, monitored):
    """Asserts the two runs trained the same models to the same weights."""
    assert len(plain) == len(monitored) > 0
    for (plain_weights, plain_history), (weights, history) in zip(
        plain, monitored, strict=True
    ):
        assert plain_history == history
        assert len(plain_weights) == len(weights)
        for a, b in zip(plain_weights, weights, strict=True):
            np.testing.assert_array_equal(a, b)


def _history(fit):
    return {key: [float(v) for v in values] for key, values in fit.history.items()}
