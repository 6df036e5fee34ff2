// Layered drawings in SVG: the network's processors and a call's provenance both go left to right,
// each box in the column after the boxes that feed it. Names are <text>, so they can be read and found.
"use strict";

window.pyfi.graph = (() => {
  const { svg } = window.pyfi;

  // id -> column: one more than the deepest box feeding it (cycles are cut where they close)
  function columns(ids, edges) {
    const column = new Map(ids.map((id) => [id, 0]));
    const inbound = new Map(ids.map((id) => [id, []]));
    for (const edge of edges) if (edge.from !== edge.to && inbound.has(edge.to)) inbound.get(edge.to).push(edge.from);
    const visiting = new Set();
    const depth = (id) => {
      if (visiting.has(id)) return -1;
      visiting.add(id);
      let deepest = -1;
      for (const from of inbound.get(id) || []) if (column.has(from)) deepest = Math.max(deepest, depth(from));
      visiting.delete(id);
      return deepest + 1;
    };
    for (const id of ids) column.set(id, depth(id));
    return column;
  }

  // Boxes placed in their columns: {id -> {x, y, w, h}}, and the drawing's width and height
  function place(boxes, edges, { width, gapX, gapY, left = 0, top = 0 }) {
    const column = columns(boxes.map((b) => b.id), edges);
    const heights = new Map();
    const spots = new Map();
    for (const box of boxes) {
      const c = column.get(box.id);
      const y = heights.get(c) ?? top;
      spots.set(box.id, { x: left + c * (width + gapX), y, w: width, h: box.height });
      heights.set(c, y + box.height + gapY);
    }
    const columnsUsed = Math.max(0, ...column.values()) + 1;
    return { spots, width: left + columnsUsed * (width + gapX), height: Math.max(top, ...heights.values()) };
  }

  // An arrowhead marker, once per drawing
  function defs(id, colour = "#8a94a3") {
    return svg("defs", {},
      svg("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: colour })));
  }

  // A curve from the right side of `a` to the left side of `b` (a loop above the box when a is b)
  function link(a, b, bend = 0) {
    if (a === b) {
      const x = a.x + a.w, y = a.y + 10;
      return `M ${x - 30} ${a.y} C ${x - 30} ${a.y - 40 - bend}, ${x + 30} ${y - 40 - bend}, ${x} ${y}`;
    }
    const x1 = a.x + a.w, y1 = low(a) + bend;
    const x2 = b.x, y2 = low(b) + bend;
    const mid = (x1 + x2) / 2;
    return `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`;
  }

  // The middle of a link, where its label goes
  function middle(a, b, bend = 0) {
    if (a === b) return { x: a.x + a.w - 30, y: a.y - 44 - bend };
    return { x: (a.x + a.w + b.x) / 2, y: (low(a) + low(b)) / 2 + bend - 6 };
  }

  // Where links meet a box: below its middle, clear of the arrows drawn into its top
  function low(box) {
    return box.y + Math.max(box.h * 0.7, 30);
  }

  function drawing(width, height, label) {
    return svg("svg", { viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`, width: Math.ceil(width),
      role: "group", "aria-label": label });
  }

  return { columns, place, defs, link, middle, drawing };
})();
