"""Keras's train function: the internals kgrad touches, and the guard around it.

keras_hooks.py lists every Keras and TensorFlow internal the package uses;
hooks_check.py's `check()` probes every one; function_watch.py guards
Keras's train function through a `fit` (retraces, the trace log).
"""
