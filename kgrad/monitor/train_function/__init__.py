"""Keras's train function: the internals kgrad touches, and the guard around it.

keras_hooks.py lists every Keras and TensorFlow internal the package uses,
with a `check()` that verifies them all; function_watch.py guards Keras's
train function (retraces, the marker of kgrad's own wrapper). jax_hooks.py
lists the internals of the JAX path (and the message channel every backend
uses), with its own `check()`; it needs no TensorFlow.
"""
