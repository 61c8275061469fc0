// The step axis under the heat map, shared by the findings and loss strips:
// one column per logged step (the steps are irregular: every batch at first,
// then every N), ticks labelled with true logged steps, and a break mark
// where the logging schedule changes.
//
// Example:
//   const axis = stepAxis([1, 2, 3, 4, 8, 16, 24], 700, 210);
//   axis.ticks   // -> [{column, step, x}], labels at least 48 px apart
//   axis.breaks  // -> [{column, x, before, after}]: the stride changed here
//   axis.xOf(12) // -> x of step 12 (between the columns of 8 and 16)

const MIN_GAP = 48; // px between tick labels
const MAX_BREAKS = 8; // more changes than this: irregular, no break marks
const WINDOW = 5;
export const AXIS_HEIGHT = 30;

/**
 * Columns where the logging schedule changes: the median stride between
 * logged steps over the next `WINDOW` columns differs from the one over the
 * previous `WINDOW` by 2x or more (the odd extra step, such as the powers of
 * two kgrad adds, is no change). One break per change.
 */
export function scheduleBreaks(steps) {
  const strides = steps.map((s, c) => (c ? s - steps[c - 1] : 0));
  const breaks = [];
  for (let c = 2; c < steps.length - 1; c++) {
    const before = median(strides.slice(Math.max(1, c - WINDOW), c));
    const after = median(strides.slice(c, c + WINDOW));
    const last = breaks[breaks.length - 1];
    if (Math.max(before, after) >= 2 * Math.min(before, after) && !(last && c - last.column <= WINDOW)) {
      let at = c; // the first column whose own stride differs
      while (at < steps.length - 1 && strides[at] === before) at++;
      breaks.push({column: at, before, after});
    }
  }
  return breaks.length <= MAX_BREAKS ? breaks : [];
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * The axis of `steps` drawn from x = `left` over `width` px, one equal
 * column per step: {ticks, breaks, columnX(c), xOf(step), columnOf(x)}.
 */
export function stepAxis(steps, width, left) {
  const columns = steps.length;
  const cell = width / Math.max(columns, 1);
  const columnX = (c) => left + (c + 0.5) * cell;
  const breaks = scheduleBreaks(steps).map((b) => ({...b, x: left + b.column * cell}));
  const wanted = [0, columns - 1, ...breaks.map((b) => b.column)];
  const last = columns ? steps[columns - 1] : 1;
  for (let unit = 10 ** Math.ceil(Math.log10(Math.max(last, 1))); unit >= 1; unit /= 10) {
    for (const nice of [unit * 5, unit * 2, unit]) {
      steps.forEach((step, c) => {
        if (step % nice === 0) wanted.push(c);
      });
    }
  }
  const ticks = [];
  for (const c of wanted) {
    if (c < 0 || c >= columns) continue;
    const x = columnX(c);
    if (ticks.every((t) => Math.abs(t.x - x) >= MIN_GAP)) ticks.push({column: c, step: steps[c], x});
  }
  ticks.sort((a, b) => a.x - b.x);
  return {
    ticks,
    breaks,
    columnX,
    columnOf: (x) => Math.floor((x - left) / cell),
    xOf(step) {
      if (!columns) return left;
      let c = steps.findIndex((s) => s >= step);
      if (c < 0) return columnX(columns - 1);
      if (steps[c] === step || c === 0) return columnX(c);
      const f = (step - steps[c - 1]) / (steps[c] - steps[c - 1]);
      return columnX(c - 1) + f * cell;
    },
  };
}

/** Draws `axis` on `canvas` (`width` px wide): tick marks, labels, breaks. */
export function drawAxis(canvas, axis, width, left) {
  canvas.width = width;
  canvas.height = AXIS_HEIGHT;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, AXIS_HEIGHT);
  ctx.fillStyle = "#555";
  ctx.fillRect(left, 0, width - left, 1);
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const tick of axis.ticks) {
    ctx.fillRect(Math.round(tick.x), 0, 1, 5);
    const text = String(tick.step);
    const half = ctx.measureText(text).width / 2;
    ctx.fillText(text, Math.min(Math.max(tick.x, left + half), width - half - 1), 7);
  }
  ctx.strokeStyle = "#b35900";
  for (const b of axis.breaks) {
    const x = Math.round(b.x) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x - 3, 7);
    ctx.lineTo(x + 3, -1);
    ctx.moveTo(x - 3, 11);
    ctx.lineTo(x + 3, 3);
    ctx.stroke();
  }
  ctx.textAlign = "right";
  ctx.fillStyle = "#333";
  ctx.fillText("logged step", left - 10, 7);
  if (axis.breaks.length) {
    ctx.fillStyle = "#b35900";
    ctx.fillText("// logging schedule changes", left - 10, 19);
  }
}

/** Thin vertical lines at the ticks of `axis`, over a strip of `height` px. */
export function drawGridLines(ctx, axis, height) {
  ctx.fillStyle = "#e4e4e4";
  for (const tick of axis.ticks) ctx.fillRect(Math.round(tick.x), 0, 1, height);
  ctx.fillStyle = "#f0c8a0";
  for (const b of axis.breaks) ctx.fillRect(Math.round(b.x), 0, 1, height);
}
