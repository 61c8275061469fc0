"""Keras's own train function serves every step, traced once; statistics when logged."""

import keras
import pytest
import tensorflow as tf

from kgrad import GradientMonitor
from kgrad.monitor.step import backend_tensorflow
from kgrad.monitor.train_function import keras_hooks
from tests.support import optimizers

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class CountTraces(keras.layers.Layer):
    """Identity that counts its Python calls: one per trace of the train step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def call(self, x):
        self.calls += 1
        return x


def fresh_model(jit_compile=False):
    counter = CountTraces()
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu"),
            counter,
            keras.layers.Dense(3),
        ]
    )
    model.compile(optimizer="adam", loss=LOSS, jit_compile=jit_compile)
    counter.calls = 0  # the Sequential's build called it once
    return model, counter


def replayed_global_norms(model, x, y, steps, batch):
    """Global gradient norms of `steps` Adam steps replayed with a tape."""
    optimizer = keras.optimizers.Adam()
    norms = []
    for step in range(steps):
        xb, yb = (
            x[step * batch : (step + 1) * batch],
            y[step * batch : (step + 1) * batch],
        )
        with tf.GradientTape() as tape:
            loss = LOSS(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        norms.append(float(tf.linalg.global_norm(grads)))
        optimizer.apply(grads, model.trainable_variables)
    return norms


def test_a_fresh_fit_traces_its_train_step_once_and_logs_exact_gradients(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model, counter = fresh_model()
    twin, _ = fresh_model()
    twin.set_weights(model.get_weights())
    monitor = GradientMonitor(tmp_path, norms_every=3, first_steps=0, figure_secs=None)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, callbacks=[monitor])
    assert counter.calls == 1  # steps 1-8 logged or not: one trace
    logged = dict(events(tmp_path / "train")["grad_norm/global"])
    assert sorted(logged) == [1, 3, 6]
    expected = replayed_global_norms(twin, x, y, steps=8, batch=4)
    for step in (1, 3, 6):
        assert float(logged[step]) == pytest.approx(expected[step - 1], rel=1e-5)
    # Steps that were not logged ran no statistics: the third arming captured.
    assert monitor._capture.channels[0].stats.numpy()[0] == 3.0


def test_jit_compiled_model_logs_exact_gradients_from_its_own_xla_function(
    tmp_path, events, classification_data
):
    x, y = classification_data
    model, counter = fresh_model(jit_compile=True)
    plain, _ = fresh_model(jit_compile=True)
    twin, _ = fresh_model()
    plain.set_weights(model.get_weights())
    twin.set_weights(model.get_weights())
    monitor = GradientMonitor(tmp_path, norms_every=3, first_steps=0, figure_secs=None)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, callbacks=[monitor])
    plain.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert counter.calls == 1  # one XLA function, logged steps or not: no twin
    for monitored, unmonitored in zip(model.weights, plain.weights, strict=True):
        assert (monitored.numpy() == unmonitored.numpy()).all()  # the same XLA
    logged = dict(events(tmp_path / "train")["grad_norm/global"])
    expected = replayed_global_norms(twin, x, y, steps=8, batch=4)
    for step in (1, 3, 6):
        assert float(logged[step]) == pytest.approx(expected[step - 1], rel=1e-5)


def lowered(function, *args):
    """Whether each `If` op of `function`'s graph is lowered to Switch/Merge."""
    graph = function.get_concrete_function(*args).graph
    out = []
    for op in graph.get_operations():
        if op.type in ("If", "StatelessIf"):
            try:
                out.append(op.get_attr("_lower_using_switch_merge"))
            except ValueError:  # not set: kept as an `If` op
                out.append(False)
    return out


def test_branch_cond_keeps_its_if_op_where_tf_cond_lowers_it():
    @tf.function
    def kept(flag, x):
        return backend_tensorflow.cond(flag, lambda: x * 2.0, lambda: x)

    @tf.function
    def inlined(flag, x):
        return tf.cond(flag, lambda: x * 2.0, lambda: x)

    args = (tf.constant(True), tf.constant(3.0))
    assert lowered(kept, *args) == [False]
    assert lowered(inlined, *args) == [True]  # the switch is left as it was
    assert float(kept(*args)) == 6.0
    assert float(kept(tf.constant(False), tf.constant(3.0))) == 3.0


def test_optimizer_is_built_before_tracing_only_for_keras_own_train_step():
    class Custom(keras.Model):
        def train_step(self, data):
            return super().train_step(data)

    inputs = keras.Input((6,))
    custom = Custom(inputs, keras.layers.Dense(3)(inputs))
    own, _ = fresh_model()
    for model in (custom, own):
        model.compile(optimizer="adam", loss=LOSS)
    # a custom step may apply the optimizer to other variables: Keras builds it
    assert not keras_hooks.build_optimizer_before_tracing(custom)
    assert not custom.optimizer.built
    assert keras_hooks.build_optimizer_before_tracing(own)
    momenta = [v for v in own.optimizer.variables if v.path.endswith("_momentum")]
    assert len(momenta) == len(own.trainable_variables)


@pytest.mark.parametrize(
    "optimizer, prebuilt",
    [
        (lambda: keras.optimizers.Muon(), True),
        (lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.Ftrl()), True),
        (lambda: type("MyAdam", (keras.optimizers.Adam,), {})(), True),
        *[(make, False) for _, make in optimizers.assigning_builds()],
        *[
            (lambda make=make: keras.optimizers.LossScaleOptimizer(make()), False)
            for _, make in optimizers.assigning_builds()
        ],
    ],
)
def test_only_optimizers_whose_build_makes_constants_are_built_before_tracing(
    optimizer, prebuilt
):
    model, _ = fresh_model()
    model.compile(optimizer=optimizer(), loss=LOSS)
    assert keras_hooks.build_optimizer_before_tracing(model) is prebuilt
    assert model.optimizer.built is prebuilt
