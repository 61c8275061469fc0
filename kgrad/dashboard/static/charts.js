// The pictures around the heat map: the findings strip and the loss strip
// on the map's step axis, and, in the detail beside the map, one row over
// time and a gradient histogram, each with labelled axes.
//
// Example:
//   const pick = drawFindings(canvas, findings, axis, width, selected);
//   pick(y)  // -> the finding whose bar is at height y, or null
//   drawHistogram(canvas, await getJson("histogram?..."), 168);

import {drawGridLines} from "./axis.js";
import {LABEL_WIDTH, shown} from "./heatmap.js";
import {LOSS} from "./tags.js";

const SEVERITY = {error: "#d62728", warning: "#ff7f0e"};
const BAR = 12;
const LOSS_HEIGHT = 46;

/** `[ticks]`: about `count` round numbers from `low` to `high`. */
export function niceTicks(low, high, count = 4) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const unit = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * unit).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

/** A number as the tab writes every number: 3 significant digits. */
export function formatted(value) {
  if (value === null || Number.isNaN(value)) return "—";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  if (value === 0) return "0";
  const size = Math.abs(value);
  return size >= 1e4 || size < 1e-3 ? value.toExponential(2) : String(Number(value.toPrecision(3)));
}

/**
 * One bar per finding, from the step it appeared to the step it cleared (or
 * the last logged step), on `axis`; `note` (a run without findings data)
 * instead of "No findings". Returns pick(y) -> finding or null.
 */
export function drawFindings(canvas, findings, axis, width, selected, note) {
  canvas.width = width;
  canvas.height = Math.max(1, findings.length) * (BAR + 4) + 4;
  const ctx = canvas.getContext("2d");
  drawGridLines(ctx, axis, canvas.height);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  if (!findings.length) {
    ctx.fillStyle = note ? "#7f7f7f" : "#2ca02c";
    ctx.fillText(note ? "Findings: not recorded as data" : "No findings", 4, 4 + BAR / 2);
  }
  const end = axis.ticks.length ? Infinity : 0;
  findings.forEach((finding, i) => {
    const y = 4 + i * (BAR + 4);
    const x0 = axis.xOf(finding.first_step) - 1;
    const x1 = finding.cleared_step === null ? axis.xOf(end) + 2 : axis.xOf(finding.cleared_step);
    ctx.fillStyle = SEVERITY[finding.severity] || "#7f7f7f";
    ctx.fillRect(x0, y, Math.max(x1 - x0, 3), BAR);
    if (finding === selected) {
      ctx.strokeStyle = "#000";
      ctx.strokeRect(x0 - 1.5, y - 1.5, Math.max(x1 - x0, 3) + 3, BAR + 3);
    }
    ctx.fillStyle = "#333";
    ctx.fillText(cut(finding.title, 36), 4, y + BAR / 2);
  });
  return (y) => findings[Math.floor((y - 4) / (BAR + 4))] || null;
}

/** The loss of each logged step as a line on `axis`, its range on the left. */
export function drawLoss(canvas, loss, axis, width) {
  canvas.width = width;
  canvas.height = LOSS_HEIGHT;
  const ctx = canvas.getContext("2d");
  drawGridLines(ctx, axis, LOSS_HEIGHT);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#333";
  ctx.textBaseline = "middle";
  const points = loss.steps.map((s, i) => [s, loss.values[i]]).filter((p) => p[1] !== null);
  canvas.dataset.points = points.length;
  if (!points.length) {
    ctx.fillText("loss: not logged", 4, LOSS_HEIGHT / 2);
    return;
  }
  const ys = points.map((p) => p[1]);
  let [low, high] = [Math.min(...ys), Math.max(...ys)];
  if (high === low) [low, high] = [low - 0.5, high + 0.5];
  const py = (v) => 4 + (1 - (v - low) / (high - low)) * (LOSS_HEIGHT - 8);
  ctx.fillText(`loss (${LOSS})`, 4, 10);
  ctx.textAlign = "right";
  ctx.fillText(formatted(high), LABEL_WIDTH - 10, 8);
  ctx.fillText(formatted(low), LABEL_WIDTH - 10, LOSS_HEIGHT - 8);
  ctx.strokeStyle = "#1f77b4";
  ctx.beginPath();
  points.forEach(([s, v], i) => (i ? ctx.lineTo(axis.xOf(s), py(v)) : ctx.moveTo(axis.xOf(s), py(v))));
  ctx.stroke();
}

/**
 * One row over true steps, on the map's scale, the clicked step marked.
 * `values` are raw; a log10 scale is drawn as powers of ten.
 */
export function drawSeries(canvas, title, steps, values, kind, clickedStep) {
  const points = [];
  steps.forEach((step, i) => {
    const s = shown(values[i], kind);
    if (Number.isFinite(s)) points.push([step, s]);
  });
  const ctx = frame(canvas, title);
  if (!points.length) {
    ctx.fillText("no finite value to draw", 50, 60);
    return;
  }
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const box = {left: 60, top: 22, right: canvas.width - 10, bottom: canvas.height - 30};
  const [x0, x1] = spread(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = spread(Math.min(...ys), Math.max(...ys));
  const px = (x) => box.left + ((x - x0) / (x1 - x0)) * (box.right - box.left);
  const py = (y) => box.bottom - ((y - y0) / (y1 - y0)) * (box.bottom - box.top);
  axes(ctx, box, niceTicks(x0, x1, 4).map((t) => [px(t), formatted(t)]),
    niceTicks(y0, y1, 3).map((t) => [py(t), formatted(kind === "log10" ? 10 ** t : t)]),
    "step", kind === "log10" ? "log scale" : "value");
  ctx.strokeStyle = "#1f77b4";
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
  ctx.stroke();
  if (clickedStep !== undefined) {
    ctx.fillStyle = "#d62728";
    ctx.fillRect(Math.round(px(clickedStep)), box.top, 1, box.bottom - box.top);
  }
}

/** A gradient histogram: `[left, right, count]` buckets as bars, with axes. */
export function drawHistogram(canvas, answer, clickedStep) {
  const nearest = answer.step === clickedStep ? "" : ` (nearest logged to ${clickedStep})`;
  const ctx = frame(canvas, `histogram at step ${answer.step}${nearest}`);
  const buckets = answer.buckets.filter((b) => b[0] !== null && b[1] !== null);
  if (!buckets.length) return;
  const box = {left: 60, top: 22, right: canvas.width - 10, bottom: canvas.height - 30};
  const [left, right] = spread(buckets[0][0], buckets[buckets.length - 1][1]);
  const top = Math.max(...buckets.map((b) => b[2]), 1);
  const px = (x) => box.left + ((x - left) / (right - left)) * (box.right - box.left);
  const py = (c) => box.bottom - (c / top) * (box.bottom - box.top);
  ctx.fillStyle = "#1f77b4";
  for (const [l, r, count] of buckets) {
    ctx.fillRect(px(l), py(count), Math.max(1, px(r) - px(l)), box.bottom - py(count));
  }
  axes(ctx, box, niceTicks(left, right, 3).map((t) => [px(t), formatted(t)]),
    niceTicks(0, top, 3).map((t) => [py(t), formatted(t)]), "gradient value", "count");
  canvas.dataset.counts = buckets.map((b) => b[2]).join(",");
}

function axes(ctx, box, xTicks, yTicks, xName, yName) {
  ctx.fillStyle = "#555";
  ctx.fillRect(box.left, box.bottom, box.right - box.left, 1);
  ctx.fillRect(box.left, box.top, 1, box.bottom - box.top);
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const [x, label] of xTicks) {
    ctx.fillRect(Math.round(x), box.bottom, 1, 4);
    ctx.fillText(label, x, box.bottom + 5);
  }
  ctx.fillText(xName, (box.left + box.right) / 2, box.bottom + 17);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const [y, label] of yTicks) {
    ctx.fillRect(box.left - 4, Math.round(y), 4, 1);
    ctx.fillText(label, box.left - 6, y);
  }
  ctx.save();
  ctx.translate(7, (box.top + box.bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText(yName, 0, 0);
  ctx.restore();
}

function spread(low, high) {
  return high > low ? [low, high] : [low - 0.5, high + 0.5];
}

function frame(canvas, title) {
  canvas.width = 290;
  canvas.height = 170;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#333";
  ctx.textBaseline = "middle";
  ctx.fillText(cut(title, 56), 4, 9);
  canvas.dataset.title = title;
  return ctx;
}

function cut(text, length) {
  return text.length <= length ? text : text.slice(0, length - 1) + "…";
}
