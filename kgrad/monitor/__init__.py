"""Everything that runs during training and touches Keras (TensorFlow or JAX).

Four rooms, arrows one way (drive -> log -> step -> train_function):
- `drive/`: `GradientMonitor` (the callback), the schedule of logged steps,
  the backend's side (TensorFlow or JAX), findings to the user.
- `log/`: the step logger, handed what the capture read, writes event files.
- `step/`: the capture in Keras's train step, its statistics and packing.
- `train_function/`: every Keras/TensorFlow internal kgrad touches
  (keras_hooks.py; jax_hooks.py on JAX) and the guard around Keras's train
  function.
requirements.py checks TensorFlow at import (JAX under KERAS_BACKEND=jax).
docs/ARCHITECTURE.md draws them.
"""

from kgrad.monitor.requirements import check_framework

check_framework()
