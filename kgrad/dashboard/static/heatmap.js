// The layer x step heat map on a canvas: one pixel block per cell, drawn from
// an ImageData in one call, so 364 rows x 1,000 steps draw in milliseconds.
//
// Example:
//   const map = drawHeatMap(canvas, grid, {highlight: new Set(["dense"])});
//   map.cellAt(x, y)  // -> {row, column, value} or null

const VIRIDIS = [
  [68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37],
];
const MISSING = [238, 238, 238]; // no value logged at that step
const ZERO = [20, 20, 20]; // exactly zero: log10 is -inf
export const LABEL_WIDTH = 220;
const MAX_HEIGHT = 760;

/** Decodes the base64 float32 values of a `heatmap` answer. */
export function decodeValues(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
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

/** [low, high] of the shown finite values (a unit range if all are equal). */
export function valueRange(values, scale) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    const s = shown(v, scale);
    if (Number.isFinite(s)) {
      low = Math.min(low, s);
      high = Math.max(high, s);
    }
  }
  if (scale === "linear") return [0, 1];
  if (!Number.isFinite(low)) return [0, 1];
  return high > low ? [low, high] : [low - 0.5, high + 0.5];
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
  const [low, high] = valueRange(grid.values, grid.scale);
  const image = new ImageData(Math.max(columns, 1), Math.max(rows, 1));
  let cells = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const value = grid.values[r * columns + c];
      const s = shown(value, grid.scale);
      const rgb = Number.isNaN(value) ? MISSING
        : s === -Infinity ? ZERO : colour((s - low) / (high - low));
      const at = 4 * (r * columns + c);
      image.data.set([rgb[0], rgb[1], rgb[2], 255], at);
      cells += 1;
    }
  }
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
export function layerOf(row, statistic) {
  if (statistic === "dead_units" || statistic === "saturation") return row;
  const cut = row.lastIndexOf("/");
  return cut > 0 ? row.slice(0, cut) : row;
}

function drawLabels(ctx, grid, rowHeight, highlight) {
  ctx.font = `${Math.min(12, rowHeight)}px sans-serif`;
  ctx.textBaseline = "middle";
  for (let r = 0; r < grid.rows.length; r++) {
    const y = 1 + r * rowHeight;
    if (highlight.has(layerOf(grid.rows[r], grid.statistic))) {
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
