// The service page: live state, actions through fetch (CSRF header), and the history
// chart and status timeline drawn as inline SVG from the history API, the same
// geometry as pymon/web/pages/chart.py: a titled value axis with round ticks
// (axis.js), and the line and status bar broken before every point marked `gap`.
// A service with locations shows a table of them and, asked, one line per location
// drawn from each location check's own history (`name@location`).

import { axisTitle, ticks } from "./axis.js";
import { FLAGS, badge, csrf, el, formatNumber, getJSON, partialMarker, svgEl, timeEl, absTime } from "./common.js";
import { startLive } from "./live.js";

const article = document.getElementById("service");
const name = article.dataset.service;
const base = `/api/v1/services/${encodeURIComponent(name)}`;
const result = document.getElementById("action-result");
const CHART_EVERY = 5000;

let chartTimer = null;
let chartDrawnAt = 0;
let chartDraws = 0;

function setField(field, node) {
  const target = article.querySelector(`[data-field="${field}"]`);
  if (target) target.replaceChildren(node);
}

function apply(s) {
  const status = document.getElementById("status");
  status.textContent = s.status;
  status.className = `badge big status-${s.status}`;
  article.className = `status-${s.status}`;
  document.getElementById("flags").replaceChildren(
    ...FLAGS.filter((f) => s[f]).flatMap((f) => [el("span", { class: "flag", "data-flag": f }, f), " "]),
    partialMarker(s, { class: "flag", "data-flag": "partial" }) ?? "",
  );
  applyLocations(s.locations ?? {});
  document.getElementById("message").textContent = s.message;
  document.getElementById("ack-form").hidden = !s.incident || s.acknowledged;
  document.getElementById("unack").hidden = !s.acknowledged;
  document.getElementById("run-now").disabled = !s.enabled;
  setField("last_check", timeEl(s.last_check));
  setField("last_change", timeEl(s.last_change));
  setField("count", `${s.count} × ${s.status} (before: ${s.previous_status})`);
  setField("last_duration", `${formatNumber(Math.round(s.last_duration * 10000) / 10)} ms`);
  applyMetrics(s.metrics);
}

function locationRow(loc, r) {
  const why = r.present ? [] : [el("span", { class: "absent-reason" }, `absent: ${r.absent_reason}`), r.message ? " · " : ""];
  return el(
    "tr",
    { "data-location": loc, class: `status-${r.status ?? "unknown"}${r.present ? "" : " absent"}` },
    el("td", { "data-col": "location" }, loc),
    el("td", { "data-col": "status" }, r.status ? badge(r.status) : el("span", { class: "never" }, "none yet")),
    el("td", { "data-col": "message" }, why, r.message),
    el("td", { "data-col": "age" }, timeEl(r.last_check)),
    el("td", { "data-col": "node" }, r.node ?? "-"),
    el(
      "td",
      { "data-col": "duration", class: "num" },
      r.duration == null ? "-" : `${formatNumber(Math.round(r.duration * 10000) / 10)} ms`,
    ),
  );
}

function applyLocations(locations) {
  const body = document.querySelector("#locations tbody");
  if (body) body.replaceChildren(...Object.entries(locations).map(([loc, r]) => locationRow(loc, r)));
}

function applyMetrics(metrics) {
  const body = document.querySelector("#metrics tbody");
  const thresholds = new Map();
  for (const row of body.querySelectorAll("tr[data-metric]")) {
    thresholds.set(row.dataset.metric, row.cells[2].cloneNode(true));
  }
  const names = Object.keys(metrics).sort();
  if (!names.length) {
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 3 }, "No metrics.")));
    return;
  }
  body.replaceChildren(
    ...names.map((m) =>
      el(
        "tr",
        { "data-metric": m },
        el("td", {}, m),
        el("td", { class: "num" }, formatNumber(metrics[m])),
        thresholds.get(m) ?? el("td"),
      ),
    ),
  );
}

async function act(form) {
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const answer = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    let body = null;
    try {
      body = await answer.json();
    } catch {
      body = null;
    }
    if (!answer.ok) throw new Error(body?.error ?? `${answer.status} ${answer.statusText}`);
    result.textContent = body.message ?? "done";
    result.classList.remove("error");
    if (body.service) apply(body.service);
    form.querySelectorAll("input[name=comment]").forEach((input) => {
      input.value = "";
    });
    drawSoon();
  } catch (error) {
    result.textContent = error.message;
    result.classList.add("error");
  } finally {
    button.disabled = false;
  }
}

for (const id of ["ack-form", "unack-form", "run-form", "maint-form"]) {
  const form = document.getElementById(id);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(form);
  });
}

function point(r) {
  return {
    t: r.started_at ?? r.at ?? r.start ?? r.t,
    status: r.worst ?? r.status,
    count: r.count ?? 1,
    gap: r.gap === true,
    metrics: r.metrics ?? {},
  };
}

function valueOf(v) {
  if (v == null) return null;
  if (typeof v === "number") return Number.isFinite(v) ? { avg: v, min: v, max: v } : null;
  const avg = v.avg ?? v.mean ?? v.max ?? v.min;
  if (typeof avg !== "number") return null;
  return { avg, min: v.min ?? avg, max: v.max ?? avg };
}

function chooseMetric(points) {
  const names = new Set(points.flatMap((p) => Object.keys(p.metrics)));
  const wanted = document.getElementById("chart").dataset.metric;
  for (const m of [wanted, "response_time_ms", "connect_ms"]) if (m && names.has(m)) return m;
  return names.values().next().value ?? null;
}

/** The metric's values in stretches: a new one after a point without the metric or
 * at a point marked `gap` (no result for too long before it). */
function stretches(points, metric) {
  const found = [];
  let joined = false;
  for (const p of points) {
    const v = metric ? valueOf(p.metrics[metric]) : null;
    if (v === null || p.gap) joined = false;
    if (v === null) continue;
    if (!joined) found.push([]);
    found[found.length - 1].push({ t: p.t, v });
    joined = true;
  }
  return found;
}

/** Consecutive points of one status; a run ends at its last point when a gap follows,
 * else where the next run begins. */
function statusRuns(points) {
  const runs = [];
  for (const p of points) {
    const last = runs[runs.length - 1];
    if (last && !p.gap) last.until = p.t;
    if (last && last.status === p.status && !p.gap) last.count += p.count;
    else runs.push({ status: p.status, since: p.t, until: p.t, count: p.count });
  }
  return runs;
}

/** The chart of `series` ([{label, points}]): one line (with its min-max band) for the
 * service itself, or one line per location, each in its own colour, without bands. */
function drawChart(series) {
  const [W, H, LEFT, TOP, BOTTOM, RIGHT] = [600, 160, 48, 20, 24, 8];
  const points = series.flatMap((s) => s.points).sort((a, b) => a.t - b.t);
  const metric = chooseMetric(points);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  svg.setAttribute("aria-label", `${metric ?? "metric"} over the last results`);
  const split = series.some((s) => s.label != null);
  const lines = series.map((s) => stretches(s.points, metric));
  const parts = lines.flat();
  const values = parts.flat();
  const figure = document.getElementById("chart");
  if (metric) figure.dataset.metric = metric;
  const label = document.getElementById("chart-metric");
  if (label && metric) label.textContent = metric;
  if (!values.length) {
    svg.append(svgEl("text", { x: W / 2, y: 84, "text-anchor": "middle", class: "axis" }, "no data yet"));
    figure.replaceChildren(svg);
    return;
  }
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const tspan = t1 - t0 || 1;
  // From 0 (or the lowest value below it) to the highest, as the server's scale.
  const scale = ticks(Math.min(0, ...values.map((p) => p.v.min)), Math.max(...values.map((p) => p.v.max)));
  const vmin = scale.values[0];
  const vspan = scale.values[scale.values.length - 1] - vmin || 1;
  const round1 = (n) => Math.round(n * 10) / 10;
  const x = (t) => round1(LEFT + ((t - t0) / tspan) * (W - LEFT - RIGHT));
  const y = (v) => round1(TOP + (1 - (v - vmin) / vspan) * (H - TOP - BOTTOM));
  for (const part of split ? [] : parts) {
    if (!part.some((p) => p.v.max !== p.v.min)) continue;
    const upper = part.map((p) => `${x(p.t)} ${y(p.v.max)}`);
    const lower = part.map((p) => `${x(p.t)} ${y(p.v.min)}`).reverse();
    svg.append(svgEl("path", { d: `M${upper.join(" L")} L${lower.join(" L")} Z`, class: "band" }));
  }
  svg.append(svgEl("text", { x: LEFT, y: 12, class: "axis axis-title" }, axisTitle(metric)));
  scale.values.forEach((v, i) => {
    svg.append(
      svgEl("line", { x1: LEFT, y1: y(v), x2: W - RIGHT, y2: y(v), class: "grid" }),
      svgEl("text", { x: LEFT - 4, y: round1(y(v) + 4), "text-anchor": "end", class: "axis tick" }, scale.labels[i]),
    );
  });
  svg.append(
    svgEl("line", { x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM, class: "axis-line" }),
    svgEl("text", { x: LEFT, y: H - 6, class: "axis" }, absTime(t0)),
    svgEl("text", { x: W - RIGHT, y: H - 6, "text-anchor": "end", class: "axis" }, absTime(t1)),
    ...lines.flatMap((stretchesOf, n) =>
      stretchesOf.map((part) =>
        svgEl("path", {
          d: part.map((p, i) => `${i ? "L" : "M"}${x(p.t)} ${y(p.v.avg)}`).join(" "),
          class: split ? `line series-${n % 5}` : "line",
          ...(split ? { "data-location": series[n].label } : {}),
        }),
      ),
    ),
  );
  figure.replaceChildren(svg);
}

function drawLegend(series) {
  const legend = document.getElementById("chart-legend");
  if (!legend) return;
  legend.replaceChildren(
    ...series
      .filter((s) => s.label != null)
      .map((s, n) => el("span", { class: `series-${n % 5}`, "data-location": s.label }, `— ${s.label}`)),
  );
}

async function historyOf(path) {
  const body = await getJSON(`${path}/history?points=200`);
  const rows = body.results ?? body.points ?? body.buckets ?? [];
  const points = rows.map(point).filter((p) => typeof p.t === "number");
  points.sort((a, b) => a.t - b.t);
  return points;
}

/** The series the chart draws: the service's own, or with "one line per location"
 * ticked, each location check's (`name@location`) history. */
async function chartSeries(own) {
  const toggle = document.getElementById("split-locations");
  if (!toggle?.checked) return [{ label: null, points: own }];
  const locations = [...document.querySelectorAll("#locations tr[data-location]")].map((r) => r.dataset.location);
  return Promise.all(
    locations.map(async (loc) => ({
      label: loc,
      points: await historyOf(`/api/v1/services/${encodeURIComponent(`${name}@${loc}`)}`),
    })),
  );
}

function drawTimeline(points) {
  const svg = svgEl("svg", {
    viewBox: "0 0 600 20",
    role: "img",
    "aria-label": "status over the last results",
    preserveAspectRatio: "none",
  });
  if (points.length) {
    const t0 = points[0].t;
    const tspan = points[points.length - 1].t - t0 || 1;
    const x = (t) => Math.round((48 + ((t - t0) / tspan) * (600 - 48 - 8)) * 10) / 10;
    for (const run of statusRuns(points)) {
      const rect = svgEl("rect", {
        x: x(run.since),
        y: 0,
        width: Math.max(Math.round((x(run.until) - x(run.since)) * 10) / 10, 2),
        height: 20,
        class: `status-${run.status}`,
      });
      rect.append(svgEl("title", {}, `${run.status}: ${run.count} result(s) from ${absTime(run.since)}`));
      svg.append(rect);
    }
  }
  document.getElementById("timeline").replaceChildren(svg);
}

async function drawHistory() {
  chartTimer = null;
  chartDrawnAt = Date.now();
  try {
    const points = await historyOf(base);
    const series = await chartSeries(points);
    drawChart(series);
    drawLegend(series);
    drawTimeline(points);
    // How many times the browser redrew the chart: tests wait for the first.
    chartDraws += 1;
    document.getElementById("chart").dataset.draws = String(chartDraws);
  } catch (error) {
    console.warn("pymon: history not drawn:", error);
  }
}

function drawSoon() {
  if (chartTimer !== null) return;
  chartTimer = setTimeout(drawHistory, Math.max(0, chartDrawnAt + CHART_EVERY - Date.now()));
}

document.getElementById("split-locations")?.addEventListener("change", () => {
  clearTimeout(chartTimer);
  drawHistory();
});

startLive({
  async resync() {
    apply(await getJSON(base));
    drawSoon();
  },
  onState(s) {
    if (s.name !== name) return;
    apply(s);
    drawSoon();
  },
});
