// The calls page: the newest calls, kept current by the live event stream (no reload), with ls calls' filters;
// and a form that runs a socket and shows the result when it arrives.
"use strict";

(() => {
  const { api, all, el, badge, when, shortId, preview, pretty, listen, throttled, showError, me } = window.pyfi;
  const ENDED = new Set(["finished", "failed", "revoked", "refused", "cancelled"]);
  const filters = document.getElementById("filters");
  const body = document.querySelector("#calls tbody");
  const seen = new Map();  // call id -> its row's text: rows that changed flash once
  const stored = new Map();  // call id -> {state, args, kwargs, result}: what the result backend holds, once ended
  const live = document.getElementById("live");

  function query() {
    const form = new FormData(filters);
    return { page: 1, rows: form.get("rows") || 25, socket: form.get("socket"), state: form.get("state"),
      since: form.get("since"), tracking: form.get("tracking") };
  }

  async function refresh() {
    try {
      const page = await api("/calls", { query: query() });
      await readPreviews(page.items);
      showError(document.getElementById("calls-error"), null);
      body.replaceChildren(...page.items.map(row));
    } catch (error) {
      showError(document.getElementById("calls-error"), error);
    }
  }

  // The stored arguments and results of the calls that ended since they were last read
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
      el("td", {}, el("a", { href: `/calls/${encodeURIComponent(call.id)}`, class: "mono" }, shortId(call.id))),
      el("td", {}, call.socket || call.name || ""),
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

  async function loadSockets(user) {
    let sockets = [];
    try { sockets = user.reads.sockets ? await all("/sockets") : []; } catch (_) { sockets = []; }
    const names = sockets.map((s) => s.name).sort();
    document.getElementById("socket-names").replaceChildren(...names.map((n) => el("option", { value: n })));
    document.getElementById("run-socket").replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  }

  // The Run button works for a user with RUN_TASK (the API checks it again); the form says when it knows
  function setUpRun(user) {
    const may = user.may("RUN_TASK");
    const button = document.getElementById("run-button");
    const form = document.getElementById("run-form");
    button.disabled = !may;
    button.title = may ? "" : "Needs the right RUN_TASK";
    form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
    form.dataset.ready = "true";
  }

  function parsed(id, kind, check) {
    const text = document.getElementById(id).value.trim();
    if (!text) return kind === "array" ? [] : {};
    const value = JSON.parse(text);
    if (!check(value)) throw new Error(`${id === "run-args" ? "Arguments" : "Keyword arguments"} must be a JSON ${kind}`);
    return value;
  }

  async function run() {
    const out = document.getElementById("run-result");
    const button = document.getElementById("run-button");
    const socket = document.getElementById("run-socket").value;
    let body;
    try {
      body = { args: parsed("run-args", "array", Array.isArray),
        kwargs: parsed("run-kwargs", "object", (v) => v && typeof v === "object" && !Array.isArray(v)) };
    } catch (error) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
      return;
    }
    button.disabled = true;
    try {
      const sent = await api(`/sockets/${encodeURIComponent(socket)}/calls`, { method: "POST", body });
      out.replaceChildren(el("p", {}, "Sent ", callLink(sent.id), ", waiting for its result…"));
      out.replaceChildren(outcome(await settled(sent.id)));
    } catch (error) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
    } finally {
      button.disabled = false;
    }
  }

  function callLink(id) {
    return el("a", { href: `/calls/${encodeURIComponent(id)}`, class: "mono", id: "run-call" }, shortId(id));
  }

  // The call once it has ended, with its stored result (asked twice a second, for at most two minutes;
  // the API records a sent call as pending before it answers, so it is always found)
  async function settled(id) {
    const deadline = Date.now() + 120000;
    for (;;) {
      const call = await api(`/calls/${encodeURIComponent(id)}`);
      if ((ENDED.has(call.state) && (call.result || call.state !== "finished")) || Date.now() > deadline) return call;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  function outcome(call) {
    const failed = call.state !== "finished";
    const value = call.result ? call.result.value : null;
    return el("div", { id: "run-outcome", dataset: { state: call.state } },
      el("p", {}, callLink(call.id), " ", badge(call.state)),
      el("pre", { id: "run-value", class: failed ? "error" : null }, failed ? pretty(call.error || value || call.state) : pretty(value)));
  }

  async function start() {
    const user = await me();
    loadSockets(user);
    setUpRun(user);
    if (!user.reads.calls) {
      showError(document.getElementById("calls-error"), "Listing calls needs the right READ.");
      return;
    }
    filters.addEventListener("submit", (event) => { event.preventDefault(); seen.clear(); refresh(); });
    refresh();
    listen(throttled(refresh, 700), (open) => { live.classList.toggle("on", open); });
  }

  start();
})();
