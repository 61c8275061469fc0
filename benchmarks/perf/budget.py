"""How long an `overhead.py` run takes: the estimate it prints before it starts.

The costs are per model, on 2 idle cores (TensorFlow 2.21, Keras 3.15.1): the
trace of a new train function (the first step of a fit) and one later step
at batch 64, in each section's input shapes. Plain: from the runs in
`RESULTS.md` (`plain ms/step` and `warm-up s` of the steady state, `plain
step 1 s` and `plain wall s` of the fresh fits). `jit_compile=True`: from the
steady `_jit` run (MLP and cnn_bn) and single fits timed on a busy machine
(load ~2.5), rounded down by about a third. Memory: one child process of
ResNet50V2, monitored ones 1.3x as long. A model not in the tables counts as
the slowest. Checked against runs: steady 4.8 min estimated / 5.1 measured,
fresh (3 models) 3.4 / 3.5, steady_jit (2 models, 3 configs) 1.5 / 1.3,
memory (1 repeat) 1.2 / 1.2. A busy machine takes longer.

Example:

    for name, seconds, plan in estimate(args):
        print(f"{name}: ~{seconds / 60:.1f} min ({plan})")
"""

import math

import fresh_fit
import jax_fresh_fit
import peak_memory

# mode -> model -> (trace s, step s at batch 64), in the steady section's shapes
STEADY = {
    "plain": {
        "mlp_relu_he": (3.0, 0.0025),
        "cnn_bn": (2.5, 0.0166),
        "resnet18": (8.0, 1.27),
        "lstm": (2.0, 0.0124),
        "transformer_small": (7.0, 0.062),
    },
    "jit": {
        "mlp_relu_he": (6.0, 0.0039),
        "cnn_bn": (6.0, 0.0151),
        "resnet18": (20.0, 2.5),
        "lstm": (2.0, 0.010),
        "transformer_small": (9.0, 0.07),
    },
}
# the same in the fresh-fit section's shapes (a fit there also builds the model)
FRESH = {
    "plain": {
        "mlp_relu_he": (3.4, 0.0027),
        "cnn_bn": (2.9, 0.050),
        "resnet18": (8.0, 0.165),
        "lstm": (1.0, 0.019),
        "transformer_small": (7.0, 0.085),
    },
    "jit": {
        "mlp_relu_he": (4.5, 0.005),
        "cnn_bn": (5.0, 0.045),
        "resnet18": (20.0, 2.5),
        "lstm": (2.5, 0.02),
        "transformer_small": (10.0, 0.09),
    },
}
MEMORY_CHILD_S = {"plain": 30.0, "jit": 37.0}  # ResNet50V2, plain fit, batch 8
MONITORED_CHILD = 1.3  # a monitored child process takes this much longer
FIT_OVERHEAD_S = 0.3  # per timed fit: garbage collection, callbacks, set-up
SETUP_S = 3.0  # per steady cell: the models and the data set
BUILD_S = 1.0  # per fresh fit: clear_session and a new model


def _cost(table, mode, model):
    costs = table[mode]
    return costs.get(model, max(costs.values(), key=lambda c: c[1]))


def steady_seconds(args, mode, models):
    """Seconds of the steady section (and its depth rows) for `models`."""
    configs = list(args.configs)
    total = 0.0
    cells = [(m, b) for m in models for b in args.batch_sizes]
    cells += [("mlp_relu_he", args.depth_batch_size)] * len(args.depths)
    for model, batch in cells:
        trace, step = _cost(STEADY, mode, model)
        step *= batch / 64
        functions = 1 + len(set(configs) - {"0"})
        total += SETUP_S + functions * (trace + 2 * step)
        total += (1 + args.calibration_steps) * step
        steps = max(args.min_steps, math.ceil(args.fit_seconds / step))
        fit = min(args.max_steps, steps) * step + FIT_OVERHEAD_S
        total += args.repeats * len(configs) * 2 * fit
        if args.first_steps and step <= args.extras_max_step_seconds:
            first = min(50, steps) * step + FIT_OVERHEAD_S
            total += len({"a", "d"} & set(configs)) * args.repeats * 2 * first
    return total


def fresh_seconds(args, mode, models, steps_of):
    """Seconds of the fresh-fit section; `steps_of(model)` is its steps per fit."""
    total = 0.0
    for model in models:
        trace, step = _cost(FRESH, mode, model)
        fit = BUILD_S + trace + (steps_of(model) - 1) * step
        total += BUILD_S + trace + step  # the warm-up fit
        total += args.fresh_pairs * len(args.fresh_configs) * 2 * fit
    return total


def memory_seconds(args, mode, configs):
    """Seconds of the peak-memory section: `configs` run `args.memory_jobs` at once."""
    child = MEMORY_CHILD_S[mode]
    times = [child * (MONITORED_CHILD if c.startswith("norms") else 1) for c in configs]
    jobs = max(1, args.memory_jobs)
    chunks = [times[i : i + jobs] for i in range(0, len(times), jobs)]
    return args.memory_repeats * sum(max(chunk) for chunk in chunks)


def estimate(args, plan):
    """`[(section, seconds, what runs)]` for `plan`: section -> its models.

    `args` are `overhead.py`'s; `plan` maps each section to run to the models
    it measures (`None` for the memory sections).
    """
    out = []
    for section, models in plan.items():
        mode = "jit" if section.endswith("_jit") else "plain"
        kind = section.removesuffix("_jit")
        if kind == "steady":
            seconds = steady_seconds(args, mode, models)
            what = (
                f"{len(models)} models x {len(args.configs)} configs x "
                f"{args.repeats} pairs, batch {' '.join(map(str, args.batch_sizes))}"
            )
        elif kind == "fresh":

            def steps_of(model):
                return fresh_fit.STEPS.get(model, fresh_fit.DEFAULT_STEPS)

            seconds = fresh_seconds(args, mode, models, steps_of)
            what = (
                f"{len(models)} models x {len(args.fresh_configs)} configs x "
                f"{args.fresh_pairs} pairs"
            )
        elif kind == "jax":
            jax_args = jax_fresh_fit.parse_args(
                jax_fresh_fit.argv_of(args.quick, args.jax_pairs)
            )
            seconds = jax_fresh_fit.STARTUP_SECONDS + sum(
                s for _, s in jax_fresh_fit.estimate_seconds(jax_args)
            )
            what = f"Keras on JAX: {len(jax_args.models)} models x " + (
                f"{len(jax_args.configs)} configs, pairs "
                + " ".join(
                    str(jax_fresh_fit.pairs_of(jax_args, m)) for m in jax_args.models
                )
            )
        else:
            seconds = memory_seconds(args, mode, peak_memory.CONFIGS)
            what = (
                f"{args.memory_model}, {len(peak_memory.CONFIGS)} processes x "
                f"{args.memory_repeats} repeats, {args.memory_jobs} at a time"
            )
        out.append((section, seconds, what))
    return out
