"""Keras's train function: the internals kgrad touches, and the guard around it.

keras_hooks.py lists every Keras and TensorFlow internal of the TensorFlow
path (jax_hooks.py those of the JAX path); hooks_check.py's `check()` probes
every one of keras_hooks'; function_watch.py guards Keras's train function
through a `fit`, and same_trace.py proves that a retrace trains the same.
"""
