"""Training zoo models with GradientMonitor and measuring them (`experiments`)."""

import dataclasses
import math

import pytest

from kgrad.analysis import report
from kgrad.lab import experiments
from kgrad.lab.experiments import Experiment, RunConfig


def _tiny(model, **overrides):
    return dataclasses.replace(experiments.quick(RunConfig(model)), **overrides)


def test_quick_shrinks_models_and_data():
    config = experiments.quick(
        RunConfig("lstm", data_kwargs={"length": 50}, model_kwargs={"layers": 2})
    )
    assert config.model_kwargs == {"layers": 2, "units": 8}
    assert config.data_kwargs["length"] == 10 and config.data_kwargs["n_train"] == 64
    assert (config.steps, config.batch_size, config.subsample) == (3, 16, 64)
    assert experiments.quick(RunConfig("resnet18")).model_kwargs == {"width": 4}


def test_train_logs_and_measures(tmp_path, events):
    result = experiments.train(_tiny("mlp_sigmoid"), tmp_path / "run", seed=0)
    assert result.steps == 3 and result.config.data_name == "digits_flat"
    logged = events(tmp_path / "run" / "train")
    assert [step for step, _ in logged["grad_norm/global"]] == [1, 2, 3]

    scalars, run_info = report.load_run(tmp_path / "run")
    first = scalars[f"grad_norm/{run_info['variables'][0]}"][0][1]
    last_kernel = [p for p in run_info["variables"] if p.endswith("kernel")][-1]
    last = scalars[f"grad_norm/{last_kernel}"][0][1]
    # The first layer's kernel is the input side; the output layer's the output
    # side (its bias is part of the same layer).
    assert run_info["variables"][0].endswith("dense_01/kernel")
    assert result.first_ratio < first / last * 1.0001
    assert 0 < result.first_ratio < 0.1  # four sigmoid layers already shrink it
    assert math.isfinite(result.loss) and 0 <= result.val_accuracy <= 1


def test_same_seed_same_numbers(tmp_path):
    config = _tiny("cnn_bn")
    a = experiments.train(config, tmp_path / "a", seed=3)
    b = experiments.train(config, tmp_path / "b", seed=3)
    assert a.loss == b.loss and a.first_ratio == b.first_ratio


def test_steps_are_exact_across_epochs(tmp_path):
    # 32 examples in batches of 16: 2 steps per epoch, so 5 steps need 3 epochs.
    config = _tiny("gru", subsample=32, steps=5)
    assert experiments.train(config, tmp_path / "run").steps == 5


def test_target_accuracy_and_divergence(tmp_path):
    reached = experiments.train(_tiny("cnn_plain", target=0.0), tmp_path / "t")
    assert reached.steps_to_target == 1
    missed = experiments.train(_tiny("cnn_plain", target=1.0), tmp_path / "m")
    assert missed.steps_to_target is None

    exploding = _tiny("rnn_exploding", optimizer="sgd", learning_rate=10.0, steps=20)
    result = experiments.train(exploding, tmp_path / "x")
    assert result.diverged_at is not None and result.steps == result.diverged_at
    assert "nonfinite" in {f.kind for f in result.findings} or "exploding" in {
        f.kind for f in result.findings
    }


def test_run_experiment_layout(tmp_path):
    found = Experiment(
        "pair", "A pair", "", (_tiny("mlp_relu_he"), _tiny("mlp_relu_he", name="b"))
    )
    results = experiments.run_experiment(found, tmp_path, seed=0)
    assert [r.log_dir for r in results] == [
        str(tmp_path / "pair" / "mlp_relu_he"),
        str(tmp_path / "pair" / "b"),
    ]
    assert {r.experiment for r in results} == {"pair"}


@pytest.mark.parametrize(
    "config, message",
    [
        (RunConfig("mlp_sigmod"), "Did you mean: mlp_sigmoid"),
        (RunConfig("lstm", data="addding"), "Did you mean: adding"),
        (RunConfig("lstm", optimizer="rmsprop"), "`optimizer` must be one of"),
        (RunConfig("lstm", epochs=0), "`epochs` must be a positive integer"),
    ],
)
def test_validate_rejects_bad_configs(config, message):
    with pytest.raises(ValueError, match=message):
        experiments.validate(config)


@pytest.mark.parametrize(
    "config, message",
    [
        (RunConfig("lstm", batch_size=2.5), "`batch_size` must be a positive"),
        (RunConfig("lstm", epochs=True), "`epochs` must be a positive"),
        (RunConfig("lstm", learning_rate="0.1"), "`learning_rate` must be"),
        (RunConfig("lstm", clipnorm=True), "`clipnorm` must be"),
    ],
)
def test_validate_rejects_wrong_types(config, message):
    with pytest.raises(TypeError, match=message):
        experiments.validate(config)


def test_describe():
    config = RunConfig("rnn_exploding", optimizer="sgd", learning_rate=0.01, clipnorm=1)
    assert config.describe() == "sgd(0.01, clipnorm=1), batch 32, 5 epochs"
    assert RunConfig("lstm", steps=7).describe().endswith("7 steps")
