// The overview: counts and the problems list kept current from the live stream.

import { SEVERITY, STATUSES, badge, el, serviceUrl, timeEl } from "./common.js";
import { applyCounts, startLiveServices } from "./live.js";

const SHOWN = 100;
const services = new Map();
let timer = null;

const isProblem = (s) => ["warn", "error", "failed", "unknown"].includes(s.status);

function problemItem(s) {
  return el(
    "li",
    { "data-service": s.name, class: `status-${s.status}${s.acknowledged ? " acknowledged" : ""}` },
    badge(s.status),
    " ",
    el("a", { href: serviceUrl(s.name) }, s.name),
    s.acknowledged ? [" ", el("span", { class: "flag", "data-flag": "acknowledged" }, "acknowledged")] : [],
    " ",
    el("span", { class: "message" }, s.message),
    " ",
    el("span", { class: "since" }, "since ", timeEl(s.last_change)),
  );
}

function render() {
  timer = null;
  const counts = Object.fromEntries(STATUSES.map((st) => [st, 0]));
  const problems = [];
  for (const s of services.values()) {
    counts[s.status] = (counts[s.status] ?? 0) + 1;
    if (isProblem(s)) problems.push(s);
  }
  applyCounts(counts);
  problems.sort(
    (a, b) =>
      Number(a.acknowledged) - Number(b.acknowledged) ||
      SEVERITY[b.status] - SEVERITY[a.status] ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  document.getElementById("problems").replaceChildren(...problems.slice(0, SHOWN).map(problemItem));
  document.getElementById("no-problems").hidden = problems.length > 0;
}

startLiveServices(services, {
  // What the counts and the problems list read of each service.
  fields: ["name", "status", "acknowledged", "message", "last_change"],
  loaded: render,
  changed() {
    if (timer === null) timer = setTimeout(render, 100);
  },
});
