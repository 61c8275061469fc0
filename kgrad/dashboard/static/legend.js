// The colour bar of a heat map, with its units, and a swatch for each colour
// outside the scale (exactly 0, undefined, not logged) and for the marks.
//
// Example:
//   drawLegend(box, {kind: "log10", low: -6, high: 0.5}, "gradient norm", true);

import {colour, MARK, SPECIAL} from "./heatmap.js";
import {formatted} from "./charts.js";

const BAR_WIDTH = 200;

/** Fills `box` with the colour bar of `scale` and the swatches. */
export function drawLegend(box, scale, unit, shared) {
  box.replaceChildren();
  box.className = "legend";
  const bar = document.createElement("canvas");
  bar.className = "colour-bar";
  bar.width = BAR_WIDTH + 40;
  bar.height = 26;
  const ctx = bar.getContext("2d");
  for (let x = 0; x < BAR_WIDTH; x++) {
    ctx.fillStyle = `rgb(${colour(x / (BAR_WIDTH - 1)).join(",")})`;
    ctx.fillRect(20 + x, 0, 1, 10);
  }
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillStyle = "#333";
  const ticks = legendTicks(scale);
  bar.dataset.ticks = ticks.map((t) => t.label).join(",");
  for (const tick of ticks) {
    const x = 20 + ((tick.value - scale.low) / (scale.high - scale.low)) * (BAR_WIDTH - 1);
    ctx.fillRect(Math.round(x), 10, 1, 3);
    ctx.fillText(tick.label, x, 14);
  }
  const name = document.createElement("span");
  name.textContent = `${unit}${scale.kind === "log10" ? ", log scale" : ""}` + (shared ? " (both runs)" : "");
  box.append(name, bar);
  const specials = scale.kind === "log10" ? ["zero", "undefined", "missing"] : ["undefined", "missing"];
  for (const key of specials) {
    const item = swatch(`rgb(${SPECIAL[key].rgb.join(",")})`, SPECIAL[key].text, key);
    item.title = SPECIAL[key].title || "";
    box.append(item);
  }
  box.append(swatch(MARK, "finding's layer", "mark"));
}

/** The labelled values of the colour bar: powers of ten, or shares in %. */
export function legendTicks(scale) {
  if (scale.kind !== "log10") {
    return [0, 0.5, 1].map((v) => ({value: v, label: `${v * 100}%`}));
  }
  const span = scale.high - scale.low;
  const every = Math.max(1, Math.ceil(span / 5));
  const ticks = [];
  for (let e = Math.ceil(scale.low); e <= Math.floor(scale.high); e++) {
    if (e % every === 0) ticks.push({value: e, label: `1e${e}`});
  }
  if (ticks.length < 2) {
    ticks.splice(0, ticks.length, ...[scale.low, scale.high].map((v) => ({value: v, label: formatted(10 ** v)})));
  }
  return ticks;
}

function swatch(css, text, key) {
  const item = document.createElement("span");
  item.className = "swatch";
  item.dataset.swatch = key;
  const square = document.createElement("i");
  square.style.cssText = `display:inline-block;width:11px;height:11px;margin:0 3px 0 8px;` +
    `vertical-align:-1px;border:1px solid #999;background:${css}`;
  item.append(square, text);
  return item;
}
