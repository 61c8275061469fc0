"""One writer and one model per run, and steps that never go backwards in it.

`StepCounter` keeps a run's steps increasing: a logged step is the update
count of the optimizer the gradient went through (the k-th update is step
k); Keras restarts that count at 0 for every new optimizer (a `compile()`
after freezing or unfreezing layers), so each optimizer slot keeps an offset
and its steps continue from the last step the slot reached. The same
optimizer continues its own count across `fit` calls.

Two monitors writing one run directory (two processes on one `log_dir`, or
one monitor reused on a second model) would interleave their steps, and
TensorBoard and `kgrad report` would drop or mix them. The first monitor to
write a run root (`log_dir/train`) claims it in a small file,
`log_dir/train/.kgrad-run.json`: the model (its name and variable paths)
and the writer (host, process, a token). Another monitor then:

- continues the run if the claim is its own, or names the same model and
  its writer is not running (a resumed run: a new process, or a new monitor
  in this process, where `fit` calls run one at a time);
- otherwise (another model, or a writer still running) writes a new run,
  `log_dir/train_2` (then `_3`, ...), and says so once. Both runs are kept
  and `kgrad report log_dir` reports each.

A writer on another host is taken as running: its process cannot be seen.

Tested in tests/test_run_claim.py.

Example:

```python
root, note = claim("logs/exp1", model, owner=logger)  # "logs/exp1/train", None
```
"""

import json
import os
import socket
import uuid

CLAIM_FILE = ".kgrad-run.json"
_HOST = socket.gethostname()


def model_identity(model):
    """What makes two models the same model: name and variable paths."""
    paths = sorted(getattr(v, "path", v.name) for v in model.weights)
    return {"model": model.name, "variables": paths}


def claim(log_dir, model, owner, exclude=()):
    """Claims a run root under `log_dir` for `model`, written by `owner`.

    Args:
        log_dir: The monitor's `log_dir`.
        model: The model whose steps will be written.
        owner: The object that writes (its token is kept on it).
        exclude: Run roots not to use (this owner's runs of other models).
            Defaults to `()`.

    Returns:
        `(run_root, note)`: the directory to write the model's run to, and
        `None` or a sentence saying why it is not `log_dir/train`.
    """
    token = getattr(owner, "_claim_token", None) or uuid.uuid4().hex
    owner._claim_token = token
    identity = model_identity(model)
    reasons = []
    for index in range(1, 1000):
        root = os.path.join(
            os.fspath(log_dir), "train" if index == 1 else f"train_{index}"
        )
        if root in exclude:
            reasons.append(f"{root} holds this monitor's run of another model")
            continue
        taken = _why_taken(root, token, identity)
        if taken is None and _write_claim(root, token, identity):
            note = None
            if reasons:
                note = "; ".join(reasons) + f": this run goes to {root}"
            return root, note
        reasons.append(taken or f"{root} was claimed by another writer just now")
    raise RuntimeError(f"kgrad found no free run directory in {log_dir}")


def _why_taken(root, token, identity):
    """`None` if `root` may be written, else a sentence saying why not."""
    held = _read_claim(root)
    if held is None or held.get("token") == token:
        return None
    if held.get("model") != identity.get("model") or held.get("variables") != (
        identity.get("variables")
    ):
        return f"{root} holds the run of another model ({held.get('model')!r})"
    if _running(held):
        return (
            f"{root} is being written by another kgrad monitor (process "
            f"{held.get('pid')} on {held.get('host')})"
        )
    return None


def _running(held):
    """Whether the writer of a claim may still write.

    Another monitor of this process is not: `fit` calls run one at a time,
    and a monitor whose `fit` was interrupted no longer captures.
    """
    if held.get("host") != _HOST:
        return True
    pid = held.get("pid")
    if pid == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def _read_claim(root):
    try:
        with open(os.path.join(root, CLAIM_FILE)) as file:
            held = json.load(file)
    except (OSError, ValueError):
        return None
    return held if isinstance(held, dict) else None


def _write_claim(root, token, identity):
    """Writes the claim; returns whether it is ours after writing it."""
    held = dict(identity, host=_HOST, pid=os.getpid(), token=token)
    path = os.path.join(root, CLAIM_FILE)
    temporary = f"{path}.{token}"
    try:
        os.makedirs(root, exist_ok=True)
        with open(temporary, "w") as file:
            json.dump(held, file)
        os.replace(temporary, path)
    except OSError:
        return True  # cannot be recorded: the event writer reports the failure
    return (_read_claim(root) or {}).get("token") == token


class StepCounter:
    """Per-slot offsets that keep steps increasing across optimizers.

    Args:
        iterations: Function from an optimizer to its update count (an int).
    """

    def __init__(self, iterations):
        self._iterations = iterations
        self._slots = {}  # name -> [optimizer, offset]
        self._reached = {}  # name -> last step the slot reached

    def begin(self, name, optimizer):
        """Starts a `fit` with `optimizer` in slot `name`."""
        slot = self._slots.get(name)
        if slot is not None and slot[0] is optimizer:
            return
        reached = self._reached.get(name, 0)
        offset = reached - self._iterations(optimizer) if name in self._reached else 0
        self._slots[name] = [optimizer, offset]

    def end(self, name):
        """Records the step slot `name` reached at the end of a `fit`."""
        optimizer, offset = self._slots[name]
        self._reached[name] = offset + self._iterations(optimizer)

    def step(self, name, count):
        """The step of the `count`-th update (1-based) of slot `name`'s optimizer."""
        return int(count) + self._slots[name][1]
