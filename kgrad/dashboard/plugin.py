"""The Gradients tab's TensorBoard plugin: its routes and its static files.

Routes, under `/data/plugin/<tags.PLUGIN_NAME>/` (all JSON except `static/`):

| route | answers |
|---|---|
| `runs` | the runs kgrad wrote and what each can show |
| `heatmap?run=&statistic=[&layer=]` | one statistic as rows x steps |
| `histogram?run=&path=&step=` | a variable's gradient histogram near `step` |
| `findings?run=` | the findings with the steps they appeared and cleared |
|  | (`timeline.py`: the records of `kgrad.findings_record`; `sampling` |
|  | is always `null`: the last record holds every finding) |
| `loss?run=` | the loss of each logged step (`tags.LOSS`) |
| `static/<file>` | the frontend (`index.js` is the ES module TensorBoard loads) |
| `static/tags.js` | `kgrad.tags`'s names as an ES module (`tags_module`) |

`heatmap` answers are kept, gzipped, while the data provider lists the same
last step and wall time for every tag they read (`cache.py`), so a reload or
a poll of a run that has not moved reads nothing.

Bad arguments answer 400 with a message naming the argument and the value
received; what is missing answers 404.

Tested by `tests/test_dashboard_routes.py` (in process) and
`tests/test_dashboard_browser.py` (a real `tensorboard` and Chromium).

Example:

```python
plugin = GradientsPlugin(context)  # context: TensorBoard's TBContext
plugin.get_plugin_apps()["/runs"]
```
"""

import gzip
import json
import os

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from kgrad import tags
from kgrad.dashboard import cache, collector, series, timeline

PLUGIN_NAME = tags.PLUGIN_NAME
# The tag contract, served to the tab's JavaScript (`tags_module`).
TAGS_MODULE = "tags.js"
_STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
# The only files `static/` serves, with their types (no path is ever joined).
STATIC_FILES = {
    name: "text/javascript"
    for name in (
        "index.js",
        "axis.js",
        "charts.js",
        "detail.js",
        "heatmap.js",
        "legend.js",
        "panel.js",
        "rows.js",
        "style.js",
    )
}


class GradientsPlugin(base_plugin.TBPlugin):
    """The Gradients tab: every layer's gradient over time in one picture.

    Args:
        context: TensorBoard's `TBContext`; its `data_provider` is read.
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._provider = context.data_provider
        flags = context.flags
        self._samples = dict(getattr(flags, "samples_per_plugin", None) or {})
        self._heat_maps = cache.VersionedCache()

    def get_plugin_apps(self):
        """The WSGI apps of the routes (see the module docstring)."""
        return {
            "/runs": self._runs,
            "/heatmap": self._heatmap,
            "/histogram": self._histogram,
            "/findings": self._findings,
            "/loss": self._loss,
            "/static/*": self._static,
        }

    def is_active(self):
        """Whether any run has kgrad's `tags.RUN_INFO` text."""
        listing = self._provider.list_tensors(
            provider_context(),
            experiment_id="",
            plugin_name="text",
            run_tag_filter=provider.RunTagFilter(tags=[tags.RUN_INFO]),
        )
        return any(listing.values())

    def frontend_metadata(self):
        """The tab: an ES module in TensorBoard's iframe, named Gradients."""
        return base_plugin.FrontendMetadata(
            es_module_path="/static/index.js", tab_name="Gradients"
        )

    def _source(self, request):
        return series.Source(
            self._provider,
            plugin_util.context(request.environ),
            plugin_util.experiment_id(request.environ),
            self._samples,
        )

    @wrappers.Request.application
    def _runs(self, request):
        source = self._source(request)
        answer = series.runs(source)
        for entry in answer:
            found = _findings_of(source, entry["run"])["findings"]
            active = [f for f in found if f["cleared_step"] is None]
            entry["findings"] = len(active)
            entry["errors"] = sum(f["severity"] == "error" for f in active)
        return _json(request, answer)

    @wrappers.Request.application
    def _heatmap(self, request):
        source = self._source(request)
        plan = series.heat_map_plan(
            source,
            _argument(request, "run"),
            _argument(request, "statistic"),
            request.args.get("layer"),
        )
        key = (source.experiment_id, plan.run, plan.statistic, plan.layer)
        body = self._heat_maps.get(
            key, plan.version, lambda: _built_heat_map(source, plan)
        )
        return http_util.Respond(
            request, body, "application/json", content_encoding="gzip"
        )

    @wrappers.Request.application
    def _histogram(self, request):
        step = _argument(request, "step")
        try:
            step = int(step)
        except ValueError:
            raise errors.InvalidArgumentError(
                f"`step` must be an integer. Received: step={step!r}"
            ) from None
        answer = series.histogram(
            self._source(request),
            _argument(request, "run"),
            _argument(request, "path"),
            step,
        )
        return _json(request, answer)

    @wrappers.Request.application
    def _findings(self, request):
        source = self._source(request)
        run = _argument(request, "run")
        return _json(request, dict(_findings_of(source, run), run=run, sampling=None))

    @wrappers.Request.application
    def _loss(self, request):
        return _json(
            request, series.loss(self._source(request), _argument(request, "run"))
        )

    @wrappers.Request.application
    def _static(self, request):
        name = request.path.split("/static/", 1)[1]
        if name == TAGS_MODULE:
            return http_util.Respond(request, tags_module(), "text/javascript")
        if name not in STATIC_FILES:
            raise errors.NotFoundError(f"no static file {name!r}")
        with open(os.path.join(_STATIC_DIR, name), "rb") as file:
            content = file.read()
        return http_util.Respond(request, content, STATIC_FILES[name])


def _findings_of(source, run):
    """`{"findings", "structured", "note"}` of a run (`timeline.timeline`)."""
    return timeline.timeline(series.findings_texts(source, run), series.STATISTICS)


def tags_module():
    """`kgrad.tags`'s constants as an ES module: the tab spells no tag name.

    Example:

    >>> 'export const GRAD_NORM = "grad_norm";' in tags_module().splitlines()
    True
    """
    lines = ["// Generated from kgrad.tags by the plugin: the one tag contract."]
    for name, value in sorted(vars(tags).items()):
        if name.isupper() and isinstance(value, str | tuple):
            lines.append(f"export const {name} = {json.dumps(value)};")
    return "\n".join(lines) + "\n"


def provider_context():
    """A `RequestContext` for reads outside a request (`is_active`)."""
    from tensorboard import context

    return context.RequestContext()


def _argument(request, name):
    value = request.args.get(name)
    if not value:
        raise errors.InvalidArgumentError(
            f"`{name}` is required. Received: {name}={value!r}"
        )
    return value


def _built_heat_map(source, plan):
    """The gzipped JSON of a heat map, read with the collector paused."""
    with collector.collector_paused():
        answer = series.heat_map(source, plan)
    return _gzip_json(answer)


def _gzip_json(answer):
    """`answer` as gzipped JSON, as TensorBoard's `Respond` would send it."""
    return gzip.compress(json.dumps(answer).encode("utf-8"), 3, mtime=0)


def _json(request, answer):
    return http_util.Respond(request, json.dumps(answer), "application/json")
