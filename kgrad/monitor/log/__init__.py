"""Logging: from a read capture to TensorBoard event files.

The step logger (step_logger.py) claims the run directory (run_claim.py),
keeps the steps and history of each run (steps.py, run_log.py), filters tags
(tag_filter.py), builds the summaries (summaries.py) and writes them
(event_writer.py, run_files.py), from the training thread or a background
worker (worker.py).
"""
