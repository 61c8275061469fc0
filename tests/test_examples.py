"""Every script in examples/ runs at tiny size (`--quick`) and logs what it says."""

import math
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, log_dir):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), str(log_dir), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def scalar_series(events, run_dir, tag):
    return [(step, float(value)) for step, value in events(run_dir)[tag]]


def test_every_example_has_a_docstring_and_a_test():
    scripts = sorted(path.stem for path in EXAMPLES.glob("*.py"))
    tested = sorted(
        name.removeprefix("test_").removesuffix("_example")
        for name in globals()
        if name.startswith("test_") and name.endswith("_example")
    )
    assert scripts == tested
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert text.startswith('"""') and "Run: python examples/" in text


def test_fit_example(tmp_path, events):
    out = run_example("fit", tmp_path)
    norms = [line for line in out.splitlines() if line.startswith("step 1 gradient")]
    first, last = (float(line.rsplit(" ", 1)[1]) for line in norms)
    assert 0 < first < 1e-3 * last  # vanishing through the sigmoid stack
    logged = events(tmp_path / "train")
    assert float(logged["grad_norm/dense/kernel"][0][1]) == pytest.approx(
        first, rel=1e-3
    )


def test_custom_loop_example(tmp_path, events):
    run_example("custom_loop", tmp_path)
    steps = [
        step
        for step, _ in scalar_series(events, tmp_path / "train", "grad_norm/global")
    ]
    assert steps == [1, 11, 21]


def test_zoo_comparison_example(tmp_path):
    out = run_example("zoo_comparison", tmp_path)
    rows = {
        line.split()[0]: line for line in out.splitlines() if line.startswith("mlp_")
    }
    assert "vanishing" in rows["mlp_sigmoid"] and rows["mlp_relu_he"].endswith("none")


def test_mixed_precision_example(tmp_path, events):
    run_example("mixed_precision", tmp_path)
    logged = events(tmp_path / "train")
    scales = [float(v) for _, v in logged["loss_scale/value"]]
    assert scales[0] == 32768.0
    norms = [float(v) for _, v in logged["grad_norm/global"]]
    assert norms and all(math.isfinite(n) and n < 1e3 for n in norms)  # unscaled


def test_distributed_example(tmp_path, events):
    out = run_example("distributed", tmp_path)
    assert out.startswith("2 replicas")
    steps = [
        s for s, _ in scalar_series(events, tmp_path / "train", "grad_norm/global")
    ]
    assert steps[:3] == [1, 2, 3]


def test_gan_example(tmp_path, events):
    run_example("gan", tmp_path)
    runs = {  # one run per optimizer the train step applies
        name: [
            t for t in events(tmp_path / "train" / name) if t.startswith("grad_norm/")
        ]
        for name in ("d_optimizer", "g_optimizer")
    }
    assert any(t.startswith("grad_norm/discriminator/") for t in runs["d_optimizer"])
    assert any(t.startswith("grad_norm/generator/") for t in runs["g_optimizer"])
    assert not any("generator/" in t for t in runs["d_optimizer"])


def test_fine_tuning_example(tmp_path, events):
    run_example("fine_tuning", tmp_path)
    logged = events(tmp_path / "train")
    steps = [s for s, _ in logged["grad_norm/global"]]
    assert steps == sorted(set(steps)) and len(steps) == 8  # 4 + 4 batches of 32
    norms = [t for t in logged if t.startswith("grad_norm/")]
    head = [s for s, _ in logged[next(t for t in norms if "head/kernel" in t)]]
    base = [s for s, _ in logged[next(t for t in norms if "conv2d/kernel" in t)]]
    assert head == steps and base == steps[4:]  # the base trains in the 2nd fit


def test_jax_fit_example(tmp_path, events):
    out = run_example("jax_fit", tmp_path)
    assert "backend: jax" in out and "relu_mlp" in out
    steps = [s for s, _ in events(tmp_path / "train")["grad_norm/global"]]
    assert steps[:3] == [1, 2, 3] and 10 in steps
