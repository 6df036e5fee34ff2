// pyfi's dashboard: what every page shares. Plain JavaScript, no library, no build step.
// The token is an HttpOnly cookie the browser sends by itself; this code never sees it.
"use strict";

window.pyfi = (() => {
  const SVG = "http://www.w3.org/2000/svg";

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // One call of the REST API (or of the dashboard's own reads, /web/...): JSON in and out. Unsafe methods carry X-Pyfi-Web, which the API asks of
  // cookie-authenticated writes (another site can send the cookie with a form, never with this header).
  async function api(path, { method = "GET", body, query } = {}) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET") headers["X-Pyfi-Web"] = "1";
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const base = path.startsWith("/web/") ? "" : "/api";
    const response = await fetch(`${base}${path}${queryString(query)}`, init);
    if (response.status === 401) { location.assign("/login"); throw new ApiError(401, "logged out"); }
    const text = await response.text();
    const data = text ? parseJson(text) : null;
    if (!response.ok) throw new ApiError(response.status, detail(data, response));
    return data;
  }

  function parseJson(text) {
    try { return JSON.parse(text); } catch (_) { return text; }
  }

  function queryString(query) {
    if (!query) return "";
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  // FastAPI's {"detail": ...}: a string, or a list of field errors
  function detail(data, response) {
    const found = data && typeof data === "object" ? data.detail : data;
    if (Array.isArray(found)) return found.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    if (found && typeof found === "object") return found.message || JSON.stringify(found);
    return found || `${response.status} ${response.statusText}`;
  }

  // Every item of a paged list (pages of 100), up to `limit` items
  async function all(path, limit = 500) {
    const items = [];
    for (let page = 1; items.length < limit; page += 1) {
      const answer = await api(path, { query: { page, rows: 100 } });
      items.push(...answer.items);
      if (answer.items.length === 0 || items.length >= answer.total) break;
    }
    return items;
  }

  // A DOM element: el("td", {class: "x", dataset: {id}}, "text", child...)
  function el(tag, attributes = {}, ...children) {
    return fill(document.createElement(tag), attributes, children);
  }

  function svg(tag, attributes = {}, ...children) {
    return fill(document.createElementNS(SVG, tag), attributes, children);
  }

  function fill(node, attributes, children) {
    for (const [key, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function badge(state) {
    return el("span", { class: `badge s-${state}` }, state || "?");
  }

  // A value in one short line: JSON, cut to `max` characters
  function preview(value, max = 60) {
    if (value === undefined || value === null) return "";
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  function pretty(value) {
    if (value === undefined || value === null) return "";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  // A stored time (UTC, with or without its zone) in the reader's local time
  function when(text) {
    if (!text) return "";
    const stamp = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
    return Number.isNaN(stamp.getTime()) ? text : stamp.toLocaleString();
  }

  function shortId(id) { return id ? String(id).slice(0, 8) : ""; }

  // Live lifecycle messages: calls `onMessage(message)` for each; `onState(open)` when the stream opens or drops.
  // EventSource reconnects by itself; the cookie authenticates it.
  function listen(onMessage, onState = () => {}) {
    const source = new EventSource("/api/events", { withCredentials: true });
    source.addEventListener("open", () => onState(true));
    source.addEventListener("error", () => onState(false));
    source.addEventListener("message", (event) => onMessage(parseJson(event.data)));
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  // Run `action` at most once per `ms`, and once more after the last request
  function throttled(action, ms) {
    let timer = null;
    let again = false;
    return () => {
      if (timer) { again = true; return; }
      action();
      timer = setTimeout(function tick() {
        timer = null;
        if (again) { again = false; action(); timer = setTimeout(tick, ms); }
      }, ms);
    };
  }

  // The signed-in user: {name, rights, reads: {list: may read it}, may(right)}: whether the API would allow it
  async function me() {
    let found = { name: "", rights: [], reads: {} };
    try { found = await api("/web/me"); } catch (_) { /* a user the API does not know: nothing allowed */ }
    const held = new Set(found.rights);
    return { ...found, may: (right) => held.has("ALL") || held.has(right) };
  }

  function showError(node, error) {
    if (!node) return;
    node.hidden = !error;
    node.textContent = error ? String(error.message || error) : "";
  }

  return { api, all, el, svg, badge, preview, pretty, when, shortId, listen, throttled, showError, me, ApiError };
})();
