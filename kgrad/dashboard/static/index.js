// The Gradients tab. TensorBoard loads this ES module in its iframe and calls
// `render()`; every URL is relative to the plugin's `/data/plugin/<name>/`.
//
// When the heat maps are drawn, <body> gets data-ready="true", and each map
// canvas data-cells (cells drawn), data-rows, data-steps and data-draw-ms.
// The page's query may preselect runs: `?name=kgrad&run=a/train&compare=b/train`.

import {decodeValues, drawHeatMap} from "./heatmap.js";
import {drawFindings, drawHistogram, drawSeries} from "./panels.js";

const POLL_MS = 30000;

export async function render() {
  const page = buildPage();
  const runs = await getJson("runs");
  if (!runs.length) {
    page.status.textContent = "No kgrad runs yet: train with kgrad.GradientMonitor(log_dir).";
    document.body.dataset.ready = "true";
    return;
  }
  const query = new URLSearchParams(location.search);
  fillSelect(page.run, runs.map((r) => r.run), query.get("run"));
  fillSelect(page.compare, ["(none)", ...runs.map((r) => r.run)], query.get("compare") || "(none)");
  const redraw = () => draw(page, runs).catch((error) => showError(page, error));
  const onRunChange = () => {
    updateStatistics(page, runs);
    redraw();
  };
  page.run.onchange = onRunChange;
  page.compare.onchange = redraw;
  page.statistic.onchange = () => {
    page.layer.hidden = !choosesLayer(page, runs);
    redraw();
  };
  page.layer.onchange = redraw;
  page.refresh.onclick = redraw;
  let timer = null;
  page.poll.onchange = () => {
    clearInterval(timer);
    timer = page.poll.checked ? setInterval(redraw, POLL_MS) : null;
  };
  updateStatistics(page, runs, query.get("statistic"));
  await redraw();
}

function buildPage() {
  document.body.style.cssText = "font: 13px sans-serif; margin: 8px; color: #333";
  const bar = element("div", document.body);
  const make = (label, tag) => {
    const wrap = element("label", bar, label + " ");
    wrap.style.marginRight = "12px";
    return element(tag, wrap);
  };
  const page = {
    run: make("Run", "select"),
    compare: make("side by side with", "select"),
    statistic: make("Show", "select"),
    layer: make("", "select"),
    refresh: element("button", bar, "Refresh"),
    poll: make(" poll every 30 s", "input"),
  };
  page.poll.type = "checkbox";
  page.layer.hidden = true;
  page.status = element("div", document.body);
  page.status.style.margin = "6px 0";
  page.maps = element("div", document.body);
  page.maps.style.cssText = "display: flex; gap: 16px; align-items: flex-start";
  page.tooltip = element("div", document.body);
  page.tooltip.style.cssText =
    "position: fixed; background: #fff; border: 1px solid #999; padding: 3px 6px; pointer-events: none; display: none";
  page.detail = element("div", document.body);
  page.detail.style.cssText = "display: flex; gap: 16px; margin-top: 8px";
  page.series = element("canvas", page.detail);
  page.histogram = element("canvas", page.detail);
  page.series.width = page.histogram.width = 0;
  return page;
}

function updateStatistics(page, runs, wanted) {
  const run = runs.find((r) => r.run === page.run.value);
  // The server says what each statistic is (`choices`): no tag name here.
  const names = run.choices.map((c) => c.statistic);
  const labels = Object.fromEntries(run.choices.map((c) => [c.statistic, c.label]));
  const current = wanted || page.statistic.value;
  fillSelect(page.statistic, names, names.includes(current) ? current : names[0], labels);
  fillSelect(page.layer, run.recurrent, page.layer.value);
  page.layer.hidden = !choosesLayer(page, runs);
}

function choosesLayer(page, runs) {
  const run = runs.find((r) => r.run === page.run.value);
  const choice = run.choices.find((c) => c.statistic === page.statistic.value);
  return Boolean(choice && choice.rows === "timesteps");
}

async function draw(page, runs) {
  delete document.body.dataset.ready;
  page.status.textContent = "Loading…";
  const names = [page.run.value];
  if (page.compare.value !== "(none)" && page.compare.value !== page.run.value) {
    names.push(page.compare.value);
  }
  const width = Math.max(600, (window.innerWidth - 40 - 16 * (names.length - 1)) / names.length);
  const panels = await Promise.all(names.map((name) => loadPanel(page, name)));
  page.maps.replaceChildren();
  const notes = [];
  for (const panel of panels) {
    drawPanel(page, panel, width);
    for (const sampling of [panel.grid.sampling, panel.findings.sampling]) {
      if (sampling) {
        notes.push(
          `${panel.name}: TensorBoard kept at most ${sampling.limit} points per tag of ` +
            `${sampling.plugin}, so some logged steps may be missing; start it with ` +
            `${sampling.flag} to see every step.`,
        );
      }
    }
  }
  page.status.textContent = notes.join(" ");
  page.status.style.color = notes.length ? "#b35900" : "#333";
  document.body.dataset.ready = "true";
}

async function loadPanel(page, name) {
  const statistic = page.statistic.value;
  const params = new URLSearchParams({run: name, statistic});
  if (!page.layer.hidden) params.set("layer", page.layer.value);
  const [grid, findings] = await Promise.all([
    getJson("heatmap?" + params),
    getJson("findings?" + new URLSearchParams({run: name})),
  ]);
  grid.values = decodeValues(grid.values);
  return {name, grid, findings};
}

function drawPanel(page, panel, width) {
  const box = element("div", page.maps);
  const {grid, findings} = panel;
  const title = element("div", box, `${panel.name}: ${grid.label}, ` +
    `${grid.rows.length} rows x ${grid.steps.length} logged steps, input at the top`);
  title.style.fontWeight = "bold";
  const canvas = element("canvas", box);
  canvas.className = "heatmap";
  const legend = element("div", box);
  const strip = element("canvas", box);
  const list = element("div", box);
  let selected = null;
  const paint = () => {
    const highlight = new Set(
      findings.findings.filter((f) => !selected || f === selected).flatMap((f) => f.layers),
    );
    const start = performance.now();
    const map = drawHeatMap(canvas, grid, {width, highlight});
    canvas.dataset.drawMs = (performance.now() - start).toFixed(1);
    canvas.dataset.cells = map.cells;
    canvas.dataset.rows = grid.rows.length;
    canvas.dataset.steps = grid.steps.length;
    legend.textContent = grid.steps.length
      ? `colour: ${map.range[0].toFixed(2)} (dark) to ${map.range[1].toFixed(2)} (yellow); ` +
        "black: exactly 0; grey: not logged. Red marks: layers named by a finding."
      : "No logged steps yet.";
    return map;
  };
  let map = paint();
  const pickFinding = drawFindings(strip, findings.findings, map, grid.steps, canvas.width);
  strip.onclick = (event) => {
    const finding = pickFinding(event.offsetY);
    selected = finding === selected ? null : finding;
    map = paint();
  };
  for (const finding of findings.findings) {
    const cleared = finding.cleared_step === null ? "still active" : `cleared at step ${finding.cleared_step}`;
    element("p", list, `Step ${finding.first_step}, ${cleared}: ${finding.text}`);
  }
  canvas.onmousemove = (event) => {
    const cell = map.cellAt(event.offsetX, event.offsetY);
    if (!cell) {
      page.tooltip.style.display = "none";
      return;
    }
    page.tooltip.textContent = `${grid.rows[cell.row]} · step ${grid.steps[cell.column]} · ` +
      (Number.isNaN(cell.value) ? "not logged" : cell.value.toPrecision(4));
    Object.assign(page.tooltip.style, {
      display: "block", left: `${event.clientX + 12}px`, top: `${event.clientY + 12}px`,
    });
  };
  canvas.onmouseleave = () => (page.tooltip.style.display = "none");
  canvas.onclick = (event) => {
    const cell = map.cellAt(event.offsetX, event.offsetY);
    if (cell) showCell(page, panel, cell).catch((error) => showError(page, error));
  };
}

async function showCell(page, panel, cell) {
  const {grid} = panel;
  const row = grid.rows[cell.row];
  const columns = grid.steps.length;
  const values = grid.values.subarray(cell.row * columns, (cell.row + 1) * columns);
  drawSeries(page.series, `${row} over time`, grid.steps, values, grid.scale);
  page.histogram.width = 0;
  if (grid.rows_are !== "variables") return;
  const params = new URLSearchParams({run: panel.name, path: row, step: grid.steps[cell.column]});
  const response = await fetch("histogram?" + params);
  if (response.status === 404) {
    page.status.textContent = `${row} has no gradient histogram (layer ${grid.row_layers[cell.row]}).`;
    return;
  }
  drawHistogram(page.histogram, await checked(response));
}

async function getJson(url) {
  return checked(await fetch(url));
}

async function checked(response) {
  if (!response.ok) throw new Error(`${response.url}: ${await response.text()}`);
  return response.json();
}

function showError(page, error) {
  page.status.textContent = String(error.message || error);
  page.status.style.color = "#d62728";
  document.body.dataset.ready = "error";
}

function fillSelect(select, values, chosen, labels = {}) {
  select.replaceChildren(...values.map((value) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = labels[value] || value;
    return option;
  }));
  if (values.includes(chosen)) select.value = chosen;
}

function element(tag, parent, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  parent.appendChild(node);
  return node;
}

