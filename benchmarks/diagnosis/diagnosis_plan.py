"""The plan of the diagnosis benchmark: which runs to train, in which order,
on how many worker processes, and how long it should take
(`benchmarks/diagnosis/diagnosis.py` prints it before it starts).

Each run's estimate is the CPU time it took to train and judge in the last
full run (`run_seconds.json` beside this file, rewritten by every run that
trains all the runs to `RECORDED_STEPS`), scaled to the steps asked for; a
run it does not know is estimated at `UNKNOWN_SECONDS`. Each worker runs one
TensorFlow thread, so on idle cores a run's wall time is about its CPU time,
which the load of other processes does not stretch. The runs are handed out
longest first to the first free worker, which is also how the estimate of
the wall time is made.

Example:

    order, minutes = plan(["relu_he", "mobilenet_v2"], steps=1000, workers=2)
"""

import heapq
import json
import os

SECONDS_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "run_seconds.json"
)
UNKNOWN_SECONDS = 30.0
RECORDED_STEPS = 1000


def estimates():
    """`{run name: seconds}` recorded by the last full run (`{}` if none)."""
    try:
        with open(SECONDS_FILE) as f:
            return json.load(f)["seconds"]
    except (OSError, KeyError, ValueError):
        return {}


def plan(names, steps, workers):
    """`(names longest first, estimated wall minutes on `workers` processes)`
    to train each run `steps` steps."""
    known = estimates()
    scale = steps / RECORDED_STEPS
    cost = {n: known.get(n, UNKNOWN_SECONDS) * scale for n in names}
    order = sorted(names, key=lambda n: -cost[n])
    finish = [0.0] * max(1, workers)
    for name in order:
        heapq.heapreplace(finish, finish[0] + cost[name])
    return order, max(finish) / 60


def record(seconds, workers, load):
    """Writes the measured `{run name: CPU seconds}` of a full run on
    `workers` processes, and the 1-minute load average at its end."""
    with open(SECONDS_FILE, "w") as f:
        json.dump(
            {
                "what": "CPU seconds to train and judge each run (one "
                "TensorFlow thread per worker), measured by the last full run of "
                "benchmarks/diagnosis/diagnosis.py: its plan's estimates",
                "workers": workers,
                "load_average_at_end": round(load, 1),
                "seconds": {n: round(s, 1) for n, s in sorted(seconds.items())},
            },
            f,
            indent=1,
        )
        f.write("\n")
