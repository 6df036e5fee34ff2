// The network page: processors as boxes, queues and plugs as arrows, coloured by live status;
// a processor's details, workers, calls and actions beside the graph; nodes and agents below.
"use strict";

(() => {
  const { api, all, el, svg, badge, when, shortId, preview, listen, throttled, showError, me } = window.pyfi;
  const graph = window.pyfi.graph;
  const ACTIONS = [["pause", "PAUSE_PROCESSOR"], ["resume", "RESUME_PROCESSOR"], ["stop", "STOP_PROCESSOR"],
    ["start", "START_PROCESSOR"], ["restart", "START_PROCESSOR"]];
  const STATUSES = ["running", "starting", "paused", "stopped", "error", "lost", "ready"];
  const BOX = { width: 200, gapX: 170, gapY: 28, left: 110, top: 76 };  // (room above a box for a plug to itself)
  const state = { me: { reads: {}, may: () => false }, network: null, selected: null, drawn: "", detailed: "", health: "" };
  const statusLine = document.getElementById("status-line");

  const LISTS = ["processors", "sockets", "queues", "plugs", "nodes", "agents", "workers"];

  // Every list the user may read (the others stay empty: the API would refuse them), and the call counts
  async function loadNetwork() {
    const lists = await Promise.all(LISTS.map((name) => (state.me.reads[name] ? all(`/${name}`) : [])));
    const network = Object.fromEntries(LISTS.map((name, i) => [name, lists[i]]));
    network.counts = state.me.reads.calls ? (await api("/web/counts")).sockets : {};
    return shown(network, await api("/web/statuses"));
  }

  // The lists with the statuses ls shows: lost once a heartbeat is stale (a row says what its process last wrote)
  function shown(network, statuses) {
    for (const name of ["processors", "agents", "workers"]) {
      const live = statuses[name] || {};
      network[name] = network[name].map((row) => (live[row.name] ? { ...row, ...withError(row, live[row.name]) } : row));
    }
    return network;
  }

  function withError(row, live) {
    return "error" in row ? live : { status: live.status };
  }

  function unread() {
    const missing = [...LISTS, "calls"].filter((name) => !state.me.reads[name]);
    return missing.length ? ` Not shown, for want of the right to read them: ${missing.join(", ")}.` : "";
  }

  async function refresh() {
    try {
      const network = await loadNetwork();
      const { processors, sockets, queues, plugs, counts, nodes, agents } = network;
      const drawn = JSON.stringify([processors, sockets, queues, plugs, counts]);
      const health = JSON.stringify([nodes, agents]);
      state.network = network;
      // nothing is redrawn that did not change: a reader's focus and a click in progress stay put
      if (drawn !== state.drawn) { state.drawn = drawn; drawGraph(); }
      if (health !== state.health) { state.health = health; drawHealth(); }
      if (state.selected) await showDetails(state.selected);
      statusLine.textContent = `Updated ${new Date().toLocaleTimeString()}.${unread()}`;
    } catch (error) {
      statusLine.textContent = `Could not read the network: ${error.message}`;
    }
  }

  function callCounts(processor) {
    const totals = {};
    for (const socket of socketsOf(processor)) {
      for (const [callState, n] of Object.entries(state.network.counts[socket.name] || {})) {
        totals[callState] = (totals[callState] || 0) + n;
      }
    }
    return totals;
  }

  function socketsOf(processor) {
    return state.network.sockets.filter((s) => s.processor === processor.name);
  }

  function countText(counts) {
    const parts = Object.entries(counts).sort().map(([s, n]) => `${n} ${s}`);
    return parts.length ? parts.join(" · ") : "no calls yet";
  }

  function boxes() {
    return state.network.processors.map((p) => ({ id: p.name, processor: p, height: 74 + 16 * socketsOf(p).length }));
  }

  function plugEdges() {
    const owner = new Map(state.network.sockets.map((s) => [s.name, s.processor]));
    return state.network.plugs.map((plug) => ({ plug, from: owner.get(plug.source), to: owner.get(plug.target) }))
      .filter((e) => e.from && e.to);
  }

  function drawGraph() {
    const target = document.getElementById("graph");
    const items = boxes();
    if (!items.length) {
      target.replaceChildren(el("p", { class: "hint" }, "No processors yet: pyfi add processor, then pyfi add socket."));
      return;
    }
    const edges = plugEdges();
    const layout = graph.place(items, edges, BOX);
    const picture = graph.drawing(layout.width, layout.height + 10, "The network: processors, queues and plugs");
    picture.append(graph.defs("arrow"), graph.defs("arrow-error", "#b3261e"));
    edges.forEach((edge, i) => picture.append(plugArrow(edge, layout.spots, i)));
    for (const item of items) picture.append(processorBox(item.processor, layout.spots.get(item.id)));
    target.replaceChildren(picture);
    fit();
  }

  // The graph shrinks to fit while its names stay readable; a wider one keeps its size and scrolls sideways
  function fit() {
    const picture = document.querySelector("#graph svg");
    if (picture) picture.classList.toggle("full-size", picture.viewBox.baseVal.width > picture.parentNode.clientWidth * 1.25);
  }

  function plugArrow(edge, spots, index) {
    const a = spots.get(edge.from), b = spots.get(edge.to);
    const bend = (index % 3) * 8;
    const error = edge.plug.type === "ERROR";
    const at = graph.middle(a, b, bend);
    return svg("g", { class: "plug", dataset: { plug: edge.plug.name } },
      svg("path", { class: `edge${error ? " error-plug" : ""}`, d: graph.link(a, b, bend),
        "marker-end": `url(#${error ? "arrow-error" : "arrow"})` }),
      svg("text", { class: "queue-label", x: at.x, y: at.y, "text-anchor": "middle" },
        `${edge.plug.name} (${edge.plug.queue})`));
  }

  // The inbound queues as arrows into the box's left side, each labelled with the queue's name
  function queueArrows(processor, spot) {
    const queues = [...new Set(socketsOf(processor).map((s) => s.queue))];
    return queues.map((queue, i) => {
      const y = spot.y + 22 + i * 18;
      return svg("g", { class: "queue", dataset: { queue } },
        svg("path", { class: "edge", d: `M ${spot.x - 100} ${y} L ${spot.x} ${y}`, "marker-end": "url(#arrow)" }),
        svg("text", { class: "queue-label", x: spot.x - 98, y: y - 4 }, queue));
    });
  }

  function processorBox(processor, spot) {
    const status = processor.status || "ready";
    const colour = getComputedStyle(document.documentElement).getPropertyValue(`--${status}`).trim() || "#8e99a8";
    const sockets = socketsOf(processor);
    const group = svg("g", { class: `processor${state.selected === processor.name ? " selected" : ""}`,
      tabindex: 0, role: "button", "aria-label": `processor ${processor.name}, ${status}`,
      dataset: { name: processor.name, status }, onclick: () => select(processor.name),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(processor.name); } } },
    ...queueArrows(processor, spot),
    svg("rect", { class: "box", x: spot.x, y: spot.y, width: spot.w, height: spot.h, rx: 8, stroke: colour }),
    svg("rect", { x: spot.x, y: spot.y, width: 8, height: spot.h, rx: 3, fill: colour }),
    svg("text", { class: "name", x: spot.x + 16, y: spot.y + 20 }, processor.name),
    svg("text", { class: "status", x: spot.x + 16, y: spot.y + 38, fill: colour }, statusText(processor)),
    ...sockets.map((s, i) => svg("text", { class: "small socket", x: spot.x + 16, y: spot.y + 56 + 16 * i }, `⇢ ${s.name}`)),
    svg("text", { class: "small counts", x: spot.x + 16, y: spot.y + spot.h - 8 }, countText(callCounts(processor))));
    return group;
  }

  function statusText(processor) {
    const wanted = processor.requested_status;
    return wanted && wanted !== processor.status && wanted !== "ready" ? `${processor.status} → ${wanted}` : processor.status;
  }

  function drawLegend() {
    document.getElementById("legend").replaceChildren(...STATUSES.map((s) =>
      el("li", {}, el("span", { class: `swatch s-${s}` }), s)));
  }

  function table(headings, rows) {
    if (!rows.length) return el("p", { class: "hint" }, "None.");
    return el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))))));
  }

  function drawHealth() {
    const { nodes, agents } = state.network;
    document.getElementById("nodes").replaceChildren(table(["Node", "Health", "Host", "CPUs", "Load", "Placement"],
      nodes.map((n) => [n.name, nodeHealth(n, agents), n.hostname || "", n.cpus ?? "", n.load ?? "",
        n.cordoned ? "cordoned" : n.draining ? "draining" : "in service"])));
    document.getElementById("agents").replaceChildren(table(["Agent", "Node", "Status", "Heartbeat"], agents.map((a) =>
      [a.name, a.node || a.hostname || "", badge(a.status), when(a.lastupdated)])));
  }

  // A node is up while one of its agents runs (or monitors); lost once they all are
  function nodeHealth(node, agents) {
    const own = agents.filter((a) => a.node === node.name).map((a) => a.status);
    if (own.includes("running") || own.includes("monitoring")) return badge("running");
    if (own.includes("lost")) return badge("lost");
    return own.length ? badge("stopped") : el("span", { class: "hint" }, state.me.reads.agents ? "no agent" : "");
  }

  function select(name) {
    state.selected = name;
    drawGraph();
    showDetails(name);
  }

  async function showDetails(name) {
    const panel = document.getElementById("details");
    const processor = state.network.processors.find((p) => p.name === name);
    if (!processor) { panel.replaceChildren(el("h2", {}, "Processor"), el("p", { class: "hint" }, `${name} is gone.`)); return; }
    const calls = await recentCalls(processor);
    const signature = JSON.stringify([processor, calls, state.network.workers]);
    if (state.selected !== name || signature === state.detailed) return;
    state.detailed = signature;
    panel.replaceChildren(...[
      el("h2", {}, "Processor ", el("span", { id: "details-name" }, processor.name)),
      el("p", {}, badge(processor.status), " ", processor.requested_status ? `requested: ${processor.requested_status}` : ""),
      actionButtons(processor),
      el("p", { class: "error", id: "action-error", role: "alert", hidden: true }),
      el("dl", {}, facts(processor)),
      processor.error ? el("p", { class: "error" }, processor.error) : null,
      el("h3", {}, "Workers"), workersTable(processor),
      el("h3", {}, "Recent calls"), callsTable(calls),
      el("h3", {}, "Recent errors"), errorsList(calls)].filter(Boolean));
  }

  function facts(processor) {
    const rows = [["Module", processor.module], ["Repository", processor.gitrepo], ["Branch", processor.branch],
      ["Commit", processor.commit], ["Workers", processor.workers], ["Host", processor.hostname], ["Owner", processor.owner],
      ["Sockets", socketLinks(processor)]];
    return rows.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v instanceof Node ? v : String(v))]);
  }

  // Each socket, opening the calls page on its calls, ready to run it
  function socketLinks(processor) {
    const sockets = socketsOf(processor);
    if (!sockets.length) return "";
    return el("span", {}, sockets.flatMap((s, i) => [i ? ", " : "",
      el("a", { href: `/calls?socket=${encodeURIComponent(s.name)}`, class: "socket-link" }, s.name)]));
  }

  function actionButtons(processor) {
    const { may, name } = state.me;
    const allowed = processor.owner === name || may("UPDATE");  // another user's processor needs UPDATE as well
    return el("div", { class: "actions" }, ACTIONS.map(([action, right]) => allowed && may(right)
      ? el("button", { type: "button", class: "secondary", id: `action-${action}`, dataset: { action },
        onclick: (event) => act(processor.name, action, event.currentTarget) }, action)
      : null));
  }

  async function act(name, action, button) {
    button.disabled = true;
    try {
      await api(`/processors/${encodeURIComponent(name)}/${action}`, { method: "POST" });
      await refresh();
    } catch (error) {
      showError(document.getElementById("action-error"), error);
    } finally {
      button.disabled = false;
    }
  }

  function workersTable(processor) {
    const rows = state.network.workers.filter((w) => w.processor === processor.name);
    return table(["Worker", "Agent", "Status", "Processes"], rows.map((w) => [w.name, w.agent || "", badge(w.status), w.concurrency ?? ""]));
  }

  async function recentCalls(processor) {
    if (!state.me.reads.calls) return [];
    const lists = await Promise.all(socketsOf(processor).map((s) =>
      api("/calls", { query: { socket: s.name, rows: 10 } }).then((page) => page.items).catch(() => [])));
    return lists.flat().sort((a, b) => String(b.lastupdated).localeCompare(String(a.lastupdated))).slice(0, 10);
  }

  function callsTable(calls) {
    return table(["Call", "Socket", "State", "Updated"], calls.map((c) =>
      [el("a", { href: `/calls/${encodeURIComponent(c.id)}` }, shortId(c.id)), c.socket || c.name, badge(c.state), when(c.lastupdated)]));
  }

  function errorsList(calls) {
    const failed = calls.filter((c) => c.error);
    if (!failed.length) return el("p", { class: "hint" }, "None among the recent calls.");
    return el("ul", {}, failed.map((c) => el("li", {}, el("a", { href: `/calls/${encodeURIComponent(c.id)}` }, shortId(c.id)), " ", preview(c.error, 120))));
  }

  async function start() {
    drawLegend();
    window.addEventListener("resize", fit);
    state.me = await me();
    await refresh();
    setInterval(refresh, 5000);
    if (!state.me.reads.calls) { document.getElementById("newest-card").hidden = true; return; }
    const newest = window.pyfi.callTable.attach(document.querySelector("#newest tbody"));
    const showNewest = () => api("/calls", { query: { rows: 10 } }).then((page) => newest.show(page.items)).catch(() => {});
    showNewest();
    const live = document.getElementById("live");
    listen(throttled(() => { refresh(); showNewest(); }, 1000), (open) => live.classList.toggle("on", open));
  }

  start();
})();
