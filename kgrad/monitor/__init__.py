"""Everything that runs during training and touches Keras and TensorFlow.

`GradientMonitor` (callback.py) drives the capture (capture.py) through the
Keras internals listed in keras_hooks.py; the statistics are computed in the
graph (stats.py), packed into one vector (packed.py), read once per logged
step and written as TensorBoard events (summaries.py, event_writer.py) from
the training thread or a background worker (worker.py), on the steps the
schedule picks (schedule.py), for the variables the tag filter keeps
(tag_filter.py). The optimizers a train step may apply are found
by optimizers.py (one capture channel and one run directory, run_log.py, per
optimizer), steps that never go backwards are kept by steps.py and tag names
that are never `None` nor repeated come from naming.py.
Findings reach the user through findings_channel.py;
run_files.py holds the run's writer and figure, attributes.py the honest
public attributes, requirements.py the TensorFlow check done here at import.
"""

from kgrad.monitor.requirements import check_tensorflow

check_tensorflow()
