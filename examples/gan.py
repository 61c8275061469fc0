"""A GAN with two optimizers in a custom `train_step`, monitored with no extra argument.

The keras.io DCGAN pattern: `compile()` gets no optimizer, the model holds a
discriminator optimizer and a generator optimizer and its `train_step` calls
`apply_gradients` on each. GradientMonitor finds both optimizers on the
model and logs the gradients each one applies to a run of its own,
`LOGDIR/train/d_optimizer` and `LOGDIR/train/g_optimizer` (two runs on the
same TensorBoard charts). Small dense networks on the bundled 8x8 digits, no
download.

Run: python examples/gan.py [LOGDIR] [--quick]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from kgrad import GradientMonitor, data  # noqa: E402

LATENT = 16


class GAN(keras.Model):
    """Generator and discriminator trained in turn, as in the keras.io DCGAN guide."""

    def __init__(self, generator, discriminator):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real):
        batch = tf.shape(real)[0]
        fake = self.generator(keras.random.normal((batch, LATENT)))
        images = tf.concat([fake, real], axis=0)
        labels = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(images))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights, strict=True)
        )
        with tf.GradientTape() as tape:
            fake = self.generator(keras.random.normal((batch, LATENT)))
            g_loss = self.loss_fn(tf.zeros((batch, 1)), self.discriminator(fake))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(
            zip(grads, self.generator.trainable_weights, strict=True)
        )
        return {"d_loss": d_loss, "g_loss": g_loss}


def build_gan():
    generator = keras.Sequential(
        [
            keras.Input((LATENT,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ],
        name="discriminator",
    )
    gan = GAN(generator, discriminator)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3),
        g_optimizer=keras.optimizers.Adam(1e-3),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return gan


def main(log_dir, quick=False):
    keras.utils.set_random_seed(0)
    images = data.load("digits_flat").x_train
    gan = build_gan()
    gan.fit(
        images[:256] if quick else images,
        batch_size=32,
        epochs=1 if quick else 5,
        callbacks=[GradientMonitor(log_dir)],
        verbose=0 if quick else "auto",
    )
    print(f"One run per optimizer: {log_dir}/train/d_optimizer and g_optimizer")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", nargs="?", default="logs/gan")
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    args = parser.parse_args()
    main(args.log_dir, args.quick)
