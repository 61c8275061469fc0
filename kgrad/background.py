"""A background thread that writes logs, so training never waits for them.

The callback hands each logged step's statistics (numpy arrays, already on the
host) to a `Worker`; building protocol buffers, writing and flushing event
files and drawing figures happen in the worker's thread, in submission order.
The worker drains its queue at interpreter exit, so a script that ends right
after `fit` (or is stopped by Ctrl-C) loses nothing that was logged.

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

    def submit(self, job):
        """Queues `job`, a callable without arguments."""
        self._queue.put(job)

    def drain(self):
        """Blocks until every job submitted so far has run."""
        self._queue.join()

    def _run(self):
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception:  # logging must never stop training
                if not self._failed:
                    self._failed = True
                    logger.exception("kgrad: a logging job failed; training goes on.")
            finally:
                self._queue.task_done()
