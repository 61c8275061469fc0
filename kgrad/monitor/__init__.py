"""Everything that runs during training and touches Keras and TensorFlow.

`GradientMonitor` (callback.py) drives the capture (capture.py, with
activation_probes.py and temporal.py) through the Keras internals listed in
keras_hooks.py. The statistics are computed in the graph (stats.py), packed
into one vector per optimizer (packed.py), read once per logged step and
written as TensorBoard events (step_logger.py, run_log.py, summaries.py,
event_writer.py) from the training thread or a background worker (worker.py),
on the steps the schedule picks (schedule.py), for the variables the tag
filter keeps (tag_filter.py). optimizers.py finds the optimizers a train step
may apply (one capture channel and one run directory each), steps.py keeps
steps from going backwards, naming.py keeps tag names from being `None` or
repeated, ownership.py keeps one monitor per `fit`. Findings reach the user
through findings_channel.py; run_files.py checks `log_dir` and draws the
figures, attributes.py makes public attributes act or refuse, requirements.py
checks TensorFlow at import, replicas.py sums across replicas.
"""

from kgrad.monitor.requirements import check_tensorflow

check_tensorflow()
