"""The framework kgrad's training side needs, checked once at import.

`backend()` names Keras's backend. Tested in tests/test_install.py.

kgrad does not make pip install TensorFlow (an environment with
`tensorflow-cpu` or a vendor build would get a second copy), so a missing or
too old TensorFlow is reported here, with the command that fixes it. Under
`KERAS_BACKEND=jax` the monitor needs JAX instead (`pip install "kgrad[jax]"`),
and no TensorFlow.

Example:

>>> check_tensorflow()  # silent when TensorFlow 2.16.1 or newer (< 3) is there
"""

OLDEST = (2, 16, 1)
_FIX = 'pip install "kgrad[tensorflow]" (or tensorflow-cpu>=2.16.1,<3)'


def check_framework():
    """Checks the framework of Keras's backend: JAX on JAX, else TensorFlow."""
    import keras

    if keras.backend.backend() == "jax":
        try:
            import jax  # noqa: F401
        except ImportError as error:
            raise ImportError(
                'kgrad\'s GradientMonitor on JAX needs JAX: pip install "kgrad[jax]".'
            ) from error
        return
    check_tensorflow()


def check_tensorflow(version=None):
    """Raises `ImportError` unless TensorFlow >= 2.16.1 and < 3 is importable.

    Args:
        version: The version to judge; the installed TensorFlow's if `None`.
            Defaults to `None`.
    """
    if version is None:
        try:
            import tensorflow as tf
        except ImportError as error:
            raise ImportError(
                f"kgrad's GradientMonitor needs TensorFlow 2.16.1 or newer: {_FIX}."
            ) from error
        version = tf.__version__
    numbers = tuple(int(part) for part in _release(version).split(".")[:3])
    if not OLDEST <= numbers < (3,):
        raise ImportError(
            f"kgrad's GradientMonitor needs TensorFlow >=2.16.1,<3; found {version}: "
            f"{_FIX}."
        )


def _release(version):
    digits = ""
    for char in version:
        if not (char.isdigit() or char == "."):
            break
        digits += char
    return digits.rstrip(".") or "0"


def backend():
    """The name of the Keras backend (`"tensorflow"`, `"jax"`, `"torch"`, ...)."""
    import keras

    return keras.backend.backend()
