"""Headless Chromium driven over the DevTools protocol, through a pipe.

One `chromium --remote-debugging-pipe` process (no port, no extra package:
the protocol's JSON messages go over file descriptors 3 and 4) with one page
that a test or benchmark navigates, clicks, reads and photographs as a user
would. Used by `tests/test_dashboard_browser.py` and `benchmarks/perf/dashboard.py`.

Example:

```python
with Browser(size=(1280, 800)) as page:
    page.goto("http://127.0.0.1:6006/")
    page.wait("document.body.dataset.ready === 'true'")
    page.click(100, 200)
    png = page.screenshot()  # PNG bytes of what the user sees
```
"""

import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import time

from tests.support import processes


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, or stopped answering."""


class Browser:
    """A headless Chromium and one page of `size` CSS pixels.

    Args:
        size: `(width, height)` of the viewport. Defaults to `(1280, 800)`.
        timeout: Seconds any one wait may take. Defaults to `60`.
    """

    def __init__(self, size=(1280, 800), timeout=60):
        self.size, self.timeout = size, timeout
        self._process = None
        self._next_id = 0
        self._buffer = b""
        self.console_errors = []

    def __enter__(self):
        self._profile = tempfile.mkdtemp(prefix="kgrad_chromium_")
        # Both ends the child keeps are moved above 4 first, so that putting
        # them on 3 and 4 cannot overwrite one with the other.
        to_chromium, self._write = os.pipe()
        self._read, from_chromium = os.pipe()
        to_chromium, from_chromium = (
            _above_4(to_chromium),
            _above_4(from_chromium),
        )
        command = [
            shutil.which("chromium") or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            "about:blank",
        ]

        def pipes_as_3_and_4():
            os.dup2(to_chromium, 3)
            os.dup2(from_chromium, 4)

        self._process = subprocess.Popen(
            command,
            pass_fds=(3, 4),
            preexec_fn=pipes_as_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chromium)
        os.close(from_chromium)
        target = self._command("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._command(
            "Target.attachToTarget", targetId=target, flatten=True
        )["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.resize(*self.size)
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stops the Chromium this object started."""
        if self._process is not None:
            os.close(self._write)
            processes.end(self._process)
            os.close(self._read)
            self._process = None
            shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method, **params):
        """The result of one protocol command on the page."""
        return self._command(method, session=self._session, **params)

    def resize(self, width, height):
        """Sets the viewport to `width` x `height` CSS pixels."""
        self.size = (width, height)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def goto(self, url):
        """Navigates the page to `url` (returns once the navigation started)."""
        self.send("Page.navigate", url=url)

    def evaluate(self, expression):
        """The JSON value of a JavaScript expression (promises awaited)."""
        answer = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            raise BrowserError(f"{expression[:80]!r} threw: {text}")
        return answer["result"].get("value")

    def wait(self, expression, timeout=None):
        """Waits until `expression` is truthy; returns its value."""
        deadline = time.perf_counter() + (timeout or self.timeout)
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None
            if value:
                return value
            if time.perf_counter() > deadline:
                raise TimeoutError(f"still false after the wait: {expression}")
            time.sleep(0.05)

    def click(self, x, y):
        """A left click at viewport point `(x, y)`, as a mouse makes it."""
        self.hover(x, y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=x,
                y=y,
                button="left",
                clickCount=1,
            )

    def hover(self, x, y):
        """Moves the mouse to viewport point `(x, y)`."""
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def screenshot(self):
        """PNG bytes of the viewport."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        return base64.b64decode(data)

    def pixels(self):
        """The viewport as a Pillow RGB image."""
        from PIL import Image

        return Image.open(io.BytesIO(self.screenshot())).convert("RGB")

    def _command(self, method, session=None, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._note(answer)

    def _note(self, event):
        if event.get("method") == "Runtime.exceptionThrown":
            details = event["params"]["exceptionDetails"]
            self.console_errors.append(
                details.get("exception", {}).get("description") or details["text"]
            )
        elif event.get("method") == "Runtime.consoleAPICalled":
            if event["params"]["type"] == "error":
                args = event["params"]["args"]
                self.console_errors.append(" ".join(str(a.get("value")) for a in args))

    def _message(self):
        deadline = time.perf_counter() + self.timeout
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 16)
            if not chunk or time.perf_counter() > deadline:
                raise BrowserError("chromium stopped answering")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)


def _above_4(descriptor):
    """`descriptor` moved to a number above 4 (the original is closed)."""
    import fcntl

    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD, 5)
    os.close(descriptor)
    return moved
