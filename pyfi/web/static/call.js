// One call: its arguments, result or error, its events on a timeline, and its provenance as a picture
// (what fed it on the left, what it fed on the right). Kept current by the live event stream.
"use strict";

(() => {
  const { api, el, svg, badge, when, shortId, pretty, listen, throttled, showError, me } = window.pyfi;
  const graph = window.pyfi.graph;
  const callId = document.getElementById("main").dataset.callId;
  const BOX = { width: 190, gapX: 60, gapY: 18, left: 10, top: 10 };

  async function refresh() {
    try {
      const id = encodeURIComponent(callId);
      const call = await api(`/calls/${id}`);
      const [tree, previews, flow] = await Promise.all([
        api(`/calls/${id}/tree`, { query: { graph: true } }).catch(() => null),
        api("/web/previews", { query: { ids: call.id } }).catch(() => ({ calls: {} })),
        call.tracking ? api("/calls", { query: { tracking: call.tracking, rows: 200 } }).catch(() => ({ items: [] })) : { items: [] }]);
      showError(document.getElementById("call-error"), null);
      drawSummary(call, previews.calls[call.id] || {});
      drawTimeline(call.events || []);
      drawProvenance(call, tree, new Map(flow.items.map((c) => [c.id, c])));
    } catch (error) {
      showError(document.getElementById("call-error"), error);
    }
  }

  function drawSummary(call, kept) {
    const rows = [["State", badge(call.state)], ["Socket", call.socket], ["Name", call.name], ["Owner", call.owner],
      ["Sender", call.sender], ["Fed by", (call.parents || []).length ? call.parents.map(link) : null],
      ["Plug", call.plug], ["Flow", call.tracking],
      ["Created", when(call.created)], ["Started", when(call.started)], ["Finished", when(call.finished)],
      ["Cancelled by", call.cancelled_by]];
    document.getElementById("summary").replaceChildren(...rows.filter(([, v]) => v)
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const args = kept.kwargs && Object.keys(kept.kwargs).length ? { args: kept.args, kwargs: kept.kwargs } : kept.args;
    document.getElementById("arguments").textContent = args ? pretty(args) : "(not stored yet: kept once the call ends)";
    const failed = Boolean(call.error) || call.state === "failed";
    document.getElementById("outcome-title").textContent = failed ? "Error" : "Result";
    const outcome = document.getElementById("outcome");
    outcome.classList.toggle("error", failed);
    const value = call.result ? call.result.value : undefined;
    outcome.textContent = failed ? (call.error || pretty(value)) : value === undefined ? "(none yet)" : pretty(value);
  }

  function link(id) {
    return el("a", { href: `/calls/${encodeURIComponent(id)}`, class: "mono" }, shortId(id));
  }

  // Events as dots on a line, in time order, each with its name, time since the first event, and worker.
  // (Evenly spaced: a call's events are often milliseconds apart, and hours apart when it waited.)
  function drawTimeline(events) {
    const target = document.getElementById("timeline");
    if (!events.length) { target.replaceChildren(el("p", { class: "hint" }, "No event recorded yet.")); return; }
    const step = 150;
    const first = stamp(events[0].created);
    const picture = graph.drawing(60 + step * events.length, 96, "The call's events in time order");
    picture.append(svg("line", { x1: 60, y1: 30, x2: 100 + step * (events.length - 1), y2: 30 }));
    events.forEach((event, i) => {
      const x = 80 + step * i;
      const name = event.name || "event";
      picture.append(svg("g", { class: "event", dataset: { event: name } },
        svg("circle", { cx: x, cy: 30, r: 8, class: `dot e-${name}`, fill: dotColour(name) }),
        svg("text", { x, y: 15, "text-anchor": "middle" }, name),
        svg("text", { x, y: 55, "text-anchor": "middle", class: "small" }, timeOf(event.created)),
        svg("text", { x, y: 71, "text-anchor": "middle", class: "small" }, i ? `+${elapsed(stamp(event.created) - first)}` : "start"),
        event.worker ? svg("text", { x, y: 87, "text-anchor": "middle", class: "small" }, String(event.worker).slice(0, 22)) : null,
        svg("title", {}, `${name} ${when(event.created)} ${event.note || ""}`)));
    });
    target.replaceChildren(picture);
  }

  function stamp(text) {
    return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`).getTime();
  }

  function elapsed(ms) {
    if (Number.isNaN(ms)) return "?";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;
  }

  function dotColour(name) {
    return { failure: "#b3261e", refused: "#b3261e", postrun: "#2e7d32", received: "#c77700", prerun: "#1565c0" }[name] || "#6b7280";
  }

  function timeOf(text) {
    const full = when(text);
    return full.includes(",") ? full.split(",").pop().trim() : full;
  }

  // The call's whole flow, from its root: what fed it leads to it, what it fed goes on from it.
  // `known`: the flow's calls as listed (socket and state of each)
  function drawProvenance(call, tree, known) {
    const nodes = new Map();
    const edges = new Map();
    const add = (node) => nodes.set(node.id, { ...nodes.get(node.id), ...node });
    const join = (from, to) => { if (from !== to) edges.set(`${from}>${to}`, { from, to }); };
    const parents = (call.parents || []).length ? call.parents : call.parent ? [call.parent] : [];
    for (const parent of parents) {
      add({ id: parent, label: "fed it" });
      join(parent, call.id);
    }
    for (const root of (tree && tree.roots) || []) walk(root, (id, label) => add({ id, label, ...described(known.get(id)) }), join);
    add({ id: call.id, label: call.socket || call.name, state: call.state });
    drawTree([...nodes.values()], [...edges.values()], call.id);
  }

  function described(listed) {
    return listed ? { label: listed.socket || listed.name, state: listed.state } : {};
  }

  // The tree ({call, label, children}), without recursion: a flow may be deep
  function walk(root, add, join) {
    const stack = [[root, null]];
    while (stack.length) {
      const [node, from] = stack.pop();
      add(node.call, node.label);
      if (from) join(from, node.call);
      for (const child of node.children || []) stack.push([child, node.call]);
    }
  }

  function drawTree(nodes, edges, current) {
    const items = nodes.map((n) => ({ id: n.id, node: n, height: 46 }));
    const layout = graph.place(items, edges, BOX);
    const picture = graph.drawing(layout.width, layout.height, "The call's provenance: what fed it and what it fed");
    picture.append(graph.defs("tree-arrow"));
    for (const edge of edges) {
      const a = layout.spots.get(edge.from), b = layout.spots.get(edge.to);
      if (a && b) picture.append(svg("path", { class: "edge", d: graph.link(a, b), "marker-end": "url(#tree-arrow)" }));
    }
    for (const item of items) picture.append(treeNode(item.node, layout.spots.get(item.id), item.id === current));
    document.getElementById("provenance").replaceChildren(picture);
  }

  function treeNode(node, spot, current) {
    const colour = getComputedStyle(document.documentElement).getPropertyValue(`--${stateColour(node.state)}`).trim() || "#8e99a8";
    const label = node.socket || node.name || node.label || "call";
    const box = svg("g", { class: `tree-node${current ? " current" : ""}`, dataset: { id: node.id, state: node.state || "" } },
      svg("rect", { x: spot.x, y: spot.y, width: spot.w, height: spot.h, rx: 6, stroke: colour }),
      svg("text", { x: spot.x + 10, y: spot.y + 19 }, String(label).slice(0, 24)),
      svg("text", { x: spot.x + 10, y: spot.y + 36, class: "small" }, `${shortId(node.id)} ${node.state || ""}`));
    return current ? box : svg("a", { href: `/calls/${encodeURIComponent(node.id)}` }, box);
  }

  function stateColour(callState) {
    return { finished: "running", failed: "error", refused: "error", pending: "paused", received: "paused",
      running: "starting", retry: "paused", cancelled: "stopped", revoked: "stopped" }[callState] || "ready";
  }

  async function start() {
    if (!(await me()).reads.calls) {
      showError(document.getElementById("call-error"), "Reading calls needs the right READ.");
      return;
    }
    refresh();
    listen(throttled(refresh, 1000));
  }

  start();
})();
