"""In the step: what runs inside Keras's train step and the host side around it.

host.py installs the capture into the optimizers' `apply`, arms a step and
reads it; traced.py is what the trace of `apply` computes (statistics from
stats.py, increments.py, temporal.py, forward_probes.py and per_example.py),
packed into one vector per optimizer (packed.py: the layout and its records).
The backend's parts sit behind backend_tensorflow.py (the seam);
optimizers.py finds the optimizers, loss_probe.py reads the loss of a step.
"""
