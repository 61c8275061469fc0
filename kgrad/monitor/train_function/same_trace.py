"""Whether a new trace of Keras's train function trains as the old one does.

Keras traces its train function once and keeps it: what the Python code read
while tracing (a `Dropout.rate`, an attribute a custom `train_step` reads,
which variables are trainable) is frozen into the graph, and a legacy
stateful random op (`tf.random.normal` without a generator) keeps its stream
in its kernel, which a new trace starts again from the beginning. kgrad
retraces a function Keras traced before it (to put the statistics in), or a
function traced without the histogram code (to add it), only when a new
trace provably trains the same:

- `kernel_random_ops(function)`: the seeded stateful random ops of its
  traces (any op with `seed` and `seed2` attributes: `RandomStandardNormal`,
  `RandomUniform`, `TruncatedNormal`, ...). Any one of them refuses the
  retrace. Keras's own layers draw from stateless ops seeded by a
  `SeedGenerator` variable, whose state survives a retrace.
- `same_traces(old, candidates)`: traces a function Keras made now (under
  the same wrappers as `old` was) for every input signature `old` was traced
  for, and compares each pair of graphs, nested functions included, with
  their names renumbered (TensorFlow numbers functions and captures by
  global counters), and the captured tensors themselves (the same
  variables, by identity; equal values for other captured tensors).

Equal graphs over the same variables, without kernel-state random ops,
compute the same training step. `tests/test_same_trace.py` checks each
refusal and `tests/test_unchanged.py` that a retrace allowed here trains bit
for bit as Keras's kept function.

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile(optimizer="sgd", loss="mse")
>>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
>>> old = model.train_function
>>> new = model.make_train_function(force=True) or model.train_function
>>> kernel_random_ops(old), same_traces(old, candidates_of(new))
([], True)
"""

import numpy as np
from tensorflow.core.framework import function_pb2

from kgrad.monitor.train_function import keras_hooks


def kernel_random_ops(function):
    """`op type (node name)` of each seeded stateful random op `function` traced."""
    found = []
    for concrete in _concretes(function):
        graph = concrete.graph.as_graph_def()
        nodes = [*graph.node]
        for library_function in graph.library.function:
            nodes.extend(library_function.node_def)
        for node in nodes:
            if "seed" in node.attr and "seed2" in node.attr:
                found.append(f"{node.op} ({node.name})")
    return sorted(set(found))


def same_traces(old, candidates, interchangeable=frozenset()):
    """Whether a trace made now equals each trace of `old`.

    Args:
        old: Keras's traced train function.
        candidates: `candidates(index, args, kwargs)` yields traces (concrete
            functions, never run) made now of the `index`-th `tf.function` of
            a function Keras makes anew, for the input signature `args,
            kwargs`: one per way `old` may have been traced (e.g. with and
            without kgrad's histogram code).
        interchangeable: `id`s of captured resource handles that may stand
            for each other at the same place (kgrad's own variables, of the
            capture that traced `old` and of the one tracing now). Defaults
            to none.

    Returns:
        `True` when every trace of `old` has an equal candidate over the same
        captured tensors.
    """
    for index, old_function in enumerate(keras_hooks.train_tf_functions(old)):
        for concrete in keras_hooks.concrete_functions(old_function):
            args, kwargs = concrete.structured_input_signature
            if not any(
                _same_captures(concrete, new, interchangeable)
                and _canonical(concrete) == _canonical(new)
                for new in candidates(index, args, kwargs)
            ):
                return False
    return True


def candidates_of(function):
    """`candidates` for `same_traces`: the traces of `function`, made on demand."""
    functions = keras_hooks.train_tf_functions(function)

    def candidates(index, args, kwargs):
        yield functions[index].get_concrete_function(*args, **kwargs)

    return candidates


def _concretes(function):
    for tf_function in keras_hooks.train_tf_functions(function):
        yield from keras_hooks.concrete_functions(tf_function)


def _same_captures(one, other, interchangeable):
    ours, theirs = one.captured_inputs, other.captured_inputs
    if len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs, strict=True):
        if a is b or (id(a) in interchangeable and id(b) in interchangeable):
            continue
        if a.dtype != b.dtype or a.dtype.name == "resource":
            return False  # another variable (or resource) than before
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            return False
    return True


def _canonical(concrete):
    """The graph of `concrete` as text, independent of TensorFlow's naming.

    Nodes are renamed by their place in their function, functions by the
    order in which they are first called: two traces of the same code give
    the same text, whatever names the global counters and name scopes handed
    out (`sgd_1/...` in a function whose optimizer was built in the trace).
    """
    graph = concrete.graph.as_graph_def()
    library = {f.signature.name: f for f in graph.library.function}
    order = []

    def function_name(name):
        if name not in library:
            return name
        if name not in order:
            order.append(name)
        return f"function_{order.index(name)}"

    parts = [_canonical_nodes(graph.node, (), function_name)[0]]
    done = 0
    while done < len(order):
        parts.append(_canonical_function(library[order[done]], function_name))
        done += 1
    return "\n".join(parts)


def _canonical_function(function, function_name):
    signature = function.signature
    args = [arg.name for arg in signature.input_arg]
    text, names, ref = _canonical_nodes(function.node_def, args, function_name)
    head = function_pb2.FunctionDef()
    head.signature.CopyFrom(signature)
    head.signature.name = ""
    for arg in head.signature.input_arg:
        arg.name = names[arg.name]
    head.signature.control_output[:] = sorted(
        names.get(n, n) for n in head.signature.control_output
    )
    returns = sorted((key, ref(value)) for key, value in function.ret.items())
    controls = sorted(
        (names.get(key, key), names.get(value, value))
        for key, value in function.control_ret.items()
    )
    arg_attrs = [
        (index, _attrs_text(function.arg_attr[index].attr, names, function_name))
        for index in sorted(function.arg_attr)
    ]
    attrs = _attrs_text(function.attr, names, function_name)
    return f"{head}\n{returns}\n{controls}\n{arg_attrs}\n{attrs}\n{text}"


def _attrs_text(attrs, names, function_name):
    """A map of `AttrValue`s as text, keys sorted, names canonical."""
    out = []
    for key in sorted(attrs):
        value = type(attrs[key])()
        value.CopyFrom(attrs[key])
        _rename_attr(value, names, function_name)
        out.append(f"{key}: {value}")
    return "\n".join(out)


def _canonical_nodes(nodes, args, function_name):
    """`(text, names, ref)`: `nodes` renamed by place, with their renaming."""
    names = {name: f"arg_{k}" for k, name in enumerate(args)}
    names.update({node.name: f"node_{k}" for k, node in enumerate(nodes)})

    def ref(text):
        control = text.startswith("^")
        head, sep, tail = text.lstrip("^").partition(":")
        return ("^" if control else "") + names.get(head, head) + sep + tail

    out = []
    for node in nodes:
        inputs = [ref(name) for name in node.input]
        attrs = _attrs_text(node.attr, names, function_name)
        out.append(f"{names[node.name]} = {node.op}{inputs} {node.device}\n{attrs}")
    return "\n".join(out), names, ref


def _rename_attr(value, names, function_name):
    def rename(raw):
        text = raw.decode("utf-8", "replace")
        if text.startswith("CustomGradient-"):  # numbered by a global counter
            return b"CustomGradient"
        prefix = "loc:@" if text.startswith("loc:@") else ""
        return (prefix + names.get(text[len(prefix) :], text[len(prefix) :])).encode()

    kind = value.WhichOneof("value")
    if kind == "func":
        value.func.name = function_name(value.func.name)
        for key in sorted(value.func.attr):
            _rename_attr(value.func.attr[key], names, function_name)
    elif kind == "s":
        value.s = rename(value.s)
    elif kind == "list":
        value.list.s[:] = [rename(raw) for raw in value.list.s]
        for func in value.list.func:
            func.name = function_name(func.name)
