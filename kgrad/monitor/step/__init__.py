"""In the step: what runs inside Keras's train step and the host side around it.

The capture (capture.py) installs the traced statistics into the optimizer's
apply, computes them in the graph (stats.py, increments.py, temporal.py,
forward_probes.py), packs them into one vector per optimizer (packed.py,
records.py) and reads it once per logged step on the host. On Keras's JAX
backend, jax_capture.py does the same in Keras's jitted step, with the JAX
statistics of jax_stats.py; both pack with layout.py.
"""
