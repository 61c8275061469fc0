"""The model zoo: textbook gradient problems and their fixes, one call away.

Example:
    ```python
    from kgrad import zoo

    model = zoo.build("resnet18_plain")
    model = zoo.build("resnet18", input_shape=(8, 8, 1), num_classes=10)
    zoo.list("resnet*")
    print(zoo.describe("mlp_sigmoid"))
    zoo.spec("lstm").data  # "adding"
    ```
"""

from kgrad.lab.zoo import cnn, mlp, resnet, rnn, transformer
from kgrad.lab.zoo._registry import ModelSpec, build, describe, register, spec
from kgrad.lab.zoo._registry import list_models as list

__all__ = [
    "ModelSpec",
    "build",
    "cnn",
    "describe",
    "list",
    "mlp",
    "register",
    "resnet",
    "rnn",
    "spec",
    "transformer",
]
