// The rows a heat map shows: the variables grouped per layer or per block,
// collapsible, filtered by a pattern, with a collapsed group's values
// combined (norms: the norm of the group; ratios and shares: their mean).
//
// Example:
//   const view = viewRows(grid, {grouping: "layer", filter: "kernel", expanded: new Set()});
//   view.rows[0]  // -> {label, key, depth, members: [row indices], group, open, layers}
//   view.values   // Float32Array, rows x steps, of what is drawn

import {GRAD_NORM, TEMPORAL_GRAD, WEIGHT_NORM} from "./tags.js";

const NORMS = new Set([GRAD_NORM, WEIGHT_NORM]);
export const GROUPINGS = {variable: "every variable", layer: "per layer", block: "per block"};

/** The block of a layer: its name up to `blockN` (`conv3_block2_1_conv` -> `conv3_block2`). */
export function blockOf(layer) {
  const nested = layer.indexOf("/");
  const name = nested > 0 ? layer.slice(0, nested) : layer;
  const match = /^(.*?block_?\d+|.*?stage_?\d+)/i.exec(name);
  if (match) return match[1];
  if (nested > 0) return name;
  const numbered = /^([a-z]+\d+)_/i.exec(name); // conv1_conv, pool2_bn
  return numbered ? numbered[1] : name;
}

/** The grouping a map of `rows` variables in `layers` layers opens with. */
export function defaultGrouping(grid) {
  if (grid.statistic === TEMPORAL_GRAD || grid.rows.length <= 40) return "variable";
  return new Set(grid.layers).size <= 60 ? "layer" : "block";
}

/**
 * A filter from a pattern: space-separated terms, each a regular expression
 * (case-insensitive) a row's name must match, or with a leading `-` must not.
 * An invalid expression matches as plain text.
 */
export function rowFilter(pattern) {
  const terms = (pattern || "").trim().split(/\s+/).filter(Boolean).map((term) => {
    const negate = term.startsWith("-") && term.length > 1;
    const body = negate ? term.slice(1) : term;
    let test;
    try {
      const regex = new RegExp(body, "i");
      test = (name) => regex.test(name);
    } catch {
      test = (name) => name.toLowerCase().includes(body.toLowerCase());
    }
    return negate ? (name) => !test(name) : test;
  });
  return (name) => terms.every((test) => test(name));
}

/**
 * The rows of `grid` to draw and their values.
 *
 * options: {grouping, filter, hideBatchnorm, expanded: Set of group keys}.
 * Returns {rows, values, undefined: Set of flat indices, steps}.
 */
export function viewRows(grid, options) {
  const grouping = grid.statistic === TEMPORAL_GRAD ? "variable" : options.grouping;
  const keep = rowFilter(options.filter);
  const batchnorm = new Set(options.hideBatchnorm ? grid.batchnorm || [] : []);
  const layers = grid.layers || grid.rows;
  const groups = new Map();
  grid.rows.forEach((name, index) => {
    if (!keep(name) || batchnorm.has(layers[index])) return;
    const key = grouping === "layer" ? layers[index] : grouping === "block" ? blockOf(layers[index]) : name;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(index);
  });
  const rows = [];
  for (const [key, members] of groups) {
    const group = grouping !== "variable" && (members.length > 1 || members.length === 1 && grid.rows[members[0]] !== key);
    if (!group || members.length === 1) {
      for (const index of members) rows.push(single(grid, layers, index, 0));
      continue;
    }
    const open = options.expanded.has(key);
    const memberLayers = [...new Set(members.map((i) => layers[i]))];
    rows.push({label: key, key, depth: 0, members, group: true, open, layers: memberLayers});
    if (open) for (const index of members) rows.push(single(grid, layers, index, 1));
  }
  return {rows, steps: grid.steps, ...combined(grid, rows)};
}

function single(grid, layers, index, depth) {
  const name = grid.rows[index];
  return {label: name, key: name, depth, members: [index], group: false, open: false, layers: [layers[index]]};
}

/** The drawn values: a row's own, or its group's combination. */
function combined(grid, rows) {
  const columns = grid.steps.length;
  const values = new Float32Array(rows.length * columns);
  const undefinedCells = new Set();
  const source = new Set(grid.undefined || []);
  const norm = NORMS.has(grid.statistic);
  rows.forEach((row, r) => {
    for (let c = 0; c < columns; c++) {
      let total = 0;
      let count = 0;
      let undefinedMember = false;
      let infinite = false;
      for (const m of row.members) {
        const cell = m * columns + c;
        const v = grid.values[cell];
        if (source.has(cell)) undefinedMember = true;
        else if (!Number.isNaN(v)) {
          infinite ||= !Number.isFinite(v);
          total += norm ? v * v : v;
          count += 1;
        }
      }
      // A group is undefined where none of its rows has a value but one is
      // undefined, or where one is infinite (the group's norm is too).
      if ((undefinedMember && !count) || infinite) undefinedCells.add(r * columns + c);
      values[r * columns + c] = count ? (norm ? Math.sqrt(total) : total / count) : NaN;
    }
  });
  return {values, undefined: undefinedCells};
}

/** What a group row's value is, in words (for the legend and the tooltip). */
export function combination(statistic) {
  return NORMS.has(statistic) ? "the norm of the group's variables" : "the mean of the group's rows";
}
