"""Reading kgrad runs back: event files, diagnosis, tables and plots.

Nothing in this folder imports TensorFlow or Keras (a test checks every
module), so `kgrad report` runs in any environment that has TensorBoard.
"""
