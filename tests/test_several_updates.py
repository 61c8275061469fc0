"""An optimizer applied several times per train step (keras.io WGAN-GP's critic).

What is logged, exactly: the critic's run is at its own update count, and a
logged train step logs the first of the critic's 3 updates, the one at the
weights the step started from (a channel captures once per arming), at update
count 1, 4, 7, ...; `norms_every` counts train steps.
"""

import keras
import numpy as np
import tensorflow as tf

from kgrad import GradientMonitor
from tests.support.gan import (
    GAN,
    discriminator_step,
    gan_data,
    generator_step,
    make_gan,
)

CRITIC_UPDATES = 3


class WGAN(GAN):
    """The WGAN-GP schedule: the critic is updated 3 times per train step."""

    critic_updates = CRITIC_UPDATES


def replay(gan, real, noise, steps, batch=8):
    """Every critic update's gradient norm, and the generator's, per train step."""
    initial = [v.numpy() for v in gan.variables]
    critic, generator = [], []
    for step in range(steps):
        i = step % (len(real) // batch)
        r, z = real[i * batch : (i + 1) * batch], noise[i * batch : (i + 1) * batch]
        for _ in range(CRITIC_UPDATES):
            _, grads = discriminator_step(gan, r, z)
            for v, g in zip(gan.discriminator.trainable_weights, grads, strict=True):
                v.assign_sub(0.05 * g)
            critic.append(float(tf.linalg.global_norm(grads)))
        _, grads = generator_step(gan, z)
        for v, g in zip(gan.generator.trainable_weights, grads, strict=True):
            v.assign_sub(0.02 * g)
        generator.append(float(tf.linalg.global_norm(grads)))
    for v, value in zip(gan.variables, initial, strict=True):
        v.assign(value)
    return critic, generator


def test_the_critic_logs_the_first_of_its_updates_at_its_update_count(tmp_path, events):
    base = make_gan()
    gan = WGAN(base.discriminator, base.generator)
    gan.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.02), base.loss_fn)
    real, noise = gan_data()
    critic, generator = replay(gan, real, noise, steps=6)
    monitor = GradientMonitor(
        tmp_path, norms_every=2, histograms_every=0, first_steps=0, verbose=0
    )
    gan.fit(
        real,
        noise,
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[monitor],
    )
    d = events(tmp_path / "train" / "d_optimizer")["grad_norm/global"]
    g = events(tmp_path / "train" / "g_optimizer")["grad_norm/global"]
    # norms_every=2 counts train steps: steps 1, 2, 4, 6 are logged. The critic's
    # run is at its update count, 3 per train step, with the first update's values.
    train_steps = [1, 2, 4, 6]
    assert [s for s, _ in d] == [3 * t - 2 for t in train_steps]
    np.testing.assert_allclose(
        [float(v) for _, v in d], [critic[3 * t - 3] for t in train_steps], rtol=1e-5
    )
    assert [s for s, _ in g] == train_steps
    np.testing.assert_allclose(
        [float(v) for _, v in g], [generator[t - 1] for t in train_steps], rtol=1e-5
    )
    # The last two of each step's three critic updates are not logged.
    last_updates = [critic[3 * t - 1] for t in train_steps]
    assert not np.allclose([float(v) for _, v in d], last_updates, rtol=1e-5)
