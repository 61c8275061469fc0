// The Gradients tab. TensorBoard loads this ES module in its iframe and calls
// `render()`; every URL is relative to the plugin's `/data/plugin/<name>/`; tag and
// statistic names come from `./tags.js`, which the plugin generates from kgrad.tags.
//
// The selection (run, side-by-side run, statistic, rows, filter, scale, zoom,
// finding) is kept in the page's query and, inside TensorBoard, in its hash
// (`/#kgrad&run=...`), so a reload or a shared link shows the same view.
// When the maps are drawn, <body> gets data-ready="true", data-draw-ms (from
// the switch or Refresh to drawn) and data-ready-ms (since the page opened),
// and each map canvas data-cells, data-rows, data-steps, data-row-height.
// Tested, with every module of static/, by tests/test_dashboard_browser.py.

import {colourScale, decodeValues} from "./heatmap.js";
import {buildDetail, clearDetail, showDetail} from "./detail.js";
import {buildPanel, drawPanel, markColumn, panelMessage, revealMarked} from "./panel.js";
import {defaultGrouping, GROUPINGS, viewRows} from "./rows.js";
import {layout, STYLE} from "./style.js";
import {B_SIMPLE, DEAD_UNITS, GRAD_NORM, SATURATION, TEMPORAL_GRAD, UPDATE_RATIO, WEIGHT_NORM} from "./tags.js";

const STATISTIC_LABELS = {
  [GRAD_NORM]: "gradient norm (log10)",
  [UPDATE_RATIO]: "update / weight ratio (log10)",
  [WEIGHT_NORM]: "weight norm (log10)",
  [DEAD_UNITS]: "dead-unit share",
  [SATURATION]: "saturated share",
  [TEMPORAL_GRAD]: "gradient through time (log10)",
  [B_SIMPLE]: "noise scale B_simple per layer (log10)",
};
const ZOOMS = {auto: "auto", fit: "fit all", 4: "4 px", 8: "8 px", 12: "12 px", 18: "18 px"};
const KEYS = ["run", "compare", "statistic", "layer", "group", "filter", "bn", "shared", "zoom", "finding"];
const POLL_MS = 30000;
const EMPTY_POLL_MS = 5000;

export async function render() {
  const page = buildPage();
  page.state = readState();
  page.expanded = new Set();
  page.answers = new Map();
  wireControls(page);
  await relist(page);
}

function buildPage() {
  const style = document.createElement("style");
  style.textContent = STYLE;
  document.head.appendChild(style);
  const bar = element("div", document.body, "toolbar");
  const make = (label, tag) => {
    const wrap = element("label", bar);
    wrap.append(label ? label + " " : "");
    return element(tag, wrap);
  };
  const page = {
    run: make("Run", "select"),
    compare: make("side by side", "select"),
    statistic: make("Show", "select"),
    layer: make("", "select"),
    group: make("Rows", "select"),
    filter: make("Filter", "input"),
    bn: make("no BatchNorm", "input"),
    shared: make("one scale", "input"),
    zoom: make("Zoom", "select"),
    refresh: element("button", bar),
    poll: make("poll", "input"),
  };
  page.refresh.textContent = "Refresh";
  page.poll.parentElement.title = "Refresh every 30 s";
  page.bn.type = page.shared.type = page.poll.type = "checkbox";
  page.filter.placeholder = "kernel -_bn";
  page.filter.title = "Space-separated patterns a row must match; -pattern: must not (regular expressions).";
  fillSelect(page.group, Object.keys(GROUPINGS), "auto", GROUPINGS);
  fillSelect(page.zoom, Object.keys(ZOOMS), "auto", ZOOMS);
  page.status = element("div", document.body, "status");
  const main = element("div", document.body, "main");
  page.maps = element("div", main, "maps");
  page.detail = buildDetail(main);
  page.tooltip = element("div", document.body, "tooltip");
  return page;
}

function wireControls(page) {
  const change = (clear, reset = []) => () => {
    readControls(page);
    for (const key of reset) page.state[key] = "";
    if (clear) clearDetail(page.detail);
    redraw(page);
  };
  page.run.onchange = change(true, ["finding", "group"]);
  page.compare.onchange = change(true);
  page.statistic.onchange = change(true, ["finding"]);
  page.layer.onchange = change(true);
  page.group.onchange = change(true);
  page.filter.onchange = change(true);
  page.bn.onchange = change(true);
  page.shared.onchange = change(false);
  page.zoom.onchange = change(false);
  page.refresh.onclick = () => relist(page);
  let timer = null;
  page.poll.onchange = () => {
    clearInterval(timer);
    timer = page.poll.checked ? setInterval(() => relist(page, {keepDetail: true}), POLL_MS) : null;
  };
  window.onresize = () => redraw(page);
}

/**
 * Lists the runs again (Refresh, poll, empty state), then draws. A poll keeps
 * the detail the user opened (it names its run, row and step).
 */
async function relist(page, {keepDetail = false} = {}) {
  delete document.body.dataset.ready;
  clearTimeout(page.emptyTimer);
  page.answers.clear();
  if (!keepDetail) clearDetail(page.detail);
  let runs;
  try {
    runs = await getJson("runs");
  } catch (error) {
    return showError(page, error);
  }
  page.runs = runs;
  if (!runs.length) {
    page.maps.replaceChildren();
    page.status.textContent =
      "No kgrad runs yet: train with kgrad.GradientMonitor(log_dir). This page looks again every 5 s.";
    page.emptyTimer = setTimeout(() => relist(page), EMPTY_POLL_MS);
    document.body.dataset.ready = "true";
    return;
  }
  const names = runs.map((r) => r.run);
  const state = page.state;
  if (!names.includes(state.run)) state.run = defaultRun(runs);
  fillSelect(page.run, names, state.run, labelsOf(runs));
  fillSelect(page.compare, ["(none)", ...names], names.includes(state.compare) ? state.compare : "(none)");
  await redraw(page);
}

/** The run a page opens on: one with findings, errors first, else the first. */
export function defaultRun(runs) {
  const rank = (r) => [r.errors || 0, r.findings || 0];
  const best = [...runs].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return y[0] - x[0] || y[1] - x[1];
  })[0];
  return best.run;
}

function labelsOf(runs) {
  return Object.fromEntries(runs.map((r) => [r.run, r.findings ? `${r.run} (${r.findings} finding${r.findings > 1 ? "s" : ""})` : r.run]));
}

function readControls(page) {
  const s = page.state;
  s.run = page.run.value;
  s.compare = page.compare.value === "(none)" ? "" : page.compare.value;
  s.statistic = page.statistic.value;
  s.layer = page.layer.value;
  s.group = page.group.value;
  s.filter = page.filter.value;
  s.bn = page.bn.checked ? "1" : "";
  s.shared = page.shared.checked ? "" : "0";
  s.zoom = page.zoom.value === "auto" ? "" : page.zoom.value;
}

/** Fills the statistic and layer menus from every run shown, keeps the state's. */
function updateMenus(page, shown) {
  const s = page.state;
  const statistics = Object.keys(STATISTIC_LABELS).filter((name) =>
    shown.some((r) => (name === TEMPORAL_GRAD ? r.recurrent.length : r.statistics.includes(name))));
  if (!statistics.includes(s.statistic)) s.statistic = GRAD_NORM;
  fillSelect(page.statistic, statistics, s.statistic, STATISTIC_LABELS);
  const recurrent = [...new Set(shown.flatMap((r) => r.recurrent))];
  if (!recurrent.includes(s.layer)) s.layer = recurrent[0] || "";
  fillSelect(page.layer, recurrent, s.layer);
  page.layer.parentElement.hidden = s.statistic !== TEMPORAL_GRAD;
  page.group.parentElement.hidden = s.statistic === TEMPORAL_GRAD;
  page.bn.parentElement.hidden = s.statistic === TEMPORAL_GRAD || !shown.some((r) => r.batchnorm);
  page.filter.value = s.filter || "";
  page.bn.checked = s.bn === "1";
  page.shared.checked = s.shared !== "0";
  page.shared.parentElement.hidden = !s.compare;
  page.zoom.value = s.zoom || "auto";
}

async function redraw(page) {
  const generation = (page.generation || 0) + 1;
  page.generation = generation;
  try {
    await draw(page, generation);
  } catch (error) {
    if (generation === page.generation) showError(page, error);
  }
}

async function draw(page, generation) {
  delete document.body.dataset.ready;
  const started = performance.now();
  const s = page.state;
  const shown = [s.run, s.compare].filter((name, i) => name && (i === 0 || name !== s.run))
    .map((name) => page.runs.find((r) => r.run === name)).filter(Boolean);
  updateMenus(page, shown);
  page.status.textContent = "Loading…";
  page.status.style.color = "";
  const loaded = await Promise.all(shown.map((run) => loadRun(page, run)));
  if (generation !== page.generation) return;
  page.maps.replaceChildren();
  const drawn = loaded.filter((d) => d.grid);
  if (!s.group && drawn.length) s.group = defaultGrouping(drawn[0].grid);
  page.group.value = s.group || "variable";
  const views = drawn.map((d) => viewRows(d.grid, {grouping: s.group, filter: s.filter, hideBatchnorm: s.bn === "1", expanded: page.expanded}));
  const kind = drawn.length ? drawn[0].grid.scale : "log10";
  const shared = shown.length > 1 && s.shared !== "0";
  const sharedScale = colourScale(views, kind);
  const {width, viewportHeight} = layout(page, shown.length, drawn);
  page.panels = [];
  let v = 0;
  for (const data of loaded) {
    const panel = buildPanel(page.maps, data.run.run);
    page.panels.push(panel);
    if (!data.grid) {
      panelMessage(panel, data.message);
      continue;
    }
    const view = views[v++];
    const scale = shared ? sharedScale : colourScale([view], kind);
    const selected = data.findings.findings.find((f) => findingId(f) === s.finding) || null;
    const marked = markedLayers(data.grid, data.findings.findings, selected);
    const rowHeight = rowHeightFor(s.zoom, view.rows.length, viewportHeight);
    const options = {width, rowHeight, viewportHeight, scale, shared, label: STATISTIC_LABELS[s.statistic], selected, marked};
    drawPanel(panel, data, view, options, hooksFor(page, panel, data, view));
    if (selected) revealMarked(panel, marked);
  }
  writeState(s);
  page.status.textContent = samplingNotes(loaded).join(" ");
  page.status.style.color = "#b35900";
  document.body.dataset.drawMs = (performance.now() - started).toFixed(1);
  document.body.dataset.readyMs = performance.now().toFixed(1);
  document.body.dataset.ready = "true";
}

/** The heat map, findings and loss of a run, or why it has no such map. */
async function loadRun(page, run) {
  const s = page.state;
  const findings = await cached(page, "findings?" + new URLSearchParams({run: run.run}));
  const loss = run.loss ? await cached(page, "loss?" + new URLSearchParams({run: run.run})) : {steps: [], values: []};
  const label = STATISTIC_LABELS[s.statistic];
  if (s.statistic === TEMPORAL_GRAD && !run.recurrent.includes(s.layer)) {
    const which = run.recurrent.length ? `no recurrent layer ${s.layer}` : "no recurrent layer";
    return {run, findings, loss, message: `${run.run} has ${which}: no ${label} to show.`};
  }
  if (s.statistic !== TEMPORAL_GRAD && !run.statistics.includes(s.statistic)) {
    return {run, findings, loss, message: `${run.run} logged no ${label}: ${WHY_MISSING[s.statistic] || ""}`};
  }
  const params = new URLSearchParams({run: run.run, statistic: s.statistic});
  if (s.statistic === TEMPORAL_GRAD) params.set("layer", s.layer);
  const grid = await cached(page, "heatmap?" + params, (answer) => {
    answer.values = decodeValues(answer.values);
    return answer;
  });
  return {run, grid, findings, loss};
}

const WHY_MISSING = {
  [DEAD_UNITS]: "kgrad measures dead units on ReLU layers only.",
  [SATURATION]: "kgrad measures saturation on sigmoid and tanh layers only.",
  [UPDATE_RATIO]: "the update ratio needs the weights before and after a step.",
  [B_SIMPLE]: "the noise scale is logged with GradientMonitor(noise_scale=True).",
};

/** The layers to mark: those the findings about this map name (the selected one's only). */
export function markedLayers(grid, findings, selected) {
  const about = (f) => f.heat_map === grid.statistic &&
    (grid.statistic !== TEMPORAL_GRAD || f.layers.includes(grid.layer));
  const chosen = selected ? [selected].filter(about) : findings.filter(about);
  return new Set(chosen.flatMap((f) => f.layers));
}

function rowHeightFor(zoom, rows, height) {
  const fit = Math.max(1, Math.min(18, Math.floor((height - 2) / Math.max(rows, 1))));
  if (zoom === "fit") return fit;
  if (zoom) return Number(zoom);
  return fit >= 10 ? fit : 12;
}

function hooksFor(page, panel, data, view) {
  return {
    cell(target, row, column) {
      for (const other of page.panels) if (other !== target && other.geometry) markColumn(other, null, "clicked");
      const rowIndex = view.rows.indexOf(row);
      showDetail(page.detail, {run: data.run.run, grid: data.grid, row, column, view, rowIndex}, fetch)
        .catch((error) => showError(page, error));
    },
    finding(finding) {
      const s = page.state;
      const id = findingId(finding);
      s.finding = s.finding === id ? "" : id;
      if (s.finding) {
        if (finding.heat_map !== s.statistic) s.statistic = finding.heat_map;
        if (finding.heat_map === TEMPORAL_GRAD) s.layer = finding.layers[0] || s.layer;
        for (const key of groupsOf(view, finding.layers)) page.expanded.add(key);
      }
      clearDetail(page.detail);
      redraw(page);
    },
    toggle(key) {
      if (page.expanded.has(key)) page.expanded.delete(key);
      else page.expanded.add(key);
      redraw(page);
    },
    hover(event, text) {
      if (!event) {
        page.tooltip.style.display = "none";
        return;
      }
      page.tooltip.textContent = text;
      Object.assign(page.tooltip.style, {display: "block", left: `${event.clientX + 12}px`, top: `${event.clientY + 12}px`});
    },
  };
}

function groupsOf(view, layers) {
  return view.rows.filter((row) => row.group && row.layers.some((l) => layers.includes(l))).map((row) => row.key);
}

export function findingId(finding) {
  return String(finding.id ?? finding.title);
}

function samplingNotes(loaded) {
  const notes = [];
  for (const data of loaded) {
    for (const sampling of [data.grid && data.grid.sampling, data.findings.sampling]) {
      if (sampling) {
        notes.push(`${data.run.run}: TensorBoard kept at most ${sampling.limit} points per tag of ` +
          `${sampling.plugin}, so some logged steps may be missing; start it with ${sampling.flag} to see every step.`);
      }
    }
  }
  return notes;
}

/** The state in the page's query, or in TensorBoard's hash (`#kgrad&run=...`). */
function readState() {
  const query = new URLSearchParams(location.search);
  const hash = parentHash();
  const fromHash = hash && hash.startsWith("#kgrad") ? new URLSearchParams(hash.slice(1)) : null;
  const state = {};
  for (const key of KEYS) state[key] = (fromHash && fromHash.get(key)) || query.get(key) || "";
  return state;
}

function writeState(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) if (state[key]) params.set(key, state[key]);
  const query = new URLSearchParams(location.search);
  for (const key of KEYS) query.delete(key);
  for (const [key, value] of params) query.set(key, value);
  history.replaceState(null, "", `${location.pathname}?${query}`);
  try {
    if (window.parent !== window && parentHash().startsWith("#kgrad")) {
      const tail = params.toString();
      window.parent.history.replaceState(window.parent.history.state, "", `#kgrad${tail ? "&" + tail : ""}`);
    }
  } catch {
    // Another origin: the page's own query keeps the state.
  }
}

function parentHash() {
  try {
    return window.parent !== window ? window.parent.location.hash : "";
  } catch {
    return "";
  }
}

async function cached(page, url, prepare = (answer) => answer) {
  if (!page.answers.has(url)) page.answers.set(url, getJson(url).then(prepare));
  try {
    return await page.answers.get(url);
  } catch (error) {
    page.answers.delete(url);
    throw error;
  }
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${await response.text()}`);
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

function element(tag, parent, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  parent.appendChild(node);
  return node;
}
