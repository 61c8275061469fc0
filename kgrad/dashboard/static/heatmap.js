// The row x step heat map on a canvas: one pixel per cell in an ImageData,
// coloured from a 256-level lookup table in one pass over a Float32Array,
// put once and scaled to cell blocks in one drawImage. Three colours are
// outside the scale: exactly 0 (log scales), undefined, not logged.
//
// Example:
//   const scale = colourScale([view], "log10");
//   const map = drawHeatMap(canvas, view, {width: 900, rowHeight: 12}, {scale, marked});
//   map.cellAt(x, y)  // -> {row, column} or null

const VIRIDIS = [
  [68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37],
];
export const SPECIAL = {
  zero: {rgb: [0, 0, 0], text: "exactly 0"},
  undefined: {rgb: [150, 150, 150], text: "undefined", title: "NaN or ∞ logged, or an update ratio of a weight of norm 0"},
  missing: {rgb: [255, 255, 255], text: "not logged"},
};
export const MARK = "#d62728";
const LEVELS = 256;
export const LABEL_WIDTH = 210;
const READABLE = 10; // px: rows at least this tall get every label

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
export function shown(value, kind) {
  return kind === "log10" ? Math.log10(value) : value;
}

/**
 * The colour scale of maps drawn together: `{kind, low, high}`, low and high
 * the shown values at the two ends (log10 of the smallest and largest finite
 * positive value of every view; shares from 0 to 1).
 */
export function colourScale(views, kind) {
  if (kind !== "log10") return {kind, low: 0, high: 1};
  let low = Infinity;
  let high = -Infinity;
  for (const view of views) {
    for (const v of view.values) {
      if (v > 0 && v < Infinity) {
        if (v < low) low = v;
        if (v > high) high = v;
      }
    }
  }
  if (!(low < Infinity)) return {kind, low: 0, high: 1};
  [low, high] = [Math.log10(low), Math.log10(high)];
  return high > low ? {kind, low, high} : {kind, low: low - 0.5, high: high + 0.5};
}

/** What a cell shows: "missing", "undefined", "zero" or a level in [0, 255]. */
export function cellClass(value, isUndefined, scale) {
  if (isUndefined || (!Number.isNaN(value) && !Number.isFinite(value))) return "undefined";
  if (Number.isNaN(value)) return "missing";
  if (scale.kind === "log10" && value <= 0) return "zero";
  const s = shown(value, scale.kind);
  const t = (s - scale.low) / (scale.high - scale.low);
  return Math.round(Math.min(Math.max(t, 0), 1) * (LEVELS - 1));
}

/** The RGB colour of a cell (see `cellClass`). */
export function cellColour(value, isUndefined, scale) {
  const level = cellClass(value, isUndefined, scale);
  return typeof level === "number" ? PALETTE_RGB[level] : SPECIAL[level].rgb;
}

const PALETTE_RGB = Array.from({length: LEVELS}, (_, i) => colour(i / (LEVELS - 1)));

/** The RGBA pixels of a view's cells, one pixel per cell. */
export function cellPixels(view, scale) {
  const {values} = view;
  const pixels = new Uint8ClampedArray(4 * values.length);
  for (let i = 0; i < values.length; i++) {
    const rgb = cellColour(values[i], view.undefined.has(i), scale);
    pixels[4 * i] = rgb[0];
    pixels[4 * i + 1] = rgb[1];
    pixels[4 * i + 2] = rgb[2];
    pixels[4 * i + 3] = 255;
  }
  return pixels;
}

/**
 * Draws `view` (see rows.js `viewRows`) on `canvas`: labels on the left, a
 * red mark beside each row in a layer of `options.marked`, the cells.
 *
 * layout: {width, rowHeight}: the canvas width and each row's height in px.
 * Returns the geometry: {cellWidth, rowHeight, columnX(c), cellAt(x, y), rowY(r)}.
 */
export function drawHeatMap(canvas, view, layout, options) {
  const rows = view.rows.length;
  const columns = view.steps.length;
  const rowHeight = layout.rowHeight;
  const cellWidth = (layout.width - LABEL_WIDTH - 2) / Math.max(columns, 1);
  canvas.width = layout.width;
  canvas.height = Math.max(rowHeight * rows + 2, 4);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (rows && columns) {
    const image = new ImageData(columns, rows);
    image.data.set(cellPixels(view, options.scale));
    const tile = document.createElement("canvas");
    tile.width = columns;
    tile.height = rows;
    tile.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tile, LABEL_WIDTH, 1, cellWidth * columns, rowHeight * rows);
  }
  ctx.strokeStyle = "#bbb";
  ctx.strokeRect(LABEL_WIDTH - 0.5, 0.5, cellWidth * columns + 1, rowHeight * rows + 1);
  canvas.dataset.labelEvery = drawLabels(ctx, view, rowHeight, options.marked || new Set());
  return {
    cellWidth,
    rowHeight,
    columnX: (c) => LABEL_WIDTH + (c + 0.5) * cellWidth,
    rowY: (r) => 1 + r * rowHeight,
    cellAt(x, y) {
      const column = Math.floor((x - LABEL_WIDTH) / cellWidth);
      const row = Math.floor((y - 1) / rowHeight);
      if (column < 0 || column >= columns || row < 0 || row >= rows) return null;
      return {row, column};
    },
    rowAt(y) {
      const row = Math.floor((y - 1) / rowHeight);
      return row >= 0 && row < rows ? row : null;
    },
  };
}

/** Whether a drawn row is in a layer a finding marks. */
export function isMarked(row, marked) {
  return row.layers.some((layer) => marked.has(layer));
}

/** Draws the labels and marks; returns every how many rows a label is drawn. */
function drawLabels(ctx, view, rowHeight, marked) {
  const size = Math.min(12, Math.max(rowHeight - 1, READABLE));
  ctx.font = `${size}px sans-serif`;
  ctx.textBaseline = "middle";
  // Rows too thin for a label each get one every `every` rows, each readable.
  const every = rowHeight >= READABLE ? 1 : Math.ceil((size + 2) / rowHeight);
  view.rows.forEach((row, r) => {
    const y = 1 + r * rowHeight;
    if (isMarked(row, marked)) {
      ctx.fillStyle = MARK;
      ctx.fillRect(LABEL_WIDTH - 7, y, 5, Math.max(rowHeight - 1, 1));
    }
    if (r % every) return;
    const indent = 4 + 12 * row.depth;
    const arrow = row.group ? (row.open ? "▾ " : "▸ ") : "";
    const count = row.group ? ` (${row.members.length})` : "";
    ctx.fillStyle = row.group ? "#1a4f8b" : "#333";
    ctx.fillText(clip(arrow + row.label + count, ctx, LABEL_WIDTH - 12 - indent), indent, y + rowHeight / 2);
    if (every > 1) {
      ctx.fillStyle = "#999";
      ctx.fillRect(LABEL_WIDTH - 11, y + rowHeight / 2, 3, 1);
    }
  });
  return every;
}

/** `text` cut from the left with "…" to fit `width` px. */
function clip(text, ctx, width) {
  if (ctx.measureText(text).width <= width) return text;
  let cut = 1;
  while (cut < text.length && ctx.measureText("…" + text.slice(cut)).width > width) cut++;
  return "…" + text.slice(cut);
}
