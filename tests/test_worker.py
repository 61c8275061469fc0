"""The worker runs jobs in order; short ones inline when nothing is queued."""

import logging
import threading

from kgrad.monitor.log.worker import Worker


def test_inline_job_runs_in_the_caller_when_the_worker_is_idle():
    worker = Worker()
    threads = []
    worker.submit(lambda: threads.append(threading.current_thread()), inline=True)
    assert threads == [threading.current_thread()]


def test_inline_job_waits_behind_queued_jobs():
    worker = Worker()
    release, order = threading.Event(), []
    worker.submit(lambda: (release.wait(5), order.append("slow")))
    worker.submit(lambda: order.append("inline"), inline=True)
    assert order == []  # queued behind the slow job, not run out of order
    release.set()
    worker.drain()
    assert order == ["slow", "inline"]


def test_a_failing_job_is_logged_once_and_the_next_runs(caplog):
    worker = Worker()
    done = []

    def fail():
        raise OSError("disk full")

    with caplog.at_level(logging.ERROR, logger="kgrad"):
        worker.submit(fail, inline=True)
        worker.submit(fail)
        worker.submit(lambda: done.append(1))
        worker.drain()
    assert done == [1]
    assert len([r for r in caplog.records if r.name == "kgrad"]) == 1
