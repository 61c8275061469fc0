"""A GAN with two optimizers in its own `train_step` (the keras.io DCGAN
pattern), replayable: the noise comes with the data."""

import keras
import numpy as np
import tensorflow as tf

BCE = keras.losses.BinaryCrossentropy(from_logits=True)
LATENT = 3


class GAN(keras.Model):
    """The keras.io DCGAN pattern: `compile()` without an optimizer, two inside.

    The discriminator is updated `critic_updates` times per train step (WGAN-GP
    updates its critic 3 times).
    """

    critic_updates = 1

    def __init__(self, discriminator, generator):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, data):
        real, noise = data  # x, y: the noise comes with the data, replayable
        for _ in range(self.critic_updates):  # unrolled when traced
            d_loss, d_grads = discriminator_step(self, real, noise)
            self.d_optimizer.apply_gradients(
                zip(d_grads, self.discriminator.trainable_weights, strict=True)
            )
        g_loss, g_grads = generator_step(self, noise)
        self.g_optimizer.apply_gradients(
            zip(g_grads, self.generator.trainable_weights, strict=True)
        )
        return {"d_loss": d_loss, "g_loss": g_loss}


def discriminator_step(gan, real, noise):
    fake = gan.generator(noise)
    images = tf.concat([fake, real], 0)
    labels = tf.concat([tf.ones_like(real[:, :1]), tf.zeros_like(real[:, :1])], 0)
    with tf.GradientTape() as tape:
        loss = gan.loss_fn(labels, gan.discriminator(images))
    return loss, tape.gradient(loss, gan.discriminator.trainable_weights)


def generator_step(gan, noise):
    with tf.GradientTape() as tape:
        predictions = gan.discriminator(gan.generator(noise))
        loss = gan.loss_fn(tf.zeros_like(predictions), predictions)
    return loss, tape.gradient(loss, gan.generator.trainable_weights)


def make_gan():
    discriminator = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="relu", name="d_hidden"),
            keras.layers.Dense(1, name="d_out"),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.Input((LATENT,)),
            keras.layers.Dense(5, activation="relu", name="g_hidden"),
            keras.layers.Dense(4, name="g_out"),
        ],
        name="generator",
    )
    gan = GAN(discriminator, generator)
    gan.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.02), BCE)
    return gan


def gan_data():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(24, 4)).astype("float32")
    noise = rng.normal(size=(24, LATENT)).astype("float32")
    return real, noise
