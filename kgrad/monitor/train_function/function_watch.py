"""Follows Keras's own train function through a monitored `fit`, never replacing it.

Keras makes, caches and retraces its train function by its own rules (a
compile drops it, `make_train_function(force=True)` makes a new one, a
`trainable` change without a recompile keeps it). kgrad's statistics enter it
through the wrappers the capture installs, when Keras traces it during a
monitored `fit`. `TrainFunctionWatch` covers what that leaves:

- A function Keras traced before the monitor was attached has no statistics
  in it. A new trace would have them, but it may train differently: it
  starts legacy stateful random ops (`tf.random.normal` in a custom layer)
  from the beginning of their streams, and reads again the Python state
  Keras had frozen into the function (a `Dropout.rate` set since, an
  attribute a custom `train_step` reads, the `trainable` flags). So kgrad
  retraces it only when `kgrad.monitor.train_function.same_trace` proves
  that a trace made now is the same graph over the same variables, without
  such random ops. Otherwise Keras's function stays, the monitor logs nothing
  in that `fit` (`blind`; a function without statistics has nothing to give)
  and says in one warning what to do: call `model.compile(...)` or
  `model.make_train_function(force=True)` before `fit`, which retraces with
  or without the monitor alike.
- A fresh function (traced at its first call, under the wrappers) gets its
  optimizer built first when Keras would build it inside the trace and an
  eager build gives the same values, so that `tf.function` traces once
  instead of twice (`keras_hooks.build_optimizer_before_tracing`).
- While the `fit` runs, the function is wrapped in a guard that calls it
  unchanged, with the capture's wrappers in place for the duration of the
  call only: outside a train step (validation, `predict` in a callback, an
  error raised anywhere) nothing of kgrad is on the model's layers and
  optimizers. If the step raises (anything but the end of the data), the
  monitor lets go of the model before the error reaches the user. If the
  guard is called outside a batch of its monitor (a later `fit` without the
  monitor, after an error elsewhere stopped the monitored one), it steps
  aside for good.
- A function traced while no histogram could be due (`histograms_every`
  off) has no histogram code in it: when histograms are due later, it is
  retraced under the same proof (`histograms_ready`); otherwise norms go on
  and the monitor says why, once.

Example:

```python
watch = TrainFunctionWatch(model, capture, on_abandon=monitor_cleanup)
watch.begin()  # in on_train_begin
watch.before_call()  # in on_train_batch_begin
watch.end()  # in on_train_end
```
"""

import weakref

import tensorflow as tf

from kgrad import checks
from kgrad.monitor.train_function import keras_hooks, same_trace

_END_OF_DATA = (StopIteration, tf.errors.OutOfRangeError)


class _Traced:
    """The capture under whose wrappers Keras traced a function, and how.

    Kept on Keras's function itself (`_kgrad_traced`), so that it lives as
    long as the function and no longer: a later monitor proves a retrace
    against a trace under the same wrappers, with or without the histogram
    code (`histograms`: `{False}`, `{True}` or both).
    """

    def __init__(self, capture):
        self.capture = capture
        self.histograms = set()


_WHAT_TO_DO = (
    "Call `model.compile(...)` or `model.make_train_function(force=True)` "
    "before `fit` to log them."
)


class TraceLog:
    """What kgrad knows of the traces of Keras's train functions.

    Lives as long as the capture; the traced step calls `traced()` at each
    trace of a wrapped `optimizer.apply` and reads `histograms`; the watch
    records which functions ran under the wrappers and which lack the
    histogram code.

    Attributes:
        histograms: Whether functions traced from now on hold the histogram
            code (set by the monitor before each call).
        traces: `apply` calls traced under the wrappers.
    """

    def __init__(self):
        self.histograms = True
        self.traces = 0
        self._known = weakref.WeakSet()  # ran under the wrappers
        self._without_histograms = weakref.WeakSet()

    def traced(self):
        """Counts one trace of a wrapped `apply` (called while tracing)."""
        self.traces += 1

    def ran(self, function, traced_now):
        """Records that `function` ran under the wrappers (traced if `traced_now`).

        A function with one trace (input signature) without the histogram
        code stays without it: only a new function (a retrace) has it again.
        """
        self._known.add(function)
        if traced_now and not self.histograms:
            self._without_histograms.add(function)

    def known(self, function):
        """Whether `function` ran under the wrappers before."""
        return function in self._known

    def lacks_histograms(self, function):
        """Whether a trace of `function` left the histogram code out."""
        return function in self._without_histograms


class TrainFunctionWatch:
    """Keeps a monitored `fit` on Keras's own train function.

    Args:
        model: The model being fit.
        capture: Its installed `kgrad.monitor.step.host.GradientCapture`.
        on_abandon: Called without arguments to remove everything of kgrad
            from the model (the step raised, or the fit ended elsewhere).
    """

    def __init__(self, model, capture, on_abandon):
        self.model = model
        self.capture = capture
        self.on_abandon = on_abandon
        self.blind = False
        self._guard = None
        self._expecting = False
        self._warned_histograms = False
        self._refused = None  # the function a histogram retrace was refused

    def begin(self):
        """Adopts the function `fit` is about to call; guards it."""
        model = self.model
        self.blind = False
        remove_stale_guard(model)  # a fit stopped outside its step
        if keras_hooks.train_function_traced(model.train_function) and not self._ours():
            why = self._retrace_if_same()
            if why is not None:
                self.blind = True
                checks.warn(
                    "kgrad: Keras traced this model's train function before the "
                    f"monitor was attached, and a new trace could train differently "
                    f"({why}): kgrad keeps Keras's function and logs no gradients "
                    f"in this fit. {_WHAT_TO_DO}"
                )
        if not keras_hooks.train_function_traced(model.train_function):
            keras_hooks.build_optimizer_before_tracing(model)
        self._install_guard()

    def before_call(self):
        """Marks the next call as this monitor's; guards a function Keras remade."""
        if not guarded(self.model, self._guard):
            self._install_guard()
        self._expecting = True

    def end(self):
        """Puts Keras's function back as it is now (the guard goes)."""
        unguard_train_function(self.model, self._guard)
        self._guard = None
        self._expecting = False

    def histograms_ready(self):
        """Whether the next call can compute histograms; retraces it if need be.

        Call it with `capture.trace_log.histograms` set. A function traced without
        the histogram code is made anew by Keras (traced at its next call)
        when `same_trace` proves that trains the same; otherwise histograms
        wait for the next compile, and the monitor says so once.
        """
        function = unguarded(self.model.train_function)
        if not self.capture.trace_log.lacks_histograms(function):
            return True
        if function is not self._refused:
            why = self._retrace_if_same()
            if why is None:
                self._install_guard()
                return True
            self._refused = function
            if not self._warned_histograms:
                self._warned_histograms = True
                checks.warn(
                    "kgrad: histograms are due, but this train function was "
                    "traced while `histograms_every` was off, and a new trace "
                    f"with their code could train differently ({why}): norms "
                    "go on without histograms. Set `histograms_every` before "
                    "the first `fit`, or call `model.compile(...)`, to log them."
                )
        return False

    def _retrace_if_same(self):
        """Has Keras make its function anew if that provably trains the same.

        Returns:
            `None` when Keras's function was made anew (traced at its next
            call, under the wrappers); else why not, Keras's function kept.
        """
        model = self.model
        old = unguarded(model.train_function)
        try:
            random_ops = same_trace.kernel_random_ops(old)
        except Exception:  # traces that cannot be read prove nothing
            return "its traces could not be read"
        if random_ops:
            names = ", ".join(random_ops[:3])
            return f"stateful random ops would restart their streams: {names}"
        traced = getattr(old, "_kgrad_traced", None)
        # Traced as `old` was: under the same capture's wrappers (with or
        # without the histogram code: a function may hold traces of both), or
        # without any.
        capture = traced.capture if traced is not None else self.capture
        variants = (None,)
        if traced is not None:  # no statistics traced: the flag changes nothing
            variants = tuple(sorted(traced.histograms)) or (False,)
        probes = []
        for variant in variants:
            keras_hooks.retrace_train_function(model)
            functions = keras_hooks.train_tf_functions(model.train_function)
            probes.append((functions, variant))

        def candidates(index, args, kwargs):
            for functions, variant in probes:
                if variant is not None:
                    capture.trace_log.histograms = variant
                yield functions[index].get_concrete_function(*args, **kwargs)

        histograms = capture.trace_log.histograms
        try:
            if traced is not None:
                capture.install()
            same = same_trace.same_traces(old, candidates)
        except Exception:  # a trace that fails to compare proves nothing
            same = False
        finally:
            capture.uninstall()
            capture.trace_log.histograms = histograms
        if not same:
            model.train_function = old
            return (
                "the Python state it was traced with changed: a layer's "
                "attribute, a `trainable` flag, or what a custom `train_step` "
                "reads"
            )
        keras_hooks.retrace_train_function(model)
        return None

    def _ours(self):
        """Whether the function ran under this capture's wrappers before."""
        return self.capture.trace_log.known(self.model.train_function)

    def _install_guard(self):
        if self.model.train_function is None:
            return
        self._guard = guard_train_function(self.model, self._call)

    def _call(self, inner, call):
        if not self._expecting:  # called outside this monitor's fit
            self.on_abandon()
            return call()
        self._expecting = False
        traces = self.capture.trace_log.traces
        self.capture.install()
        try:
            outputs = call()
        except _END_OF_DATA:
            raise
        except BaseException:
            self.on_abandon()
            raise
        finally:
            self.capture.uninstall()
        if self.blind:  # Keras's function without statistics, kept as is
            return outputs
        # Traced (if at all) under the wrappers: its statistics are in it.
        log = self.capture.trace_log
        traced_now = log.traces != traces
        log.ran(inner, traced_now)
        traced = getattr(inner, "_kgrad_traced", None)
        if traced is None:
            traced = _Traced(self.capture)
            try:
                inner._kgrad_traced = traced
            except AttributeError:  # not a Python function: never proven
                pass
        if traced_now:
            traced.histograms.add(bool(log.histograms))
        return outputs


def guard_train_function(model, on_call):
    """Wraps Keras's current train function in `guard` (same results).

    `on_call(inner, call)` runs `call()` (Keras's function `inner` on the
    iterator) and may catch what it raises. Keras may replace the function at any time
    (`make_train_function(force=True)`, a compile): `guarded` says whether
    the guard is still the one in place.

    Returns:
        The guard installed as `model.train_function`.
    """
    inner = model.train_function

    def guard(iterator):
        return on_call(inner, lambda: inner(iterator))

    guard._kgrad_inner = inner
    model.train_function = guard
    return guard


def guarded(model, guard):
    """Whether `guard` is still `model.train_function`."""
    return guard is not None and model.train_function is guard


def unguard_train_function(model, guard):
    """Puts Keras's function back if `guard` is still in place."""
    if guarded(model, guard):
        model.train_function = guard._kgrad_inner


def remove_stale_guard(model):
    """Puts Keras's function back from a guard a stopped `fit` left behind."""
    inner = getattr(model.train_function, "_kgrad_inner", None)
    if inner is not None:
        model.train_function = inner


def unguarded(function):
    """Keras's own train function: `function`, or the one a kgrad guard wraps."""
    return getattr(function, "_kgrad_inner", function)
