"""`examples/distributed.py` on two logical CPUs, with or without the monitor.

Saves what it trained to OUT (`numpy.savez`: the weights of entry j as `j_0`,
`j_1`, ..., and the histories as JSON in `histories`), for
`tests/test_unchanged.py` to compare the two runs. Each run needs its own
process: two `MirroredStrategy` fits in one process share collective keys.

Run: python tests/distributed/example_unchanged.py LOGDIR monitored|plain OUT
"""

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the checkout

from tests.support.example_runner import EXAMPLES, run_example  # noqa: E402

# examples/distributed.py sets two logical CPUs at import, before TF starts.
sys.path.insert(0, str(EXAMPLES))
import distributed  # noqa: E402, F401

log_dir, mode, out = sys.argv[1:4]
trained = run_example("distributed", log_dir, mode == "monitored")
arrays = {
    f"{j}_{i}": w
    for j, (weights, _) in enumerate(trained)
    for i, w in enumerate(weights)
}
np.savez(out, histories=json.dumps([h for _, h in trained]), **arrays)
