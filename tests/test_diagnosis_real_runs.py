"""The runs of issue 23's table get the right verdict.

The two `kgrad train` runs are the issue's own commands. The zoo `lstm` run
keeps the model and the random data at 200 steps, with every 5th step logged;
the Transformer is a smaller case (see its test). Where main's rule judged a
statistic, the test checks it is in the regime that misled it, so the test
fails on main's rules.
"""

import keras
import numpy as np

from kgrad import GradientMonitor, zoo
from kgrad.analysis import diagnostics, loss_trend, report, temporal_profile
from kgrad.cli import main
from kgrad.lab import data

LENGTH = 50


def _kgrad_train(tmp_path, name, capsys):
    """`kgrad train <name> --data adding --epochs 5`, exactly as in the issue."""
    args = ["train", name, "--data", "adding", "--epochs", "5"]
    assert main([*args, "--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    scalars, run_info = report.load_run(tmp_path / "train" / name)
    ratios = [v for _, v in temporal_profile.ratios(scalars, "rnn_01")]
    old_rule_ratio = float(np.median(ratios[-5:]))  # main's rule: < 1e-3 fires
    return out, scalars, run_info, old_rule_ratio


def _fit_monitored(tmp_path, model, x, y, batch_size, epochs, steps_per_epoch):
    """`(monitor, scalars read back)` of a fit logging every 5th step."""
    monitor = GradientMonitor(
        tmp_path, norms_every=5, histograms_every=None, figure_secs=None, verbose=0
    )
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[monitor],
        verbose=0,
    )
    return monitor, report.load_run(tmp_path)[0]


def test_simple_rnn_stuck_at_the_mean_gets_vanishing_in_time(tmp_path, capsys):
    out, scalars, run_info, old_rule_ratio = _kgrad_train(
        tmp_path, "rnn_simple", capsys
    )
    last_losses = [v for _, v in loss_trend.losses(scalars)[-10:]]
    assert 0.12 < np.median(last_losses) < 0.25  # the mean predictor's 1/6
    assert 1e-3 < old_rule_ratio < 0.1  # main said "healthy"
    found = {f.kind: f for f in diagnostics.diagnose(scalars, run_info)}
    # the outcome (stalled at the mean) names the gradient finding as its cause
    assert set(found) == {"vanishing_in_time", "stalled"}
    assert "vanishing gradients through time" in found["stalled"].evidence
    assert "vanishing gradients through time in rnn_01" in out
    assert "Use LSTM or GRU cells" in out and "The loss has stalled" in out


def test_gru_not_yet_learned_gets_no_through_time_finding(tmp_path, capsys):
    out, scalars, run_info, old_rule_ratio = _kgrad_train(tmp_path, "gru", capsys)
    assert old_rule_ratio < 1e-3  # main said `vanishing_in_time`
    assert run_info["recurrent_cells"] == {"rnn_01": "GRU"}
    assert diagnostics.diagnose(scalars, run_info) == []
    assert "vanishing gradients through time" not in out


def test_lstm_on_random_data_gets_no_gradient_finding(tmp_path):
    # zoo `lstm`, 200 steps on random inputs and labels: nothing to learn
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, LENGTH, 2)).astype("float32")
    y = rng.normal(size=(512, 1)).astype("float32")
    model = zoo.build("lstm")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    monitor, scalars = _fit_monitored(tmp_path, model, x, y, 32, 13, 16)
    ratios = [v for _, v in temporal_profile.ratios(scalars, "rnn_01")]
    windows = [np.median(ratios[k : k + 5]) for k in range(len(ratios) - 4)]
    assert min(windows) < 1e-3  # main's rule fired during the fit
    # nothing to learn: the loss's finding points to the data, no gradient one
    kinds = [f.kind for f in monitor.findings.history]
    assert kinds in ([], ["stalled"], ["not_learning"]), kinds
    for finding in monitor.findings.history:
        assert "the labels may not follow from the inputs" in finding.evidence


def test_transformer_without_layernorm_is_not_yet_learned_not_broken(tmp_path):
    # `kgrad demo`'s transformer_small_nonorm reaches test accuracy 0.60-0.77 at
    # 3 epochs, then 1.00 at 380 steps (docs/DIAGNOSIS.md): slower, not broken,
    # and no gradient statistic separates it from healthy runs. Here a smaller
    # one (width 16, 3 blocks, length 20) gets no finding and learns.
    from kgrad.lab.zoo.transformer import build_transformer

    x, y = data.temporal_order(length=20, n=512, seed=0)
    model = build_transformer(
        blocks=3, d_model=16, heads=2, ff_dim=32, norm="none", input_shape=(20, 6)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor, scalars = _fit_monitored(tmp_path, model, x, y, 16, 6, 32)
    assert loss_trend.improvement(scalars) > 0.8  # it learns
    assert monitor.findings.history == []  # and no finding at any epoch end
