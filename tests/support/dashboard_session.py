"""A real `tensorboard` server and headless Chromium, for the Gradients tab.

Used by `tests/test_dashboard_browser.py` and `benchmarks/perf/dashboard.py`:
`TensorBoardServer` starts `tensorboard --logdir X --port 0` and reads the
port from its output; `chromium` finds Debian's `chromium` (driven by
`chromium_pipe.py`); `write_synthetic_run` writes kgrad-style events of any
size in seconds.

Example:

```python
with TensorBoardServer("logs") as server:
    runs = server.json(f"/data/plugin/{tags.PLUGIN_NAME}/runs")
    url = server.tab_url(run="mlp/train")  # for chromium_pipe.Browser
```
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from kgrad import tags
from tests.support import processes

# The checkout this file is in (benchmarks/perf/ is two levels down).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PORT_LINE = re.compile(r"TensorBoard \S+ at http://[^:]+:(\d+)/")
ENTRY_POINT = "kgrad = kgrad.dashboard.loader:GradientsLoader"


def plugin_installed():
    """Whether an installed distribution declares kgrad's TensorBoard plugin."""
    from importlib import metadata

    return any(
        ep.value == ENTRY_POINT.split(" = ")[1]
        for ep in metadata.entry_points(group="tensorboard_plugins")
    )


def entry_point_shim(directory):
    """A distribution in `directory` that declares kgrad's plugin entry point.

    For a checkout whose `kgrad` is not installed with its entry points (the
    package itself comes from `PYTHONPATH`); a `pip install` makes the same.
    """
    info = os.path.join(directory, "kgrad_tab_entry_point-0.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as file:
        file.write("Metadata-Version: 2.1\nName: kgrad-tab-entry-point\nVersion: 0\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as file:
        file.write(f"[tensorboard_plugins]\n{ENTRY_POINT}\n")
    return directory


class TensorBoardServer:
    """`tensorboard --logdir logdir --port 0` in a subprocess.

    Args:
        logdir: The log directory.
        flags: More flags (`["--load_fast=false"]`). Defaults to `()`.
        source: The checkout whose `kgrad` the server imports (put first on
            `PYTHONPATH`). Defaults to the parent of this folder.
        timeout: Seconds to wait for the port. Defaults to `120`.
        plugin: Whether to load the Gradients tab. Defaults to `True`.

    Raises:
        ValueError: If `plugin=False` while kgrad's entry point is installed.
    """

    def __init__(self, logdir, flags=(), source=None, timeout=120, plugin=True):
        if not plugin and plugin_installed():
            raise ValueError(
                "kgrad's entry point is installed: TensorBoard loads the tab. "
                "Received: plugin=False"
            )
        self.logdir, self.flags, self.timeout = str(logdir), list(flags), timeout
        self.plugin = plugin
        self.source = source or ROOT
        self.port = None
        self._process = None
        self._shim = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Starts the server; returns seconds until it printed its port."""
        paths = [os.path.abspath(self.source)] if self.plugin else []
        if self.plugin and not plugin_installed():
            self._shim = tempfile.mkdtemp(prefix="kgrad_tab_")
            paths.insert(0, entry_point_shim(self._shim))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
        command = [tensorboard, "--logdir", self.logdir, "--port", "0", *self.flags]
        start = time.perf_counter()
        self._process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = []
        while self.port is None:
            line = self._process.stdout.readline()
            if not line:
                self.stop()
                raise RuntimeError("tensorboard exited:\n" + "".join(output))
            output.append(line)
            match = _PORT_LINE.search(line)
            if match:
                self.port = int(match.group(1))
            elif time.perf_counter() - start > self.timeout:
                self.stop()
                raise TimeoutError("tensorboard printed no port:\n" + "".join(output))
        self.output = "".join(output)
        return time.perf_counter() - start

    def stop(self):
        """Stops the server (the process this object started)."""
        if self._process is not None:
            processes.end(self._process)
            self._process.stdout.close()
            self._process = None
        if self._shim:
            shutil.rmtree(self._shim, ignore_errors=True)
            self._shim = None

    def url(self, path):
        """`http://127.0.0.1:<port><path>`."""
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        """`(status, content type, body bytes)` of a GET."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=60) as response:
                return (
                    response.status,
                    response.headers["Content-Type"],
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read()

    def json(self, path):
        """The JSON answer of a GET that must succeed."""
        status, _, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    def wait_for_runs(self, count, timeout=60):
        """Waits until the tab's `runs` route lists `count` runs."""
        deadline = time.perf_counter() + timeout
        while True:
            runs = self.json(f"/data/plugin/{tags.PLUGIN_NAME}/runs")
            if len(runs) >= count or time.perf_counter() > deadline:
                return runs
            time.sleep(0.5)

    def tab_url(self, **query):
        """The tab's own page (what TensorBoard puts in its iframe)."""
        params = "".join(f"&{k}={v}" for k, v in query.items())
        return self.url(f"/data/plugin_entry.html?name=kgrad{params}")


def chromium():
    """The path of Debian's `chromium`, or `None`."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_synthetic_run(
    run_dir,
    variables,
    steps,
    paths=None,
    statistics=(tags.GRAD_NORM,),
):
    """Writes `steps` logged steps of `variables` gradient norms, kgrad-style.

    The value of variable `i` at step `s` is `synthetic_value(variables, i, s)`
    (times 10 for each further statistic); `tags.RUN_INFO` lists the
    variables, input first.

    Args:
        run_dir: The run directory (`log_dir/train`).
        variables: How many variables.
        steps: How many logged steps (1 to `steps`).
        paths: The variable paths (`variables` of them). Defaults to
            `layer_<i>/kernel`.
        statistics: The per-variable statistics written. Defaults to
            `("grad_norm",)`.

    Returns:
        The variable paths, input first.
    """
    from kgrad.monitor.log import summaries
    from kgrad.monitor.log.event_writer import RunWriter

    paths = list(paths or [f"layer_{i:03d}/kernel" for i in range(variables)])
    writer = RunWriter(str(run_dir))
    info = {"model": "synthetic", "variables": paths, "layers": [], "batch_size": 8}
    writer.write(0, [summaries.text_value(tags.RUN_INFO, json.dumps(info))])
    for step in range(1, steps + 1):
        scalars = [
            (tags.tag(name, p), synthetic_value(variables, i, step) * 10.0**k)
            for k, name in enumerate(statistics)
            for i, p in enumerate(paths)
        ]
        writer.write(step, [], scalars)
    writer.close()
    return paths


def synthetic_value(variables, index, step):
    """The norm `write_synthetic_run` writes for variable `index` at `step`."""
    return 10.0 ** (-index / variables) * step


def densenet121_paths():
    """The 364 trainable variable paths of `keras.applications.DenseNet121`.

    Named as Keras names them (`conv3_block2_1_conv/kernel`, the BatchNorm
    `gamma` and `beta`), in model order, without building the model.
    """
    paths = ["conv1_conv/kernel", "conv1_bn/gamma", "conv1_bn/beta"]
    for stage, blocks in ((2, 6), (3, 12), (4, 24), (5, 16)):
        for block in range(1, blocks + 1):
            name = f"conv{stage}_block{block}"
            paths += [f"{name}_0_bn/gamma", f"{name}_0_bn/beta"]
            paths += [f"{name}_1_conv/kernel", f"{name}_1_bn/gamma"]
            paths += [f"{name}_1_bn/beta", f"{name}_2_conv/kernel"]
        if stage < 5:
            paths += [f"pool{stage}_bn/gamma", f"pool{stage}_bn/beta"]
            paths += [f"pool{stage}_conv/kernel"]
    return paths + ["bn/gamma", "bn/beta", "predictions/kernel", "predictions/bias"]
