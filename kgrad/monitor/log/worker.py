"""A background thread for slow logging work, so training never waits for it.

The callback hands its logging jobs to a `Worker`, which runs them in
submission order. Slow jobs (drawing the gradient-flow figure) run in the
worker's thread. A short job (writing one logged step: about 0.3 ms) runs at
once in the caller's thread when nothing is queued (`submit(job, inline=True)`):
handing it to a thread would cost more, because the two threads contend for
the GIL and the cores the training step needs (measured on `mlp_relu_he`,
norms on every step: 2.99x plain `fit` through the thread, 2.27x inline).
The worker drains its queue at interpreter exit, so a script that ends right
after `fit` (or is stopped by Ctrl-C) loses nothing that was logged.

Tested in tests/test_worker.py.

Example:

>>> worker = Worker()
>>> done = []
>>> worker.submit(lambda: done.append(1))
>>> worker.drain()
>>> done
[1]
"""

import atexit
import logging
import queue
import threading

logger = logging.getLogger("kgrad")


class Worker:
    """Runs jobs one at a time in a daemon thread, in submission order.

    A job that raises is logged (once per worker) and the next one runs.
    """

    def __init__(self, name="kgrad-writer"):
        self._queue = queue.Queue()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.drain)

    def submit(self, job, inline=False):
        """Runs `job`, a callable without arguments, after the jobs before it.

        Args:
            job: The job.
            inline: Run it now in the calling thread if no job is queued or
                running (only one thread may submit). Defaults to `False`.
        """
        if inline and self._queue.unfinished_tasks == 0:
            self._guarded(job)
        else:
            self._queue.put(job)

    def drain(self):
        """Blocks until every job submitted so far has run."""
        self._queue.join()

    def _run(self):
        while True:
            job = self._queue.get()
            try:
                self._guarded(job)
            finally:
                self._queue.task_done()

    def _guarded(self, job):
        try:
            job()
        except Exception:  # logging must never stop training
            if not self._failed:
                self._failed = True
                logger.exception("kgrad: a logging job failed; training goes on.")
