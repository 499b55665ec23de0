// The services table: every service kept in memory (from the JSON API and the live
// stream), filtered and sorted here, one page of rows in the DOM at a time so that
// 10,000 services stay fast. Click a header to sort by it (again: reverse), shift+click
// to add it as the next key.

import { SEVERITY, el, partialMarker, serviceUrl, timeEl } from "./common.js";
import { startLiveServices } from "./live.js";

const table = document.getElementById("services");
const tbody = table.tBodies[0];
const PAGE = Number(table.dataset.pageSize) || 100;
const textFilter = document.getElementById("filter-text");
const statusFilter = document.getElementById("filter-status");
const tagFilter = document.getElementById("filter-tag");
const pager = document.getElementById("pager");
const shown = document.getElementById("shown");
const noRows = document.getElementById("no-rows");

const services = new Map();
let loaded = false;
let page = Number(table.dataset.page) || 1;
let renderTimer = null;

const lower = (text) => (text ?? "").toLowerCase();
const KEYS = {
  name: (s) => lower(s.name),
  status: (s) => SEVERITY[s.status] ?? 0,
  type: (s) => s.type,
  message: (s) => lower(s.message),
  last_check: (s) => s.last_check ?? 0,
  last_change: (s) => s.last_change ?? 0,
  tags: (s) => lower(s.tags.join(",")),
};

let sortKeys = parseSort(table.dataset.sort || "name");

function parseSort(text) {
  const keys = [];
  for (const part of text.split(",")) {
    const col = part.trim().replace(/^-/, "");
    if (col in KEYS && !keys.some((k) => k.col === col)) {
      keys.push({ col, desc: part.trim().startsWith("-") });
    }
  }
  return keys.length ? keys : [{ col: "name", desc: false }];
}

const sortText = () => sortKeys.map((k) => (k.desc ? "-" : "") + k.col).join(",");

function matches(s, needle, status, tag) {
  if (status && s.status !== status) return false;
  if (tag && !s.tags.includes(tag)) return false;
  if (!needle) return true;
  return (
    lower(s.name).includes(needle) ||
    lower(s.message).includes(needle) ||
    s.tags.some((t) => lower(t).includes(needle))
  );
}

function view() {
  const needle = lower(textFilter.value.trim());
  const status = statusFilter.value;
  const tag = tagFilter.value;
  const rows = [];
  for (const s of services.values()) {
    if (matches(s, needle, status, tag)) rows.push({ s, k: sortKeys.map(({ col }) => KEYS[col](s)) });
  }
  rows.sort((a, b) => {
    for (let i = 0; i < sortKeys.length; i++) {
      const x = a.k[i];
      const y = b.k[i];
      if (x < y) return sortKeys[i].desc ? 1 : -1;
      if (x > y) return sortKeys[i].desc ? -1 : 1;
    }
    return a.s.name < b.s.name ? -1 : a.s.name > b.s.name ? 1 : 0;
  });
  return rows.map((r) => r.s);
}

function rowFor(s) {
  const classes = [`status-${s.status}`];
  if (s.acknowledged) classes.push("acknowledged");
  if (s.maintenance) classes.push("maintenance");
  const tags = [];
  s.tags.forEach((t, i) => {
    if (i) tags.push(" ");
    tags.push(el("span", { class: "tag" }, t));
  });
  return el(
    "tr",
    { "data-service": s.name, class: classes.join(" ") },
    el("td", { "data-col": "name" }, el("a", { href: serviceUrl(s.name) }, s.name)),
    el("td", { "data-col": "status" }, s.status, s.partial ? " " : null, partialMarker(s)),
    el("td", { "data-col": "type" }, s.type),
    el("td", { "data-col": "message" }, s.message),
    el("td", { "data-col": "last_check" }, timeEl(s.last_check)),
    el("td", { "data-col": "last_change" }, timeEl(s.last_change)),
    el("td", { "data-col": "tags" }, tags),
  );
}

function pagerButton(label, to, rel) {
  const button = el("button", { type: "button", rel, "data-page": to }, label);
  button.addEventListener("click", () => {
    page = to;
    render();
    table.scrollIntoView({ block: "start" });
  });
  return button;
}

function renderPager(pages) {
  const parts = [];
  if (page > 1) parts.push(pagerButton("« first", 1, "first"), pagerButton("‹ previous", page - 1, "prev"));
  parts.push(el("span", { class: "where" }, `page ${page} of ${pages}`));
  if (page < pages) parts.push(pagerButton("next ›", page + 1, "next"), pagerButton("last »", pages, "last"));
  pager.replaceChildren(...parts);
}

function renderHeaders() {
  for (const th of table.tHead.querySelectorAll("th[data-sort]")) {
    const key = sortKeys.find((k) => k.col === th.dataset.sort);
    if (key) th.setAttribute("aria-sort", key.desc ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
    const position = sortKeys.indexOf(key);
    if (sortKeys.length > 1 && position >= 0) th.dataset.sortPosition = String(position + 1);
    else delete th.dataset.sortPosition;
  }
}

function remember() {
  const params = new URLSearchParams();
  if (textFilter.value.trim()) params.set("q", textFilter.value.trim());
  if (statusFilter.value) params.set("status", statusFilter.value);
  if (tagFilter.value) params.set("tag", tagFilter.value);
  if (sortText() !== "name") params.set("sort", sortText());
  if (page > 1) params.set("page", String(page));
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

function render() {
  clearTimeout(renderTimer);
  renderTimer = null;
  renderHeaders();
  if (!loaded) return;
  const rows = view();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  page = Math.min(Math.max(page, 1), pages);
  const fragment = document.createDocumentFragment();
  for (const s of rows.slice((page - 1) * PAGE, page * PAGE)) fragment.append(rowFor(s));
  tbody.replaceChildren(fragment);
  noRows.hidden = rows.length > 0;
  shown.textContent = `${rows.length} of ${services.size} services`;
  renderPager(pages);
  remember();
}

function renderSoon() {
  if (renderTimer === null) renderTimer = setTimeout(render, 100);
}

function refreshTagOptions() {
  const tags = new Set();
  for (const s of services.values()) for (const t of s.tags) tags.add(t);
  const chosen = tagFilter.value;
  const options = [el("option", { value: "" }, "any")];
  for (const t of [...tags].sort()) options.push(el("option", { value: t, selected: t === chosen }, t));
  tagFilter.replaceChildren(...options);
  tagFilter.value = tags.has(chosen) ? chosen : "";
}

for (const th of table.tHead.querySelectorAll("th[data-sort]")) {
  th.addEventListener("click", (event) => {
    event.preventDefault();
    const col = th.dataset.sort;
    const existing = sortKeys.find((k) => k.col === col);
    if (event.shiftKey) {
      if (existing) existing.desc = !existing.desc;
      else sortKeys.push({ col, desc: false });
    } else if (existing && sortKeys[0] === existing) {
      sortKeys = [{ col, desc: !existing.desc }];
    } else {
      sortKeys = [{ col, desc: false }];
    }
    page = 1;
    render();
  });
  th.addEventListener("mousedown", (event) => {
    // Keep shift+click from selecting the header text.
    if (event.shiftKey) event.preventDefault();
  });
}

let typing = null;
textFilter.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    page = 1;
    render();
  }, 120);
});
for (const select of [statusFilter, tagFilter]) {
  select.addEventListener("change", () => {
    page = 1;
    render();
  });
}
document.getElementById("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  page = 1;
  render();
});

startLiveServices(services, {
  // What rows, filters and sorts read: at 10,000 services 2.1 MB to fetch and parse
  // on every resync instead of 5.4 MB.
  fields: [
    "name", "status", "type", "message", "last_check", "last_change", "tags", "acknowledged",
    "maintenance", "partial", "partial_locations",
  ],
  loaded() {
    loaded = true;
    refreshTagOptions();
    render();
    table.dataset.ready = "";
  },
  changed: renderSoon,
});
