"""One writer and one model per run, steps that never go backwards in it, and
one monitor per model (`take_over`, `release`).

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
  in this process, where `fit` calls run one at a time), and says so in the
  second case;
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
import weakref

from kgrad import tags

CLAIM_FILE = ".kgrad-run.json"
_HOST = socket.gethostname()


def model_identity(model):
    """What makes two models the same model: name and variable paths.

    The paths are taken without the model's name in front, as the tags are
    (`kgrad.tags.in_model`): Keras prefixes it to the paths of
    a model built in the process (`mlp/dense/kernel`), not to those of the
    same model loaded by `keras.models.load_model` (`dense/kernel`).
    """
    paths = sorted(
        tags.in_model(getattr(v, "path", v.name), model.name) for v in model.weights
    )
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
        held = _read_claim(root)
        taken = _why_taken(root, token, identity)
        if taken is None and _write_claim(root, token, identity):
            note = None
            if reasons:
                note = "; ".join(reasons) + f": this run goes to {root}"
            elif held is not None and held.get("token") != token:
                note = (
                    f"{root} holds a run of this model by an earlier monitor "
                    f"(process {held.get('pid')}): this fit continues it"
                )
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

    def continues(self, name, optimizer):
        """Whether `optimizer` resumes at the count slot `name` ended a `fit` at.

        True for the optimizer of a model saved and loaded again (its
        `iterations` are restored): its steps continue the slot's run.
        """
        slot = self._slots.get(name)
        return (
            slot is not None
            and name in self._reached
            and self._iterations(optimizer) == self._iterations(slot[0])
        )

    def reached(self, name):
        """The last step slot `name` reached at the end of a `fit` (0 if none)."""
        return self._reached.get(name, 0)

    def step(self, name, count):
        """The step of the `count`-th update (1-based) of slot `name`'s optimizer."""
        return int(count) + self._slots[name][1]


class LoopModel:
    """Stands for the model of a custom training loop: what `record` is handed.

    Its identity (for the run claim) is the variables' first path component
    and their paths, so a loop started again over the same model continues
    its run.
    """

    def __init__(self, variables, strategy):
        self.weights = list(variables)
        self.key = [id(v) for v in self.weights]
        first = getattr(self.weights[0], "path", None) if self.weights else None
        self.name = (first or "loop").split("/")[0]
        self.distribute_strategy = strategy
        self.record = None


class _LoopSlot:
    """The slot of a custom loop's steps: one run, `log_dir/train`."""

    name = "loop"
    traced = True


LOOP_SLOT = _LoopSlot()


# One monitor's capture per model at a time, and none left behind: two
# monitors in one `fit` (they hold the same `params` dict, which Keras's
# `CallbackList` hands to all) would wrap the same optimizer twice and unwrap
# it in the wrong order, so the second is refused, naming both `log_dir`s; a
# capture that a stopped `fit` left installed is removed by the next monitor.
_OWNERS = weakref.WeakKeyDictionary()  # model -> (monitor, params of its fit)


def take_over(model, monitor):
    """Makes `monitor` the one capturing `model`'s gradients in this `fit`.

    Raises:
        ValueError: If another monitor captures in the same `fit`.
    """
    owner = _OWNERS.get(model)
    if owner is not None and owner[0] is not monitor:
        other, params = owner
        if other._capture is not None:
            other._capture.uninstall()
        if params is monitor.params:
            _OWNERS.pop(model, None)
            raise ValueError(
                "Only one GradientMonitor per `fit`: this one logs to "
                f"log_dir={os.fspath(monitor.log_dir)!r}, another to "
                f"log_dir={os.fspath(other.log_dir)!r}. Pass one monitor."
            )
    _OWNERS[model] = (monitor, monitor.params)


def release(model):
    """Forgets the monitor of `model` (its capture is uninstalled)."""
    _OWNERS.pop(model, None)
