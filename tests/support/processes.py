"""Ending a child process the tests started.

Example:

>>> import subprocess, sys
>>> end(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
"""

import subprocess


def end(process, timeout=20):
    """Terminates `process`, kills it if it is still alive after `timeout` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
