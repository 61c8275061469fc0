// One run's panel: title, colour bar, the heat map in a scrolling viewport,
// the step axis, the findings strip and the loss strip on that axis, the
// findings in words. The hovered column is marked across map and strips, the
// clicked cell outlined.
//
// Example:
//   const panel = buildPanel(page.maps, "mlp/train");
//   drawPanel(panel, {grid, findings, loss}, view, options, hooks);

import {drawAxis, stepAxis} from "./axis.js";
import {drawFindings, drawLoss, formatted} from "./charts.js";
import {drawHeatMap, isMarked, LABEL_WIDTH} from "./heatmap.js";
import {drawLegend} from "./legend.js";
import {combination} from "./rows.js";

/** The elements of one panel, appended to `parent`. */
export function buildPanel(parent, name) {
  const box = add("div", parent, "panel");
  box.dataset.run = name;
  const panel = {name, box, title: add("div", box, "title"), legend: add("div", box)};
  panel.plot = add("div", box, "plot");
  panel.viewport = add("div", panel.plot, "viewport");
  panel.canvas = add("canvas", panel.viewport, "heatmap");
  panel.outline = add("div", panel.viewport, "outline");
  panel.axisCanvas = add("canvas", panel.plot, "axis");
  panel.strip = add("canvas", panel.plot, "findings-strip");
  panel.lossCanvas = add("canvas", panel.plot, "loss-strip");
  panel.cursor = add("div", panel.plot, "cursor");
  panel.clicked = add("div", panel.plot, "clicked");
  panel.list = add("div", box, "findings");
  return panel;
}

/** Shows `message` instead of a map (the run lacks what is asked). */
export function panelMessage(panel, message) {
  panel.title.textContent = panel.name;
  panel.plot.replaceChildren();
  const note = add("div", panel.plot, "message");
  note.textContent = message;
  panel.list.replaceChildren();
}

/**
 * Draws the panel. view: rows.js `viewRows` of the grid. options: {width,
 * rowHeight, viewportHeight, scale, shared, label, selected, marked}.
 * hooks: {cell(row, column), finding(finding), toggle(key), hover(column)}.
 */
export function drawPanel(panel, data, view, options, hooks) {
  const {grid, findings, loss} = data;
  panel.box.style.width = `${options.width}px`;
  const rows = grid.rows.length;
  const shownRows = view.rows.length;
  panel.title.textContent = `${panel.name}: ${options.label}, ${rows} rows` +
    (shownRows !== rows ? ` (${shownRows} shown)` : "") +
    ` x ${grid.steps.length} logged steps, input at the top`;
  drawLegend(panel.legend, options.scale, options.label.replace(/ \(log10\)$/, ""), options.shared);
  const start = performance.now();
  const map = drawHeatMap(panel.canvas, view, options, {scale: options.scale, marked: options.marked});
  Object.assign(panel.canvas.dataset, {
    cells: grid.rows.length * grid.steps.length,
    rows: shownRows,
    steps: grid.steps.length,
    rowHeight: map.rowHeight,
    cellWidth: map.cellWidth,
    labelWidth: LABEL_WIDTH,
    rowKeys: view.rows.map((row) => row.key).join("\n"),
    stepList: grid.steps.join(","),
    marked: view.rows.filter((row) => isMarked(row, options.marked)).map((row) => row.key).join("\n"),
    drawMs: (performance.now() - start).toFixed(1),
  });
  panel.viewport.style.height = `${Math.min(panel.canvas.height, options.viewportHeight)}px`;
  const axis = stepAxis(grid.steps, options.width - LABEL_WIDTH - 2, LABEL_WIDTH);
  drawAxis(panel.axisCanvas, axis, options.width, LABEL_WIDTH);
  panel.axisCanvas.dataset.ticks = axis.ticks.map((t) => t.step).join(",");
  panel.axisCanvas.dataset.tickX = axis.ticks.map((t) => t.x.toFixed(1)).join(",");
  panel.axisCanvas.dataset.breaks = axis.breaks.map((b) => grid.steps[b.column]).join(",");
  const visible = findings.findings;
  const note = findings.note || "";
  const pick = drawFindings(panel.strip, visible, axis, options.width, options.selected, note);
  drawLoss(panel.lossCanvas, loss, axis, options.width);
  panel.geometry = {map, axis, view};
  wire(panel, data, view, map, axis, pick, hooks);
  listFindings(panel, visible, note, options.selected, hooks);
  panel.cursor.style.display = panel.clicked.style.display = panel.outline.style.display = "none";
}

/** Marks column `column` as hovered (`"cursor"`) or clicked, on map and strips. */
export function markColumn(panel, column, which = "cursor") {
  const line = panel[which];
  if (column === null || !panel.geometry || column >= panel.geometry.view.steps.length) {
    line.style.display = "none";
    return;
  }
  const x = panel.geometry.axis.columnX(column);
  Object.assign(line.style, {display: "block", left: `${Math.round(x)}px`});
  line.dataset.step = panel.geometry.view.steps[column];
}

/** Outlines the clicked cell and marks its column. */
export function markCell(panel, row, column) {
  const {map} = panel.geometry;
  const width = Math.max(map.cellWidth, 3);
  Object.assign(panel.outline.style, {
    display: "block",
    left: `${map.columnX(column) - width / 2 - 1}px`,
    top: `${map.rowY(row) - 1}px`,
    width: `${width}px`,
    height: `${Math.max(map.rowHeight, 2)}px`,
  });
  markColumn(panel, column, "clicked");
}

/** Scrolls the map so that the first row of a marked layer is in view. */
export function revealMarked(panel, marked) {
  const {view, map} = panel.geometry;
  const r = view.rows.findIndex((row) => isMarked(row, marked));
  if (r < 0) return;
  const y = map.rowY(r);
  const {viewport} = panel;
  if (y < viewport.scrollTop || y > viewport.scrollTop + viewport.clientHeight - map.rowHeight) {
    viewport.scrollTop = Math.max(0, y - viewport.clientHeight / 3);
  }
}

function wire(panel, data, view, map, axis, pick, hooks) {
  const {grid} = data;
  const columns = grid.steps.length;
  panel.canvas.onmousemove = (event) => {
    const cell = map.cellAt(event.offsetX, event.offsetY);
    if (!cell) return hooks.hover(null);
    markColumn(panel, cell.column);
    const row = view.rows[cell.row];
    const index = cell.row * columns + cell.column;
    hooks.hover(event, tooltip(grid, row, view.values[index], view.undefined.has(index), cell.column));
  };
  panel.canvas.onmouseleave = () => {
    markColumn(panel, null);
    hooks.hover(null);
  };
  panel.canvas.onclick = (event) => {
    if (event.offsetX < LABEL_WIDTH) {
      const r = map.rowAt(event.offsetY);
      if (r !== null && view.rows[r].group) hooks.toggle(view.rows[r].key);
      return;
    }
    const cell = map.cellAt(event.offsetX, event.offsetY);
    if (cell) {
      markCell(panel, cell.row, cell.column);
      hooks.cell(panel, view.rows[cell.row], cell.column);
    }
  };
  for (const strip of [panel.strip, panel.lossCanvas, panel.axisCanvas]) {
    strip.onmousemove = (event) => {
      const c = axis.columnOf(event.offsetX);
      markColumn(panel, c >= 0 && c < columns ? c : null);
    };
    strip.onmouseleave = () => markColumn(panel, null);
  }
  panel.strip.onclick = (event) => {
    const finding = pick(event.offsetY);
    if (finding) hooks.finding(finding);
  };
}

function tooltip(grid, row, value, isUndefined, column) {
  let text;
  if (isUndefined) text = "undefined";
  else if (Number.isNaN(value)) text = "not logged";
  else if (grid.scale === "log10") text = `${formatted(value)} (log10 ${value > 0 ? Math.log10(value).toFixed(2) : "-∞"})`;
  else text = `${(value * 100).toFixed(1)}%`;
  const group = row.group ? ` (${row.members.length} rows: ${combination(grid.statistic)})` : "";
  return `${row.label}${group} · step ${grid.steps[column]} · ${text}`;
}

function listFindings(panel, findings, note, selected, hooks) {
  panel.list.replaceChildren();
  if (!findings.length) {
    const text = note ? `This run has ${note}.` : "No findings: the diagnosis found no gradient problem in this run.";
    add("p", panel.list, note ? "no-data" : "none").textContent = text;
    return;
  }
  for (const finding of findings) {
    const item = add("p", panel.list, finding === selected ? "finding selected" : "finding");
    const cleared = finding.cleared_step === null ? "still active" : `cleared at step ${finding.cleared_step}`;
    const link = add("a", item);
    link.href = "#";
    link.textContent = `Step ${finding.first_step}, ${cleared}`;
    link.onclick = (event) => {
      event.preventDefault();
      hooks.finding(finding);
    };
    item.append(`: ${finding.text}`);
  }
}

function add(tag, parent, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  parent.appendChild(node);
  return node;
}
