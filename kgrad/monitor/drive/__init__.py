"""Drive: `GradientMonitor`, the Keras callback, and what it decides each batch.

The callback (callback.py) picks the logged steps (schedule.py), arms the
capture, hands what it read to the step logger and prints findings to the
user (findings_channel.py). backends.py is the seam between TensorFlow and
JAX: what the callback builds on each. It imports every other room; none
imports it.
"""
