"""Logging: from a read capture to TensorBoard event files.

The step logger (step_logger.py: runs, history, findings) is handed what the
capture read; it claims the run directory and keeps its steps increasing
(run_claim.py), estimates the noise scale (noise_scale.py), filters tags
(tag_filter.py), builds the summaries (summaries.py) and writes them
(event_writer.py, with the run's files and figure), from the training thread
or a background worker (worker.py).
"""
