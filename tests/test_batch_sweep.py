"""The batch-size sweep's fit and table (kgrad.lab.batch_sweep); the sweep
itself runs in tests/test_demo.py (`kgrad demo --quick`)."""

import numpy as np

from kgrad.lab import batch_sweep


def test_critical_batch_of_an_exact_hyperbola():
    s_min, b_noise = 50.0, 120.0
    batches = [8, 16, 32, 64, 128, 256, 512, 1024]
    steps = [s_min * (1 + b_noise / b) for b in batches]
    assert np.isclose(batch_sweep.fit_critical_batch(batches, steps), b_noise)


def test_markdown_names_the_measured_and_predicted_batch():
    sweep = batch_sweep.SweepResult(
        batches=(8, 16, 32),
        steps=[400, 210, None],
        b_crit=30.0,
        b_simple=60.0,
        trend=[(2.3, 10.0), (1.0, 20.0), (0.5, 40.0)],
        layernorm=45.0,
    )
    text = batch_sweep.markdown(sweep)
    assert "| 8 | 400 | 3,200 |  |" in text
    assert "| 16 | 210 | 3,360 | 0.53 |" in text
    assert "| 32 | not reached |" in text
    assert "**30**" in text and "**60**, 2.00x the measured" in text
    assert "10 at loss 2.30, 20 at loss 1.00, 40 at loss 0.50" in text
    assert "(Gray et al. 2024), same steps: **45**, 0.75x the estimate" in text
