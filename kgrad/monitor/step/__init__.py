"""In the step: what runs inside Keras's train step and the host side around it.

host.py installs the TensorFlow capture into the optimizers' `apply`, arms a
step and reads it; traced.py is what the trace of `apply` computes (statistics
from stats.py, increments.py, temporal.py, forward_probes.py and
per_example.py), packed into one vector per optimizer (packed.py, laid out by
layout.py, named by naming.py). The backend's parts sit behind
backend_tensorflow.py; jax_capture.py and jax_stats.py are the JAX capture.
optimizers.py finds the optimizers, loss_probe.py reads the loss of a step.
"""
