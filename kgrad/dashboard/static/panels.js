// The small pictures around the heat map: the findings strip on the same time
// axis, a gradient histogram, and one row's values over time.
//
// Example:
//   drawFindings(canvas, findings, map, grid.steps);
//   drawHistogram(canvas, await getJson("histogram?..."));

import {shown} from "./heatmap.js";

const SEVERITY = {error: "#d62728", warning: "#ff7f0e"};
const BAR = 14;

/**
 * One bar per finding from the step it appeared to the step it cleared (or
 * the last logged step), aligned with the heat map's columns.
 */
export function drawFindings(canvas, findings, map, steps, width) {
  canvas.width = width;
  canvas.height = Math.max(1, findings.length) * (BAR + 4) + 4;
  const ctx = canvas.getContext("2d");
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  const last = steps.length ? steps[steps.length - 1] : 0;
  findings.forEach((finding, i) => {
    const y = 4 + i * (BAR + 4);
    const x0 = map.columnX(finding.first_step);
    const end = finding.cleared_step === null ? last + 1 : finding.cleared_step;
    const x1 = Math.max(map.columnX(end), x0 + 2);
    ctx.fillStyle = SEVERITY[finding.severity] || "#7f7f7f";
    ctx.fillRect(x0, y, x1 - x0, BAR);
    ctx.fillStyle = "#333";
    ctx.fillText(clip(finding.title, 40), 2, y + BAR / 2);
  });
  return (y) => findings[Math.floor((y - 4) / (BAR + 4))] || null;
}

/** A gradient histogram: `[left, right, count]` buckets as bars. */
export function drawHistogram(canvas, answer) {
  const ctx = frame(canvas, `gradient histogram, step ${answer.step}`);
  const buckets = answer.buckets.filter((b) => b[0] !== null && b[1] !== null);
  if (!buckets.length) return;
  const left = buckets[0][0];
  const right = buckets[buckets.length - 1][1];
  const top = Math.max(...buckets.map((b) => b[2]), 1);
  const span = right > left ? right - left : 1;
  const w = canvas.width - 20;
  const h = canvas.height - 40;
  ctx.fillStyle = "#1f77b4";
  for (const [l, r, count] of buckets) {
    const x = 10 + ((l - left) / span) * w;
    const bw = Math.max(1, ((r - l) / span) * w);
    const bh = (count / top) * h;
    ctx.fillRect(x, 20 + h - bh, bw, bh);
  }
  ctx.fillStyle = "#333";
  ctx.fillText(left.toPrecision(3), 10, canvas.height - 8);
  ctx.textAlign = "right";
  ctx.fillText(right.toPrecision(3), canvas.width - 10, canvas.height - 8);
}

/** One row of the heat map over time, on the map's (log) scale. */
export function drawSeries(canvas, title, steps, values, scale) {
  const ctx = frame(canvas, title + (scale === "log10" ? " (log10)" : ""));
  const points = [];
  steps.forEach((step, i) => {
    const s = shown(values[i], scale);
    if (Number.isFinite(s)) points.push([step, s]);
  });
  if (!points.length) return;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const w = canvas.width - 70;
  const h = canvas.height - 40;
  const px = (x) => 60 + (x1 > x0 ? ((x - x0) / (x1 - x0)) * w : w / 2);
  const py = (y) => 20 + h - ((y - y0) / (y1 - y0)) * h;
  ctx.strokeStyle = "#1f77b4";
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
  ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.fillText(y1.toPrecision(3), 2, 24);
  ctx.fillText(y0.toPrecision(3), 2, 20 + h);
  ctx.fillText(`step ${x0}`, 60, canvas.height - 8);
  ctx.textAlign = "right";
  ctx.fillText(`step ${x1}`, canvas.width - 10, canvas.height - 8);
}

function frame(canvas, title) {
  canvas.width = 420;
  canvas.height = 180;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "12px sans-serif";
  ctx.fillStyle = "#333";
  ctx.fillText(title, 10, 12);
  ctx.font = "11px sans-serif";
  return ctx;
}

function clip(text, length) {
  return text.length <= length ? text : text.slice(0, length - 1) + "…";
}
