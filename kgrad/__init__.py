"""kgrad: see the gradients of Keras 3 models in TensorBoard."""
