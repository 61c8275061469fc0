"""Drive: `GradientMonitor`, the Keras callback, and what it decides each batch.

The callback (callback.py) picks the logged steps (schedule.py), arms the
capture its backend's side gives it (backends.py: TensorFlow or JAX), hands
what it read to the step logger and prints findings to the user
(findings_channel.py). It imports every other room; none imports it.
"""
