// The tab's look and the size of its parts: the maps take the window's
// width beside the detail and as much height as leaves the colour bar, the
// axis, the findings strip and the loss strip on screen (1280x800 included).
//
// Example:
//   const {width, viewportHeight} = layout(page, 2, loaded);

export const DETAIL_WIDTH = 300;
const GAP = 12;
const TITLE = 18;
const LEGEND = 44;
const AXIS = 30;
const LOSS = 46;
const FIRST_FINDING_LINE = 22;
const STRIP_ROW = 16;

export const STYLE = `
body { font: 12px sans-serif; margin: 6px; color: #333; }
.toolbar { display: flex; flex-wrap: wrap; gap: 4px 9px; align-items: center; }
.toolbar input:not([type]) { width: 95px; }
.toolbar select, .toolbar input, .toolbar button { font-size: 11px; }
.toolbar select { max-width: 175px; }
.toolbar label:has(input[type=checkbox]) { white-space: nowrap; }
.status { min-height: 16px; margin: 3px 0; }
.main { display: flex; gap: ${GAP}px; align-items: flex-start; }
.maps { display: flex; gap: ${GAP}px; flex: 1; min-width: 0; }
.panel { flex: none; }
.title { font-weight: bold; height: ${TITLE}px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.legend { height: ${LEGEND}px; display: flex; align-items: flex-start; flex-wrap: wrap; gap: 0 2px; overflow: hidden; font-size: 11px; }
.swatch { white-space: nowrap; }
.colour-bar { flex: none; }
.legend > span:first-child { margin: 0 6px 0 0; max-width: 210px; overflow: hidden; text-overflow: ellipsis; }
.plot { position: relative; }
.viewport { position: relative; overflow-y: auto; overflow-x: hidden; }
.viewport canvas, .plot > canvas { display: block; }
.outline { position: absolute; border: 2px solid #fff; outline: 1px solid #000; pointer-events: none; box-sizing: border-box; }
.cursor, .clicked { position: absolute; top: 0; bottom: 0; width: 1px; pointer-events: none; }
.cursor { background: rgba(0, 0, 0, 0.45); }
.clicked { background: #d62728; width: 2px; }
.findings p { margin: 4px 0; }
.findings .selected { background: #fdecea; }
.findings .none { color: #2ca02c; }
.message { padding: 40px 12px; color: #b35900; background: #faf6f0; border: 1px solid #eadbc8; }
.detail { width: ${DETAIL_WIDTH}px; flex: none; border-left: 1px solid #ddd; padding-left: 8px; }
.detail-title { font-weight: bold; margin-bottom: 4px; }
.detail canvas { display: block; margin-bottom: 6px; }
.tooltip { position: fixed; background: #fff; border: 1px solid #999; padding: 3px 6px; pointer-events: none; display: none; }
`;

/** The panel width and the map viewport's height for `panels` panels. */
export function layout(page, panels, loaded) {
  const mapsWidth = window.innerWidth - DETAIL_WIDTH - 2 * GAP - 16;
  const width = Math.floor((mapsWidth - GAP * (panels - 1)) / Math.max(panels, 1));
  const findings = Math.max(1, ...loaded.map((d) => d.findings.findings.length));
  const top = page.maps.getBoundingClientRect().top;
  const fixed = TITLE + LEGEND + AXIS + LOSS + findings * STRIP_ROW + 4 + FIRST_FINDING_LINE;
  const viewportHeight = Math.max(120, Math.floor(window.innerHeight - top - fixed - 8));
  return {width: Math.max(width, 360), viewportHeight};
}
