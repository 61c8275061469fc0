// The detail beside the heat map: what was clicked (run, row, step, value),
// the row over time and its gradient histogram at that step. Cleared on
// every switch, so no chart of another run or statistic stays on screen.
//
// Example:
//   const detail = buildDetail(parent);
//   showDetail(detail, {run, grid, row, column, view}, getJson);
//   clearDetail(detail);

import {drawHistogram, drawSeries, formatted} from "./charts.js";
import {GRAD_NORM, UPDATE_RATIO, WEIGHT_NORM} from "./tags.js";

const VARIABLE_STATISTICS = [GRAD_NORM, UPDATE_RATIO, WEIGHT_NORM];
const EMPTY = "Click a cell of a map to see its row over time and its gradient histogram here.";

/** The detail's elements, appended to `parent`. */
export function buildDetail(parent) {
  const box = document.createElement("div");
  box.className = "detail";
  parent.appendChild(box);
  const detail = {box, title: add("div", box, "detail-title")};
  detail.series = add("canvas", box, "detail-series");
  detail.note = add("div", box, "detail-note");
  detail.histogram = add("canvas", box, "detail-histogram");
  clearDetail(detail);
  return detail;
}

/** Empties the detail. */
export function clearDetail(detail) {
  detail.token = {};
  detail.title.textContent = EMPTY;
  detail.note.textContent = "";
  detail.box.dataset.run = "";
  detail.box.dataset.row = "";
  detail.box.dataset.step = "";
  for (const canvas of [detail.series, detail.histogram]) {
    canvas.width = canvas.height = 0;
    canvas.dataset.step = "";
  }
}

/**
 * Shows the clicked cell: {run, grid, row, column, view, rowIndex}.
 * `getJson(url)` answers the `histogram` route (404: none at that path).
 */
export async function showDetail(detail, cell, fetchAnswer) {
  clearDetail(detail);
  const token = detail.token;
  const {run, grid, row, column, view, rowIndex} = cell;
  const step = grid.steps[column];
  const columns = grid.steps.length;
  const values = view.values.subarray(rowIndex * columns, (rowIndex + 1) * columns);
  const value = values[column];
  detail.title.textContent = `${run} · ${row.label}${row.group ? ` (${row.members.length} rows)` : ""}` +
    ` · step ${step} · ${Number.isNaN(value) ? "not logged" : formatted(value)}`;
  Object.assign(detail.box.dataset, {run, row: row.label, step});
  drawSeries(detail.series, `${row.label} over time`, grid.steps, values, grid.scale, step);
  detail.series.dataset.step = step;
  if (!VARIABLE_STATISTICS.includes(grid.statistic)) {
    detail.note.textContent = "Gradient histograms are logged per variable: show a variable statistic to see one.";
    return;
  }
  if (row.group) {
    detail.note.textContent = "A group of rows: open it (click its label) and click one variable to see its histogram.";
    return;
  }
  const params = new URLSearchParams({run, path: row.label, step});
  const response = await fetchAnswer("histogram?" + params);
  if (token !== detail.token) return; // another click or a switch came first
  if (response.status === 404) {
    detail.note.textContent = `No gradient histogram was logged for ${row.label}.`;
    return;
  }
  if (!response.ok) {
    detail.note.textContent = await response.text();
    return;
  }
  const answer = await response.json();
  if (token !== detail.token) return;
  drawHistogram(detail.histogram, answer, step);
  detail.histogram.dataset.step = answer.step;
}

function add(tag, parent, className) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}
