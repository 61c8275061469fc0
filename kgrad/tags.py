"""The tag contract: every tag kgrad writes, how to build it and how to read it.

Like a TensorBoard plugin's `metadata.py`, this module is imported by the
writer (`kgrad.monitor`), the reader (`kgrad.analysis`), the tab
(`kgrad.dashboard`), the lab, the command line, the scripts and the
benchmarks; nothing else spells a tag. It imports nothing but the standard
library (no TensorFlow). Tested by `tests/test_tags.py`.

Tags (all under `log_dir/train`, or `log_dir/train/<optimizer>` when the step
applies several optimizers), at step = the optimizer's update count:

| tag | kind | what |
|---|---|---|
| `grad_norm/<path>` | scalar | L2 norm of the variable's gradient |
| `grad_norm/global` | scalar | L2 norm of all gradients together |
| `grad_hist/<path>` | histogram | distribution of the gradient's entries |
| `weight_norm/<path>` | scalar | L2 norm of the weights the gradient was taken at |
| `update_ratio/<path>` | scalar | norm of the step's update / `weight_norm` |
| `grad_nonfinite/global` | scalar | number of NaN/Inf gradient entries |
| `grad_nonfinite/<path>` | scalar | the same for one variable, written only when > 0 |
| `loss_scale/value` | scalar | mixed precision: the loss scale of the step |
| `loss_scale/skipped` | scalar | mixed precision: batches skipped before the update |
| `grad_clip/global_norm` | scalar | `clipnorm`/`global_clipnorm`: global norm of the |
|  |  | gradients the optimizer applies, after its clipping |
| `grad_clip/ratio` | scalar | that norm over `grad_norm/global` (1: not clipped) |
| `grad_clip/clipped` | scalar | variables whose gradient the clipping changed (with |
|  |  | `clipvalue`: an entry beyond the value; histogram steps) |
| `activation_zero/<layer>` | scalar | ReLU layers: share of outputs that are zero |
| `dead_units/<layer>` | scalar | ReLU layers: share of units zero on the whole batch |
| `saturation/<layer>` | scalar | sigmoid/tanh layers: share of outputs near a bound |
| `temporal_grad/<rnn>/t<k>` | scalar | recurrent layers: norm of the loss gradient |
|  |  | w.r.t. the layer's input at timestep `k`, over the batch |
| `temporal_grad/<rnn>/t_first_over_last` | scalar | that norm at the first |
|  |  | timestep over the last: vanishing through time when tiny |
| `kgrad/loss` | scalar | the loss Keras computed on the logged step |
| `kgrad/epoch/<metric>` | scalar | the metrics Keras reports at an epoch end |
| `kgrad/run_info` | text | JSON: variable paths (input first), layers, batch |
| `kgrad/findings` | text | the diagnosis in prose, written when it changes |
| `kgrad/findings_data` | text | the same findings as JSON records |
|  |  | (`kgrad.findings_record`), written beside the prose |
| `kgrad/missing_steps` | text | JSON `{"steps": [...]}`: steps the writer lost |
| `kgrad/gradient_flow` | image | gradient norm per layer, input to output |
| `kgrad/temporal_profile` | image | recurrent layers: timestep x logged step heat map |
| `b_simple/global` | scalar | `noise_scale=True`: the gradient noise scale |
|  |  | `B_simple` of all weights with per-example norms (smoothed) |
| `b_simple/<layer>` | scalar | the same for one layer's weights |
| `noise_scale/b_simple_step` | scalar | `B_simple` of the logged step alone |
| `noise_scale/b_simple_layernorm` | scalar | from LayerNorm weights only |
| `noise_scale/trace_sigma` | scalar | `tr(Sigma)`, smoothed |
| `noise_scale/grad_sq` | scalar | `|G|^2`, smoothed |
| `noise_scale/covered` | scalar | share of `||G||^2` in weights with per-example |
|  |  | norms (`kgrad.monitor.log.noise_scale` states the estimators) |
| `noise_scale/batch` | scalar | the examples of the step (global batch) |
| custom scalars | layout | every variable's gradient norm on one chart |
|  |  | (TensorBoard's own `custom_scalars__config__` tag) |

`<path>` is a variable's tag name (its Keras 3 `variable.path` without the
model's name in front (`in_model`), or its name when the path is `None`,
made unique by the monitor); with `per_layer=True` it is `<layer>/(all)` for
a whole layer (`whole_layer`). `<layer>` is a layer's path, `<rnn>` a
recurrent layer's path, both without the model's name; `<k>` is zero-padded
to the digits of the last timestep (`temporal`).

Example:

>>> tag(GRAD_NORM, "mlp/dense/kernel")
'grad_norm/mlp/dense/kernel'
>>> name_of("grad_norm/mlp/dense/kernel", GRAD_NORM)
'mlp/dense/kernel'
>>> layer_of("mlp/dense/kernel")
'mlp/dense'
>>> temporal("m/lstm", 3, last=15)
'temporal_grad/m/lstm/t03'
>>> parse_temporal("temporal_grad/m/lstm/t03")
('m/lstm', 3)
"""

import re

# The dashboard plugin's name: its routes are under `/data/plugin/<name>/`.
PLUGIN_NAME = "kgrad"

# Statistics: a tag is `<statistic>/<name>`.
GRAD_NORM = "grad_norm"
GRAD_HIST = "grad_hist"
WEIGHT_NORM = "weight_norm"
UPDATE_RATIO = "update_ratio"
GRAD_NONFINITE = "grad_nonfinite"
ACTIVATION_ZERO = "activation_zero"
DEAD_UNITS = "dead_units"
SATURATION = "saturation"
TEMPORAL_GRAD = "temporal_grad"
LOSS_SCALE = "loss_scale"
GRAD_CLIP = "grad_clip"

# Statistics with one tag per variable, and with one tag per probed layer.
PER_VARIABLE = (GRAD_NORM, GRAD_HIST, WEIGHT_NORM, UPDATE_RATIO, GRAD_NONFINITE)
PER_LAYER = (ACTIVATION_ZERO, DEAD_UNITS, SATURATION)

# The name of the tags over all variables together (`grad_norm/global`).
GLOBAL = "global"
# The name of a whole layer's tags with `per_layer=True` (`<layer>/(all)`).
ALL = "(all)"
# The last part of `temporal_grad/<rnn>/t_first_over_last`.
FIRST_OVER_LAST = "t_first_over_last"

GLOBAL_GRAD_NORM = f"{GRAD_NORM}/{GLOBAL}"
GLOBAL_NONFINITE = f"{GRAD_NONFINITE}/{GLOBAL}"
LOSS_SCALE_VALUE = f"{LOSS_SCALE}/value"
LOSS_SCALE_SKIPPED = f"{LOSS_SCALE}/skipped"
GRAD_CLIP_GLOBAL_NORM = f"{GRAD_CLIP}/global_norm"
GRAD_CLIP_RATIO = f"{GRAD_CLIP}/ratio"
GRAD_CLIP_CLIPPED = f"{GRAD_CLIP}/clipped"

# kgrad's own tags.
NAMESPACE = "kgrad"
LOSS = f"{NAMESPACE}/loss"
EPOCH_PREFIX = f"{NAMESPACE}/epoch/"
RUN_INFO = f"{NAMESPACE}/run_info"
FINDINGS = f"{NAMESPACE}/findings"
FINDINGS_DATA = f"{NAMESPACE}/findings_data"
MISSING_STEPS = f"{NAMESPACE}/missing_steps"
GRADIENT_FLOW = f"{NAMESPACE}/gradient_flow"
TEMPORAL_PROFILE = f"{NAMESPACE}/temporal_profile"

# The gradient noise scale (`GradientMonitor(noise_scale=True)`).
B_SIMPLE = "b_simple"  # `b_simple/<layer>` and `b_simple/global`
GLOBAL_B_SIMPLE = f"{B_SIMPLE}/{GLOBAL}"
NOISE_SCALE = "noise_scale"
NOISE_B_SIMPLE_STEP = f"{NOISE_SCALE}/b_simple_step"
NOISE_B_SIMPLE_LAYERNORM = f"{NOISE_SCALE}/b_simple_layernorm"
NOISE_TRACE_SIGMA = f"{NOISE_SCALE}/trace_sigma"
NOISE_GRAD_SQ = f"{NOISE_SCALE}/grad_sq"
NOISE_COVERED = f"{NOISE_SCALE}/covered"
NOISE_BATCH = f"{NOISE_SCALE}/batch"

_TIMESTEP = re.compile(r"t(\d+)")


def tag(statistic, name):
    """The tag of `statistic` for the variable, layer or `GLOBAL` `name`.

    Example:

    >>> tag(GRAD_NORM, GLOBAL)
    'grad_norm/global'
    """
    return f"{statistic}/{name}"


def in_model(path, model_name):
    """A variable's or layer's Keras `path` without `<model_name>/` in front.

    Keras puts the model's name in front of the paths of a `Sequential` or
    subclassed model built in the process (`mlp/dense/kernel`), not of the
    same model loaded by `keras.saving.load_model` (`dense/kernel`): tags
    name both `dense/kernel`, so a reloaded model continues its series.

    Example:

    >>> in_model("mlp/dense/kernel", "mlp"), in_model("dense/kernel", "mlp")
    ('dense/kernel', 'dense/kernel')
    >>> tag(GRAD_NORM, in_model("mlp/dense/kernel", "mlp"))
    'grad_norm/dense/kernel'
    """
    prefix = f"{model_name}/"
    if model_name and path.startswith(prefix) and len(path) > len(prefix):
        return path[len(prefix) :]
    return path


def name_of(tag_, statistic):
    """The name in `tag_` after `<statistic>/`, or `None` for another tag.

    Example:

    >>> name_of("update_ratio/d/kernel", GRAD_NORM) is None
    True
    """
    prefix = f"{statistic}/"
    return tag_[len(prefix) :] if tag_.startswith(prefix) else None


def names(tags, statistic):
    """The names of `statistic` among `tags`, `GLOBAL` left out, in tag order.

    Example:

    >>> names(["grad_norm/global", "grad_norm/d/kernel", "kgrad/loss"], GRAD_NORM)
    ['d/kernel']
    """
    found = (name_of(t, statistic) for t in tags)
    return [n for n in found if n is not None and n != GLOBAL]


def layer_of(path, recurrent=()):
    """The layer of a variable's tag name.

    The recurrent layer (of `recurrent`, `recurrent_order(run_info)`) whose
    cell holds it, else the path up to its last `/`. A variable outside any
    layer (a path without `/`, e.g. a bare `keras.Variable` named `w`, or a
    name taken when the path is `None`) is its own layer, so that it is never
    dropped from a per-layer view.

    Example:

    >>> layer_of("m/block/dense/kernel"), layer_of("w"), layer_of("d/(all)")
    ('m/block/dense', 'w', 'd')
    >>> layer_of("m/rnn/simple_rnn_cell/kernel", recurrent=["m/rnn"])
    'm/rnn'
    """
    holders = [r for r in recurrent if path.startswith(f"{r}/")]
    if holders:
        return max(holders, key=len)
    layer, _, _ = path.rpartition("/")
    return layer or path


def whole_layer(layer):
    """The tag name of a whole layer under `per_layer=True` (`<layer>/(all)`).

    Example:

    >>> whole_layer("m/dense"), layer_of(whole_layer("m/dense"))
    ('m/dense/(all)', 'm/dense')
    """
    return f"{layer}/{ALL}"


def epoch(metric):
    """The tag of an epoch-end metric (`kgrad/epoch/<metric>`)."""
    return f"{EPOCH_PREFIX}{metric}"


def epoch_metric(tag_):
    """The metric of an epoch-end tag, or `None` for another tag.

    Example:

    >>> epoch_metric(epoch("accuracy"))
    'accuracy'
    """
    return tag_[len(EPOCH_PREFIX) :] if tag_.startswith(EPOCH_PREFIX) else None


def temporal(rnn, timestep, last):
    """The tag of `rnn`'s temporal norm at `timestep`, padded to `last`'s digits.

    Example:

    >>> temporal("rnn", 7, last=120)
    'temporal_grad/rnn/t007'
    """
    return tag(TEMPORAL_GRAD, f"{rnn}/t{timestep:0{len(str(last))}d}")


def temporal_ratio(rnn):
    """The tag of `rnn`'s first-over-last timestep ratio."""
    return tag(TEMPORAL_GRAD, f"{rnn}/{FIRST_OVER_LAST}")


def parse_temporal_ratio(tag_):
    """The recurrent layer of a first-over-last ratio tag, else `None`.

    Example:

    >>> parse_temporal_ratio(temporal_ratio("m/lstm"))
    'm/lstm'
    """
    rest = name_of(tag_, TEMPORAL_GRAD)
    suffix = f"/{FIRST_OVER_LAST}"
    if rest is None or not rest.endswith(suffix) or rest == suffix:
        return None
    return rest[: -len(suffix)]


def parse_temporal(tag_):
    """`(rnn, timestep)` of a per-timestep temporal tag, else `None`.

    Example:

    >>> parse_temporal(temporal_ratio("rnn")) is None
    True
    """
    rest = name_of(tag_, TEMPORAL_GRAD)
    if rest is None:
        return None
    rnn, _, last = rest.rpartition("/")
    match = _TIMESTEP.fullmatch(last)
    if not rnn or not match:
        return None
    return rnn, int(match.group(1))


def timestep_rows(tags_, rnn):
    """`[(label, tag)]` of `rnn`'s per-timestep tags, first timestep first.

    The label is the tag's last part (`t03`), as TensorBoard lists it.

    Example:

    >>> timestep_rows(["temporal_grad/r/t10", "temporal_grad/r/t02"], "r")
    [('t02', 'temporal_grad/r/t02'), ('t10', 'temporal_grad/r/t10')]
    """
    rows = []
    for tag_ in tags_:
        parsed = parse_temporal(tag_)
        if parsed and parsed[0] == rnn:
            rows.append((parsed[1], tag_.rpartition("/")[2], tag_))
    return [(label, tag_) for _, label, tag_ in sorted(rows)]


def recurrent_layers(tags_):
    """The recurrent layers with per-timestep tags among `tags`, sorted.

    Example:

    >>> recurrent_layers(["temporal_grad/b/t0", "temporal_grad/a/t1", "x"])
    ['a', 'b']
    """
    return sorted({parsed[0] for t in tags_ if (parsed := parse_temporal(t))})


def in_model_order(names_, order):
    """`names_` in the order of `order` (input first), the others sorted after.

    `order` is a list from `kgrad/run_info` (`variable_order`, `layer_order`,
    `recurrent_order`); names it does not list follow, sorted.

    Example:

    >>> in_model_order(["m/out", "m/x", "m/in"], ["m/in", "m/hidden", "m/out"])
    ['m/in', 'm/out', 'm/x']
    """
    present = set(names_)
    ordered = list(dict.fromkeys(n for n in order if n in present))
    return ordered + sorted(present - set(ordered))


def variable_order(run_info):
    """The variable tag names of a `kgrad/run_info` object, input first."""
    return [p for p in (run_info or {}).get("variables", []) if isinstance(p, str)]


def layer_order(run_info):
    """The probed layers of a `kgrad/run_info` object, input first."""
    layers = (run_info or {}).get("layers", [])
    return [p[0] for p in layers if p and isinstance(p[0], str)]


def recurrent_order(run_info):
    """The recurrent layers of a `kgrad/run_info` object, input first."""
    found = (run_info or {}).get("recurrent_layers", [])
    return [p for p in found if isinstance(p, str)]


def model_layers(run_info):
    """Every layer a `kgrad/run_info` object names: its variables', probed
    and recurrent layers.

    Example:

    >>> info = {"variables": ["m/d/kernel", "w", "m/r/cell/kernel"],
    ...         "layers": [["m/a", "relu"]], "recurrent_layers": ["m/r"]}
    >>> model_layers(info)
    ['m/d', 'w', 'm/r', 'm/a']
    """
    recurrent = recurrent_order(run_info)
    found = [layer_of(p, recurrent) for p in variable_order(run_info)]
    return list(dict.fromkeys(found + layer_order(run_info) + recurrent))
