// The layer x step heat map on a canvas: one pixel per cell in an ImageData,
// coloured from a 256-level lookup table in one pass over a Float32Array,
// put once and scaled to cell blocks in one drawImage.
//
// Example:
//   const map = drawHeatMap(canvas, grid, {highlight: new Set(["dense"])});
//   map.cellAt(x, y)  // -> {row, column, value} or null

const VIRIDIS = [
  [68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37],
];
const MISSING = [238, 238, 238]; // no value logged at that step
const ZERO = [20, 20, 20]; // exactly zero: log10 is -inf
const LEVELS = 256; // colours between the lowest and the highest value
export const LABEL_WIDTH = 220;
const MAX_HEIGHT = 760;

/** Decodes the base64 float32 values of a `heatmap` answer. */
export function decodeValues(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

/** The colour of `t` in [0, 1] on the viridis scale. */
export function colour(t) {
  const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

/** The shown value of a raw value: log10 for norms and ratios. */
export function shown(value, scale) {
  return scale === "log10" ? Math.log10(value) : value;
}

/** The shown values of raw `values` (a Float32Array): log10 or as they are. */
export function shownValues(values, scale) {
  if (scale !== "log10") return values;
  const result = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) result[i] = Math.log10(values[i]);
  return result;
}

/** [low, high] of the finite `shownValues` (a unit range if all are equal). */
export function valueRange(shownValues, scale) {
  if (scale === "linear") return [0, 1];
  let low = Infinity;
  let high = -Infinity;
  for (const s of shownValues) {
    if (Number.isFinite(s)) {
      if (s < low) low = s;
      if (s > high) high = s;
    }
  }
  if (!Number.isFinite(low)) return [0, 1];
  return high > low ? [low, high] : [low - 0.5, high + 0.5];
}

/** `LEVELS` viridis colours as RGBA bytes, then MISSING and ZERO. */
function palette() {
  const table = new Uint8ClampedArray(4 * (LEVELS + 2));
  for (let i = 0; i < LEVELS; i++) table.set([...colour(i / (LEVELS - 1)), 255], 4 * i);
  table.set([...MISSING, 255], 4 * LEVELS);
  table.set([...ZERO, 255], 4 * (LEVELS + 1));
  return table;
}

const PALETTE = palette();

/**
 * The RGBA pixels of `shownValues` (`raw` are the values before log10): one
 * pixel per cell, its colour from `PALETTE` (256 levels between low and high).
 */
export function cellPixels(raw, shownValues, [low, high]) {
  const pixels = new Uint8ClampedArray(4 * raw.length);
  const perUnit = (LEVELS - 1) / (high - low);
  for (let i = 0; i < raw.length; i++) {
    const s = shownValues[i];
    let level;
    if (Number.isNaN(raw[i])) level = LEVELS;
    else if (s === -Infinity) level = LEVELS + 1;
    else level = Math.round(Math.min(Math.max((s - low) * perUnit, 0), LEVELS - 1));
    pixels[4 * i] = PALETTE[4 * level];
    pixels[4 * i + 1] = PALETTE[4 * level + 1];
    pixels[4 * i + 2] = PALETTE[4 * level + 2];
    pixels[4 * i + 3] = 255;
  }
  return pixels;
}

/**
 * Draws `grid` (a `heatmap` answer with decoded `values`) on `canvas`.
 *
 * Rows whose layer is in `options.highlight` get a red mark left of the map.
 * Returns {cells, cellAt(x, y), columnX(step)} for hover, clicks and the
 * findings strip.
 */
export function drawHeatMap(canvas, grid, options = {}) {
  const rows = grid.rows.length;
  const columns = grid.steps.length;
  const width = options.width || 900;
  const cellWidth = Math.max(1, Math.min(24, Math.floor((width - LABEL_WIDTH) / Math.max(columns, 1))));
  const rowHeight = Math.max(1, Math.min(18, Math.floor(MAX_HEIGHT / Math.max(rows, 1))));
  canvas.width = LABEL_WIDTH + cellWidth * columns + 2;
  canvas.height = rowHeight * rows + 2;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const values = grid.values.subarray(0, rows * columns);
  const shownGrid = shownValues(values, grid.scale);
  const [low, high] = valueRange(shownGrid, grid.scale);
  const image = new ImageData(Math.max(columns, 1), Math.max(rows, 1));
  image.data.set(cellPixels(values, shownGrid, [low, high]));
  const cells = values.length;
  const tile = document.createElement("canvas");
  tile.width = image.width;
  tile.height = image.height;
  tile.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, LABEL_WIDTH, 1, cellWidth * columns, rowHeight * rows);
  drawLabels(ctx, grid, rowHeight, options.highlight || new Set());
  return {
    cells,
    range: [low, high],
    cellAt(x, y) {
      const column = Math.floor((x - LABEL_WIDTH) / cellWidth);
      const row = Math.floor((y - 1) / rowHeight);
      if (column < 0 || column >= columns || row < 0 || row >= rows) return null;
      return {row, column, value: grid.values[row * columns + column]};
    },
    columnX(step) {
      let c = grid.steps.findIndex((s) => s >= step);
      if (c < 0) c = columns;
      return LABEL_WIDTH + c * cellWidth;
    },
  };
}

/** The layer of a row: its variable path without the weight's name. */
function drawLabels(ctx, grid, rowHeight, highlight) {
  ctx.font = `${Math.min(12, rowHeight)}px sans-serif`;
  ctx.textBaseline = "middle";
  for (let r = 0; r < grid.rows.length; r++) {
    const y = 1 + r * rowHeight;
    if (highlight.has(grid.row_layers[r])) {
      ctx.fillStyle = "#d62728";
      ctx.fillRect(LABEL_WIDTH - 6, y, 5, Math.max(rowHeight - 1, 1));
    }
    if (rowHeight >= 9) {
      ctx.fillStyle = "#333";
      ctx.fillText(clip(grid.rows[r], 34), 2, y + rowHeight / 2);
    }
  }
}

function clip(text, length) {
  return text.length <= length ? text : "…" + text.slice(text.length - length + 1);
}
