// Shared helpers of pymon's pages: URLs under the public prefix, the CSRF token,
// JSON fetches, relative times and small DOM builders. No framework, no build step.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

export const prefix = meta("pymon-prefix");
export const csrf = meta("csrf-token");

export const STATUSES = ["ok", "warn", "error", "failed", "unknown", "disabled"];
export const SEVERITY = { disabled: 0, ok: 1, unknown: 2, warn: 3, error: 4, failed: 5 };
export const FLAGS = [
  "confirmed", "recovering", "acknowledged", "maintenance", "flapping", "escalated", "unreachable",
];

export const serviceUrl = (name) => `${prefix}/services/${encodeURIComponent(name)}`;

/** Fetch JSON from pymon (path relative to the prefix); throws an Error with the
 * server's `error` text on a non-2xx answer. */
export async function getJSON(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers ?? {}) };
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = csrf;
  const answer = await fetch(prefix + path, { credentials: "same-origin", ...options, headers });
  let body = null;
  try {
    body = await answer.json();
  } catch {
    body = null;
  }
  if (!answer.ok) {
    const error = new Error(body?.error ?? `${answer.status} ${answer.statusText}`);
    error.status = answer.status;
    throw error;
  }
  return body;
}

/** Every service from the API, page by page (the API caps a page at 10,000); with
 * `fields` (a list of keys), only those keys of each. */
export async function fetchAllServices(fields = null) {
  const all = [];
  const only = fields ? `&fields=${fields.join(",")}` : "";
  for (let offset = 0; ; ) {
    const page = await getJSON(`/api/v1/services?limit=10000&offset=${offset}${only}`);
    all.push(...page.services);
    offset += page.services.length;
    if (page.services.length === 0 || offset >= page.total) return all;
  }
}

function span(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function relTime(ts, now = Date.now() / 1000) {
  if (ts == null) return "never";
  const delta = now - ts;
  if (delta > -1 && delta < 1) return "just now";
  return delta < 0 ? `in ${span(-delta)}` : `${span(delta)} ago`;
}

export function absTime(ts) {
  return new Date(ts * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** A <time> element for epoch seconds `ts` ("never" when null). */
export function timeEl(ts) {
  if (ts == null) return el("span", { class: "never" }, "never");
  return el(
    "time",
    { datetime: new Date(ts * 1000).toISOString(), "data-ts": String(ts), title: absTime(ts) },
    relTime(ts),
  );
}

/** Refresh the text of every <time data-ts> under `root`. */
export function refreshTimes(root = document) {
  const now = Date.now() / 1000;
  for (const t of root.querySelectorAll("time[data-ts]")) {
    const text = relTime(Number(t.dataset.ts), now);
    if (t.textContent !== text) t.textContent = text;
  }
}

/** Build an element; children are nodes or strings (always set as text, never parsed). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const svgEl = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
};

export const badge = (status) => el("span", { class: `badge status-${status}` }, status);

/** "partial: eu-west, us-east" beside a service's status when some locations see a
 * problem its quorum does not confirm; null otherwise. */
export function partialMarker(s, attrs = { class: "partial" }) {
  if (!s.partial) return null;
  return el("span", { ...attrs, title: "seen by fewer locations than the quorum" }, `partial: ${s.partial_locations.join(", ")}`);
}

export function eventRow(e) {
  return el(
    "tr",
    { class: `status-${e.status}`, "data-kind": e.kind },
    el("td", { "data-col": "at" }, timeEl(e.at)),
    el("td", { "data-col": "service" }, el("a", { href: serviceUrl(e.service) }, e.service)),
    el("td", { "data-col": "kind" }, e.kind.replaceAll("_", " ")),
    el("td", { "data-col": "change" }, badge(e.previous), " → ", badge(e.status)),
    el("td", { "data-col": "message" }, e.message),
  );
}

export function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
}
