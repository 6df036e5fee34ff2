// The calls page: the newest calls, kept current by the live event stream (no reload), with ls calls' filters;
// and a form that runs a socket and shows the result when it arrives.
"use strict";

(() => {
  const { api, all, el, badge, shortId, pretty, listen, throttled, showError, me } = window.pyfi;
  const { ENDED } = window.pyfi.callTable;
  const filters = document.getElementById("filters");
  const table = window.pyfi.callTable.attach(document.querySelector("#calls tbody"));
  const live = document.getElementById("live");

  function query() {
    const form = new FormData(filters);
    return { page: form.get("page") || 1, rows: form.get("rows") || 25, ascend: form.get("ascend") ? "true" : null,
      socket: form.get("socket"), state: form.get("state"), since: form.get("since"), tracking: form.get("tracking") };
  }

  async function refresh() {
    try {
      const page = await api("/calls", { query: query() });
      await table.show(page.items);
      showError(document.getElementById("calls-error"), null);
    } catch (error) {
      showError(document.getElementById("calls-error"), error);
    }
  }

  async function loadSockets(user) {
    let sockets = [];
    try { sockets = user.reads.sockets ? await all("/sockets") : []; } catch (_) { sockets = []; }
    const names = sockets.map((s) => s.name).sort();
    document.getElementById("socket-names").replaceChildren(...names.map((n) => el("option", { value: n })));
    const asked = new URLSearchParams(location.search).get("socket");
    document.getElementById("run-socket").replaceChildren(...names.map((n) => el("option", { value: n, selected: n === asked }, n)));
  }

  // The filters a link asked for (/calls?socket=NAME&state=failed...), as ls calls takes them
  function askedFilters() {
    const asked = new URLSearchParams(location.search);
    for (const field of ["socket", "state", "since", "tracking", "rows", "page"]) {
      if (asked.has(field)) filters.elements[field].value = asked.get(field);
    }
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

  // The field's JSON value, checked to be of `kind`; an Error naming the field and the fix otherwise
  function parsed(id, kind, check) {
    const label = id === "run-args" ? "Arguments" : "Keyword arguments";
    const text = document.getElementById(id).value.trim();
    if (!text) return kind === "array" ? [] : {};
    let value;
    try { value = JSON.parse(text); } catch (error) {
      throw new Error(`${label}: not JSON (${error.message}); strings need double quotes, e.g. ["hello"]`);
    }
    if (!check(value)) throw new Error(`${label} must be a JSON ${kind}, e.g. ${kind === "array" ? '["hello", 2]' : '{"times": 2}'}`);
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
    askedFilters();
    const user = await me();
    loadSockets(user);
    setUpRun(user);
    if (!user.reads.calls) {
      showError(document.getElementById("calls-error"), "Listing calls needs the right READ.");
      return;
    }
    filters.addEventListener("submit", (event) => { event.preventDefault(); table.forget(); refresh(); });
    refresh();
    listen(throttled(refresh, 700), (open) => { live.classList.toggle("on", open); });
  }

  start();
})();
