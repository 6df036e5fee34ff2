// A table of calls (the calls page's list, the network page's newest calls): socket, state, time, and a preview
// of each call's arguments and result, read once the call has ended (the result backend keeps them).
"use strict";

window.pyfi.callTable = (() => {
  const { api, el, badge, when, preview } = window.pyfi;
  const ENDED = new Set(["finished", "failed", "revoked", "refused", "cancelled"]);

  // The call's id, its first eight characters stressed (the part to read; the whole to search for)
  function idLink(id) {
    return el("a", { href: `/calls/${encodeURIComponent(id)}`, class: "mono call-id" },
      el("strong", {}, id.slice(0, 8)), id.slice(8));
  }

  // `body`: the <tbody> to fill. Returns show(calls), which redraws it; rows that changed flash once.
  function attach(body) {
    const seen = new Map();  // call id -> its row's text
    const stored = new Map();  // call id -> {state, args, kwargs, result}

    async function readPreviews(calls) {
      const wanted = calls.filter((c) => ENDED.has(c.state) && (stored.get(c.id) || {}).state !== c.state).map((c) => c.id);
      if (!wanted.length) return;
      try {
        const found = (await api("/web/previews", { query: { ids: wanted.join(",") } })).calls;
        const states = new Map(calls.map((c) => [c.id, c.state]));
        for (const [id, value] of Object.entries(found)) stored.set(id, { ...value, state: states.get(id) });
      } catch (_) { /* previews are a nicety: the list shows without them */ }
    }

    function argumentsOf(call) {
      const known = stored.get(call.id);
      if (!known || !known.args) return "";
      return known.kwargs && Object.keys(known.kwargs).length ? [...known.args, known.kwargs] : known.args;
    }

    function row(call) {
      const outcome = call.error || (stored.get(call.id) || {}).result;
      const cells = [
        el("td", {}, idLink(call.id)),
        el("td", { class: "socket" }, call.socket || call.name || ""),
        el("td", {}, badge(call.state)),
        el("td", {}, when(call.lastupdated || call.finished || call.started)),
        el("td", { class: "preview", title: preview(argumentsOf(call), 500) }, preview(argumentsOf(call))),
        el("td", { class: "preview", title: preview(outcome, 500) }, preview(outcome)),
      ];
      const text = cells.map((c) => c.textContent).join("|");
      const fresh = seen.has(call.id) ? seen.get(call.id) !== text : seen.size > 0;
      seen.set(call.id, text);
      return el("tr", { class: fresh ? "fresh" : null, dataset: { id: call.id, state: call.state } }, cells);
    }

    async function show(calls) {
      await readPreviews(calls);
      body.replaceChildren(...calls.map(row));
    }

    return { show, forget: () => seen.clear() };
  }

  return { attach, ENDED };
})();
