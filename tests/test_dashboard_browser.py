"""End to end: `tensorboard --logdir X --port 0` and headless Chromium.

One `tensorboard` (the default fast loader; the plugin found through the
`tensorboard_plugins` entry point) started on an empty log directory, one
Chromium driven over the DevTools pipe at 1280x800, as a user would: it
clicks, switches and looks at pixels. Runs are written while the page is
open: two real fits (`tests/support/dashboard_logs.fit_runs`), runs written value by
value (twins with one shared row, exact zeros, NaN, a missing step, an RNN
finding) and a DenseNet121-shaped run of 364 variables.
"""

import base64
import re

import numpy as np
import pytest

from kgrad.analysis.findings import Finding
from tests.support import chromium_pipe
from tests.support import dashboard_session as session
from tests.support.dashboard_logs import MLP_STEPS, findings_data, fit_runs, write_run

TAB = "/data/plugin/kgrad"
MARK = (214, 39, 40)  # heatmap.js MARK
TWIN_STEPS = [*range(1, 9), *range(10, 101, 10)]  # every step, then every 10


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def server(logdir):
    flags = ["--reload_interval", "1"]
    with session.TensorBoardServer(logdir, flags=flags) as tensorboard:
        yield tensorboard


@pytest.fixture(scope="module")
def page():
    if session.chromium() is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
    with chromium_pipe.Browser(size=(1280, 800)) as browser:
        yield browser
    assert not browser.console_errors


@pytest.fixture(scope="module")
def runs(server, logdir):
    """Every run of the module, once the server lists them all."""
    fit_runs(logdir)
    _write_twins(logdir)
    _write_rnn_finding(logdir / "rnn_finding" / "train")
    paths = session.densenet121_paths()
    scalars = {
        f"grad_norm/{p}": {s: 10.0 ** (-3 * i / len(paths)) for s in range(1, 21)}
        for i, p in enumerate(paths)
    }
    layers = sorted({p.rsplit("/", 1)[0] for p in paths})
    info = {
        "model": "densenet121",
        "variables": paths,
        "layers": [],
        "batchnorm_layers": [name for name in layers if name.endswith("bn")],
    }
    found = Finding(
        "vanishing", "warning", ("conv4_block9_1_conv",), "It is small.", ""
    )
    texts = findings_data([(5, [found]), (15, [])])
    write_run(logdir / "densenet" / "train", scalars, info, texts)
    _write_vanishing(logdir / "vanishing" / "train")
    # "late" from the empty-state test, 2 fits, 2 twins, rnn_finding, densenet,
    # vanishing
    return server.wait_for_runs(8, timeout=120)


def _write_vanishing(run_dir):
    """16 layers whose gradient vanishes, judged against a healthy output."""
    layers = [f"dense_{i:02d}" for i in range(1, 17)]
    variables = [
        f"{layer}/{w}" for layer in [*layers, "output"] for w in ("kernel", "bias")
    ]
    scalars = {
        f"grad_norm/{p}": {s: 10.0 ** (i / 4 - 9) for s in range(1, 6)}
        for i, p in enumerate(variables)
    }
    found = Finding(
        "vanishing",
        "warning",
        tuple(layers),
        "The input side is 1e-9 of the output side.",
        "Use He initialisation.",
        statistic="grad_norm",
        reference_layers=("output",),
    )
    info = {"model": "vanishing", "variables": variables}
    write_run(run_dir, scalars, info, findings_data([(3, [found])]))


def _write_twins(logdir):
    """Two runs with one identical row; the first also has an exact 0, a
    logged NaN and a step not logged in `special/kernel`."""
    same = {s: 1e-3 for s in TWIN_STEPS}
    special = {s: 1e-3 for s in TWIN_STEPS if s != 4}
    special.update({2: 0.0, 3: float("nan")})
    a = {
        "dead_units/relu": {s: float(s >= 10) for s in TWIN_STEPS},
        "grad_norm/same/kernel": same,
        "grad_norm/tiny/kernel": {s: 1e-12 for s in TWIN_STEPS},
        "grad_norm/special/kernel": special,
    }
    b = {
        "grad_norm/same/kernel": same,
        "grad_norm/huge/kernel": {s: 1e2 for s in TWIN_STEPS},
    }
    for name, scalars in (("a_twin", a), ("b_twin", b)):
        variables = [t.split("/", 1)[1] for t in scalars if t.startswith("grad")]
        info = {"model": name, "variables": variables, "layers": [["relu", "relu"]]}
        write_run(logdir / name / "train", scalars, info, findings_data([(1, [])]))


def _write_rnn_finding(run_dir):
    variables = ["rnn_01/simple_rnn_cell/kernel", "output/kernel"]
    scalars = {f"grad_norm/{p}": {s: 0.1 for s in range(1, 9)} for p in variables}
    for t in range(5):
        scalars[f"temporal_grad/rnn_01/t{t:02d}"] = {
            s: 10.0 ** (t - 5) for s in range(1, 9)
        }
    found = Finding(
        "vanishing_in_time",
        "warning",
        ("rnn_01",),
        "The gradient reaching the first timestep is 1e-5 of the last.",
        "Use LSTM or GRU cells.",
    )
    info = {"model": "rnn", "variables": variables, "recurrent_layers": ["rnn_01"]}
    write_run(run_dir, scalars, info, findings_data([(4, [found])]))


def open_tab(server, page, **query):
    page.goto(server.tab_url(**query))
    page.wait("document.body.dataset.ready === 'true'")


def panel_cell(page, panel, row, step):
    """Viewport `(x, y)` of the centre of a drawn cell of panel `panel`."""
    return page.evaluate(
        f"""(() => {{
        const c = document.querySelectorAll('canvas.heatmap')[{panel}];
        const d = c.dataset, r = c.getBoundingClientRect();
        const row = d.rowKeys.split('\\n').indexOf({row!r});
        const column = d.stepList.split(',').map(Number).indexOf({step});
        if (row < 0 || column < 0) return null;
        return [r.left + Number(d.labelWidth) + (column + 0.5) * Number(d.cellWidth),
                r.top + 1 + (row + 0.5) * Number(d.rowHeight)];
    }})()"""
    )


def dataset(page, selector):
    """The `data-*` attributes of the first element `selector` selects."""
    return page.evaluate(f"({{...document.querySelector({selector!r}).dataset}})")


def rect(page, selector, index=0):
    return page.evaluate(
        f"(() => {{ const r = document.querySelectorAll({selector!r})[{index}]"
        ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()"
    )


def choose(page, select, value):
    """Picks `value` in the toolbar's `select` (the n-th select) as a user does."""
    page.evaluate(
        f"(() => {{ const s = document.querySelectorAll('.toolbar select')[{select}];"
        f" s.value = {value!r}; s.dispatchEvent(new Event('change')); }})()"
    )
    page.wait("document.body.dataset.ready === 'true'")


RUN, COMPARE, STATISTIC, GROUPING, ZOOM = 0, 1, 2, 4, 5  # the toolbar's selects


def test_empty_page_shows_a_run_once_written(server, page, logdir):
    open_tab(server, page)
    assert "No kgrad runs yet" in page.evaluate(
        "document.querySelector('.status').textContent"
    )
    write_run(
        logdir / "late",
        {"grad_norm/d/kernel": {1: 1.0, 2: 0.5}},
        {"model": "late", "variables": ["d/kernel"]},
    )
    page.wait("document.querySelectorAll('canvas.heatmap').length === 1", timeout=30)
    assert page.evaluate("document.querySelector('.toolbar select').value") == "late"


def test_tab_is_listed_and_its_routes_answer(server, runs):
    listing = server.json("/data/plugins_listing")["kgrad"]
    assert listing["enabled"] and listing["tab_name"] == "Gradients"
    status, kind, body = server.get(listing["loading_mechanism"]["module_path"])
    assert status == 200 and kind.startswith("text/javascript")
    assert b"export async function render()" in body
    grid = server.json(f"{TAB}/heatmap?run=mlp/train&statistic=grad_norm")
    assert len(grid["rows"]) == 6 and grid["steps"] == list(range(1, MLP_STEPS + 1))
    status, _, body = server.get(f"{TAB}/static/..%2f..%2floader.py")
    assert status == 404


def test_default_run_has_findings_and_the_url_keeps_the_selection(server, page, runs):
    open_tab(server, page)
    # a_twin comes first alphabetically; mlp/train has a finding.
    assert page.evaluate("document.querySelector('.toolbar select').value") == (
        "mlp/train"
    )
    choose(page, STATISTIC, "update_ratio")
    url = page.evaluate("location.href")
    assert "run=mlp%2Ftrain" in url and "statistic=update_ratio" in url
    page.goto(url)
    page.wait("document.body.dataset.ready === 'true'")
    assert page.evaluate("document.querySelectorAll('.toolbar select')[2].value") == (
        "update_ratio"
    )


def test_refresh_lists_a_run_written_after_the_page_opened(server, page, runs, logdir):
    open_tab(server, page, run="b_twin/train")
    page.evaluate("window.sameDocument = true")
    write_run(
        logdir / "later" / "train",
        {"grad_norm/d/kernel": {1: 1.0}},
        {"model": "later", "variables": ["d/kernel"]},
    )
    server.wait_for_runs(9, timeout=30)
    left, top, right, bottom = rect(page, ".toolbar button")
    page.click((left + right) / 2, (top + bottom) / 2)
    page.wait("document.body.dataset.ready === 'true'")
    options = page.evaluate(
        "[...document.querySelector('.toolbar select').options].map(o => o.value)"
    )
    assert "later/train" in options and page.evaluate("window.sameDocument")


def test_one_scale_gives_one_value_one_colour_in_both_panels(server, page, runs):
    open_tab(server, page, run="a_twin/train", compare="b_twin/train")
    shot = page.pixels()
    left, right = (panel_cell(page, i, "same/kernel", 50) for i in (0, 1))
    assert shot.getpixel(tuple(map(int, left))) == shot.getpixel(tuple(map(int, right)))
    ticks = page.evaluate(
        "[...document.querySelectorAll('.colour-bar')].map(c => c.dataset.ticks)"
    )
    assert ticks[0] == ticks[1] and "1e-12" in ticks[0]
    # One scale per panel: the same value is now drawn in two colours.
    page.evaluate(
        "(() => { const box = document.querySelectorAll('.toolbar input')[2];"
        " box.click(); })()"
    )
    page.wait("document.body.dataset.ready === 'true'")
    shot = page.pixels()
    assert shot.getpixel(tuple(map(int, left))) != shot.getpixel(tuple(map(int, right)))


def test_step_axis_ticks_are_logged_steps_under_their_columns(server, page, runs):
    open_tab(server, page, run="a_twin/train")
    axis = dataset(page, "canvas.axis")
    ticks = [int(t) for t in axis["ticks"].split(",")]
    assert set(ticks) <= set(TWIN_STEPS) and {1, 100} <= set(ticks)
    assert axis["breaks"] == "10"  # every step up to 8, then every 10
    shot = page.pixels()
    top = rect(page, "canvas.axis")[1]
    for step, x in zip(ticks, axis["tickX"].split(","), strict=True):
        x_cell, _ = panel_cell(page, 0, "same/kernel", step)
        assert abs(float(x) + rect(page, "canvas.axis")[0] - x_cell) < 1
        left = rect(page, "canvas.axis")[0]
        mark = [
            shot.getpixel((int(left + float(x)) + d, int(top) + 2)) for d in (-1, 0, 1)
        ]
        assert min(sum(p) for p in mark) < 3 * 120  # a dark tick mark


def test_legend_colours_are_the_colours_of_zero_undefined_and_missing_cells(
    server, page, runs
):
    open_tab(server, page, run="a_twin/train")
    shot = page.pixels()
    swatches = {}
    for key in ("zero", "undefined", "missing"):
        left, top, right, bottom = rect(page, f'[data-swatch="{key}"] i')
        swatches[key] = shot.getpixel((int(left + right) // 2, int(top + bottom) // 2))
    assert len(set(swatches.values())) == 3
    for step, key in ((2, "zero"), (3, "undefined"), (4, "missing")):
        x, y = panel_cell(page, 0, "special/kernel", step)
        assert shot.getpixel((int(x), int(y))) == swatches[key], key
    # An update ratio of a weight of norm 0 (a bias at step 1) is undefined.
    open_tab(server, page, run="mlp/train", statistic="update_ratio")
    shot = page.pixels()
    x, y = panel_cell(page, 0, "hidden_2/bias", 1)
    assert shot.getpixel((int(x), int(y))) == swatches["undefined"]
    # A share's exact 0 is the bottom of its colour bar, which has no 0 swatch.
    open_tab(server, page, run="mlp/train", statistic="dead_units")
    assert not page.evaluate("document.querySelectorAll('[data-swatch=zero]').length")
    open_tab(server, page, run="a_twin/train", statistic="dead_units")
    shot = page.pixels()
    left, top = rect(page, ".colour-bar")[:2]
    # A share of 0, then of 1: the two ends of viridis, and of the colour bar.
    for step, bar_x, end in ((1, 22, (68, 1, 84)), (10, 217, (253, 231, 37))):
        x, y = panel_cell(page, 0, "relu", step)
        assert shot.getpixel((int(x), int(y))) == end
        bar = shot.getpixel((int(left) + bar_x, int(top) + 5))
        assert max(abs(a - b) for a, b in zip(bar, end, strict=True)) <= 12


def test_marks_are_on_the_named_layers_of_the_statistic_found(server, page, runs):
    open_tab(server, page, run="mlp/train", statistic="dead_units")
    canvas = dataset(page, "canvas.heatmap")
    assert canvas["marked"] == "hidden_1"
    shot = page.pixels()
    for row in canvas["rowKeys"].split("\n"):
        x, y = panel_cell(page, 0, row, 1)
        mark_x = rect(page, "canvas.heatmap")[0] + int(canvas["labelWidth"]) - 5
        assert (shot.getpixel((int(mark_x), int(y))) == MARK) == (row == "hidden_1")
    open_tab(server, page, run="mlp/train", statistic="grad_norm")
    assert (
        page.evaluate("document.querySelector('canvas.heatmap').dataset.marked") == ""
    )
    # Every layer a vanishing finding names is marked, never its reference.
    open_tab(server, page, run="vanishing/train")
    marked = dataset(page, "canvas.heatmap")["marked"].split("\n")
    assert len(marked) == 32 and not any(m.startswith("output/") for m in marked)
    shot = page.pixels()
    mark_x = int(rect(page, "canvas.heatmap")[0] + int(canvas["labelWidth"]) - 5)
    for row, expected in (("dense_01/kernel", True), ("output/bias", False)):
        y = int(panel_cell(page, 0, row, 1)[1])
        assert (shot.getpixel((mark_x, y)) == MARK) == expected, row
    # The RNN finding marks the RNN's rows on the map it is about.
    open_tab(server, page, run="rnn_finding/train", statistic="temporal_grad")
    canvas = dataset(page, "canvas.heatmap")
    assert canvas["marked"] == canvas["rowKeys"] != ""


def test_click_shows_the_detail_beside_the_map_and_a_switch_clears_it(
    server, page, runs
):
    open_tab(server, page, run="mlp/train")
    grid = server.json(f"{TAB}/heatmap?run=mlp/train&statistic=grad_norm")
    values = np.frombuffer(base64.b64decode(grid["values"]), "<f4")
    cells = values.reshape(len(grid["rows"]), -1)
    row, column = (int(i[0]) for i in np.nonzero(cells > 0))  # a finite log10
    step, value = grid["steps"][column], float(cells[row, column])
    page.hover(*panel_cell(page, 0, grid["rows"][row], step))
    tooltip = page.evaluate("document.querySelector('.tooltip').textContent")
    match = re.fullmatch(r"(.*) · ([^ ]+) \(log10 ([-.\d]+)\)", tooltip)
    assert match, tooltip
    head, shown, log = match.groups()
    assert head == f"{grid['rows'][row]} · step {step}"
    assert float(shown) == pytest.approx(value, rel=5e-3)
    assert float(log) == pytest.approx(np.log10(value), abs=5e-3)
    cursor = dataset(page, ".cursor")  # the hovered column, across map and strips
    assert cursor["step"] == str(step)
    line = rect(page, ".cursor")
    assert line[1] <= rect(page, ".viewport")[1]
    assert line[3] >= rect(page, ".loss-strip")[3] - 1
    x, y = panel_cell(page, 0, "hidden_1/kernel", 6)
    page.click(x, y)
    page.wait("document.querySelector('.detail-histogram').dataset.step")
    detail = dataset(page, ".detail")
    assert (detail["run"], detail["row"], detail["step"]) == (
        "mlp/train",
        "hidden_1/kernel",
        "6",
    )
    histogram = dataset(page, ".detail-histogram")
    assert histogram["step"] in ("4", "8")  # logged every 4 steps: the nearest
    assert histogram["title"].endswith("(nearest logged to 6)")
    answer = server.json(f"{TAB}/histogram?run=mlp/train&path=hidden_1/kernel&step=6")
    counts = [float(c) for c in histogram["counts"].split(",")]
    assert counts == [b[2] for b in answer["buckets"]]
    assert rect(page, ".detail")[0] >= rect(page, ".viewport")[2]
    assert rect(page, ".detail-histogram")[3] <= 800
    assert page.evaluate("getComputedStyle(document.querySelector('.outline')).display")
    for select, value in ((STATISTIC, "weight_norm"), (RUN, "rnn/train")):
        choose(page, select, value)
        assert page.evaluate("document.querySelector('.detail').dataset.run") == ""
        assert page.evaluate("document.querySelector('.detail-series').width") == 0
        x, y = panel_cell(page, 0, page_first_row(page), 2)
        page.click(x, y)
        page.wait("document.querySelector('.detail').dataset.run")


def page_first_row(page):
    return page.evaluate(
        "document.querySelector('canvas.heatmap').dataset.rowKeys.split('\\n')[0]"
    )


def test_side_by_side_says_which_run_lacks_the_statistic(server, page, runs):
    open_tab(server, page, run="mlp/train", compare="rnn/train", statistic="dead_units")
    messages = page.evaluate(
        "[...document.querySelectorAll('.message')].map(m => m.textContent)"
    )
    assert len(messages) == 1 and messages[0].startswith("rnn/train logged no")
    assert page.evaluate("document.querySelectorAll('canvas.heatmap').length") == 1
    choose(page, STATISTIC, "temporal_grad")
    messages = page.evaluate(
        "[...document.querySelectorAll('.message')].map(m => m.textContent)"
    )
    assert len(messages) == 1 and messages[0].startswith("mlp/train has no recurrent")


def test_twins_at_1280x800_show_map_axis_colour_bar_findings_and_loss(
    server, page, runs
):
    open_tab(server, page, run="mlp/train", compare="a_twin/train")
    for selector in (".viewport", "canvas.axis", ".colour-bar", ".findings-strip"):
        for index in (0, 1):
            assert rect(page, selector, index)[3] <= 800, selector
    assert page.evaluate(
        "[...document.querySelectorAll('.loss-strip')].map(c => +c.dataset.points)"
    ) == [MLP_STEPS, 0]
    nothing = page.evaluate(
        "[...document.querySelectorAll('.findings')].map(f => f.textContent)"
    )[1]
    assert nothing.startswith("No findings")


def test_364_variables_are_grouped_readable_filtered_and_opened(server, page, runs):
    open_tab(server, page, run="densenet/train")
    canvas = dataset(page, "canvas.heatmap")
    blocks = canvas["rowKeys"].split("\n")
    assert len(blocks) == 64 and "conv3_block2" in blocks
    assert int(canvas["rowHeight"]) >= 10 and int(canvas["cells"]) == 364 * 20
    shot = page.pixels()
    left, top = rect(page, "canvas.heatmap")[:2]
    height = int(canvas["rowHeight"])
    label = [
        shot.getpixel((int(left) + x, int(top) + 1 + height // 2))
        for x in range(4, 120)  # the first row's label
    ]
    assert sum(min(p) < 120 for p in label) > 8  # dark text pixels
    # One click on a block's label opens it.
    page.click(left + 30, top + 1 + (blocks.index("conv2_block1") + 0.5) * height)
    page.wait("document.body.dataset.ready === 'true'")
    keys = page.evaluate("document.querySelector('canvas.heatmap').dataset.rowKeys")
    assert "conv2_block1_1_conv/kernel" in keys.split("\n")
    page.evaluate(
        "(() => { const f = document.querySelector('.toolbar input');"
        " f.value = 'kernel -pool'; f.dispatchEvent(new Event('change')); })()"
    )
    page.wait("document.body.dataset.ready === 'true'")
    choose(page, GROUPING, "variable")
    keys = page.evaluate("document.querySelector('canvas.heatmap').dataset.rowKeys")
    expected = [
        p for p in session.densenet121_paths() if "kernel" in p and "pool" not in p
    ]
    assert keys.split("\n") == expected
    # Zoomed out to fit: thin rows, a label every few rows, each readable.
    choose(page, ZOOM, "fit")
    canvas = dataset(page, "canvas.heatmap")
    height, every = int(canvas["rowHeight"]), int(canvas["labelEvery"])
    assert height < 10 and every * height >= 11
    assert page.evaluate("document.querySelector('.viewport').scrollHeight") <= (
        page.evaluate("document.querySelector('.viewport').clientHeight") + 1
    )


def test_temporal_map_is_drawn(server, page, runs):
    open_tab(server, page, run="rnn/train", statistic="temporal_grad")
    canvas = dataset(page, "canvas.heatmap")
    assert (int(canvas["rows"]), int(canvas["steps"])) == (5, MLP_STEPS)
    assert int(canvas["cells"]) == 5 * MLP_STEPS


def test_a_findings_layer_is_one_click_away(server, page, runs):
    open_tab(server, page, run="densenet/train")
    canvas = dataset(page, "canvas.heatmap")
    assert canvas["marked"] == "conv4_block9"  # its block, closed
    left, top, right, bottom = rect(page, ".findings a")
    page.click((left + right) / 2, (top + bottom) / 2)
    page.wait("document.body.dataset.ready === 'true'")
    canvas = dataset(page, "canvas.heatmap")
    assert canvas["marked"].split("\n") == [
        "conv4_block9",
        "conv4_block9_1_conv/kernel",
    ]
    x, y = panel_cell(page, 0, "conv4_block9_1_conv/kernel", 10)
    viewport = rect(page, ".viewport")
    assert viewport[1] <= y <= viewport[3]  # scrolled into view


def test_tensorboards_own_url_keeps_the_selection(server, page, runs):
    # TensorBoard's page with the tab's state in its hash, the tab in its iframe.
    page.goto(server.url("/#kgrad&run=rnn/train&statistic=weight_norm"))
    selects = (
        "(() => { const f = document.querySelector('iframe');"
        " const d = f && f.contentDocument;"
        " return d && d.body.dataset.ready === 'true' &&"
        " [...d.querySelectorAll('.toolbar select')].map(s => s.value); })()"
    )
    assert page.wait(selects)[:3] == ["rnn/train", "(none)", "weight_norm"]
    assert "statistic=weight_norm" in page.evaluate("location.hash")
