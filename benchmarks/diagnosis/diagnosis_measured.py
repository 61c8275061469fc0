"""The sections of docs/DIAGNOSIS.md with the measured numbers behind the
verdicts the rules cannot make: the depth profile of runs that learn, and
gated cells that wait (`diagnosis_table.markdown` calls `sections`).

Example:

    lines = sections(rows, (50, 300, 1000))
"""

import math

import numpy as np

from kgrad import tags
from kgrad.analysis import layer_profile, temporal_profile

DEPTH_RUNS = (
    "transformer_pre_ln",
    "transformer_post_ln_deep",
    "transformer_no_norm",
    "transformer_no_norm_deep",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "tanh_glorot",
)
GATED_RUNS = ("lstm_T100", "gru_T100", "simple_rnn_T50", "simple_rnn_T100")


def _loss_span(scalars):
    losses = [v for _, v in scalars.get(tags.LOSS, [])]
    if not losses:
        return "-"
    return f"{losses[0]:.3g} -> {losses[-1]:.3g}"


def _median_at(values, length, last=5):
    """Median of the last `last` finite values logged at steps `<= length`."""
    picked = [v for s, v in values if s <= length][-last:]
    picked = [v for v in picked if math.isfinite(v)]
    return float(np.median(picked)) if picked else math.nan


def _input_over_output(row, length):
    """Median over the last 5 logged steps `<= length` of input/output norm."""
    steps = [s for s in layer_profile.norm_steps(row.scalars) if s <= length][-5:]
    values = []
    for step in steps:
        profile = layer_profile.layer_profile(row.scalars, row.run_info, step)
        values += [(step, r.ratio) for r in profile if r.side == "input"]
    return _median_at(values, length)


def _first_over_last(row, length):
    """Median over the last 5 logged steps `<= length` of the first recurrent
    layer's first/last timestep gradient ratio."""
    layers = temporal_profile.recurrent_layers(row.scalars, row.run_info)
    series = temporal_profile.ratios(row.scalars, layers[0]) if layers else []
    return _median_at(series, length)


def _per_length(by_name, names, lengths, last, value, fmt):
    """A table: one row per run of `names` that was judged, `value(row,
    length)` per length in `fmt`, and the loss's first and last values."""
    out = [
        "| run | " + " | ".join(f"{n} steps" for n in lengths) + f" | {last} |",
        "|---|" + "---|" * (len(lengths) + 1),
    ]
    for name in names:
        row = by_name.get(name)
        if row is not None:
            cells = [fmt.format(value(row, n)) for n in lengths]
            out.append(
                f"| `{name}` | " + " | ".join(cells) + f" | {_loss_span(row.scalars)} |"
            )
    return out


def sections(rows, lengths):
    """The measured numbers behind the verdicts the rules cannot make."""
    by_name = {row.run.name: row for row in rows}
    out = [
        "",
        "## Missing verdicts: no gradient statistic flags the no-norm Transformer",
        "",
        "Issue 23 found `transformer_small_nonorm` (`kgrad demo`, 3 epochs) with "
        "test accuracy 0.60 against 1.00 for its twins, its input side's gradient "
        "21x its output side's, and no finding. Trained on (the demo's run, 12 "
        "epochs, Adam 1e-3, measured on this machine) it reaches test accuracy "
        "0.77 at step 90, 0.98 at 280 and 1.00 at 380, its input/output ratio "
        "falling from 34 to 1.9: it is *not yet learned*, not broken. The large "
        "ratio does not separate it either: healthy runs that learn show as "
        "large. Median input/output gradient-norm ratio over the last 5 logged "
        "steps, per length:",
        "",
    ]
    out += _per_length(
        by_name, DEPTH_RUNS, lengths, "loss at the end", _input_over_output, "{:.2g}"
    )
    out += [
        "",
        "So the no-norm Transformers are labelled healthy (they learn), and no rule "
        "on the depth profile was added: a threshold low enough for 21x would flag "
        "the keras.applications MobileNets that learn their task.",
        "",
        "## Gated cells wait, then learn",
        "",
        "`vanishing_in_time` never concerns LSTM or GRU layers: their first/last "
        "timestep ratio starts far below any threshold and the loss sits at the "
        "mean predictor's until they learn, which no logged statistic predicts. "
        "SimpleRNN layers are judged with the loss (ratio below 0.1 and a stalled "
        "loss). Median first/last ratio over the last 5 logged steps, and the "
        "loss:",
        "",
    ]
    out += _per_length(by_name, GATED_RUNS, lengths, "loss", _first_over_last, "{:.1e}")
    out += [
        "",
        "## Not in the benchmark",
        "",
        "- A `from_logits` mismatch through a Keras softmax layer: Keras 3 takes "
        "the logits back from `keras.activations.softmax` and trains exactly as "
        "with logits (a first version of this benchmark had such a run; its "
        "losses equalled the logits twin's to every digit). The saturated "
        "hand-written softmax runs cover a probability loss on saturated outputs.",
        "- Gated cells that fail through time (LSTM at T=1000): slower than the "
        "time budget allows.",
        "",
    ]
    return out
