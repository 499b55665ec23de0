// The service page: live state, actions through fetch (CSRF header), and the history
// chart and status timeline drawn as inline SVG from the history API.

import { FLAGS, csrf, el, formatNumber, getJSON, svgEl, timeEl, absTime } from "./common.js";
import { startLive } from "./live.js";

const article = document.getElementById("service");
const name = article.dataset.service;
const base = `/api/v1/services/${encodeURIComponent(name)}`;
const result = document.getElementById("action-result");
const CHART_EVERY = 5000;

let chartTimer = null;
let chartDrawnAt = 0;

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
  );
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

function drawChart(points) {
  const [W, H, LEFT, TOP, BOTTOM] = [600, 160, 48, 8, 24];
  const metric = chooseMetric(points);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", preserveAspectRatio: "none" });
  svg.setAttribute("aria-label", `${metric ?? "metric"} over the last results`);
  const values = points
    .map((p) => ({ t: p.t, v: metric ? valueOf(p.metrics[metric]) : null }))
    .filter((p) => p.v !== null);
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
  const vmax = Math.max(...values.map((p) => p.v.max));
  const vmin = Math.min(0, ...values.map((p) => p.v.min));
  const vspan = vmax - vmin || 1;
  const x = (t) => (LEFT + ((t - t0) / tspan) * (W - LEFT - 8)).toFixed(1);
  const y = (v) => (TOP + (1 - (v - vmin) / vspan) * (H - TOP - BOTTOM)).toFixed(1);
  const ranged = values.some((p) => p.v.max !== p.v.min);
  if (ranged) {
    const upper = values.map((p) => `${x(p.t)} ${y(p.v.max)}`);
    const lower = values.map((p) => `${x(p.t)} ${y(p.v.min)}`).reverse();
    svg.append(svgEl("path", { d: `M${upper.join(" L")} L${lower.join(" L")} Z`, class: "band" }));
  }
  svg.append(
    svgEl("line", { x1: LEFT, y1: H - BOTTOM, x2: W - 8, y2: H - BOTTOM, class: "axis-line" }),
    svgEl("text", { x: LEFT - 4, y: 14, "text-anchor": "end", class: "axis" }, formatNumber(vmax)),
    svgEl("text", { x: LEFT - 4, y: H - BOTTOM, "text-anchor": "end", class: "axis" }, formatNumber(vmin)),
    svgEl("text", { x: LEFT, y: H - 6, class: "axis" }, absTime(t0)),
    svgEl("text", { x: W - 8, y: H - 6, "text-anchor": "end", class: "axis" }, absTime(t1)),
    svgEl("path", { d: `M${values.map((p) => `${x(p.t)} ${y(p.v.avg)}`).join(" L")}`, class: "line" }),
  );
  figure.replaceChildren(svg);
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
    const x = (t) => 48 + ((t - t0) / tspan) * (600 - 48 - 8);
    const segments = [];
    for (const p of points) {
      const last = segments[segments.length - 1];
      if (last && last.status === p.status) last.count += 1;
      else segments.push({ status: p.status, since: p.t, count: 1 });
    }
    segments.forEach((seg, i) => {
      const end = i + 1 < segments.length ? segments[i + 1].since : points[points.length - 1].t;
      const rect = svgEl("rect", {
        x: x(seg.since).toFixed(1),
        y: 0,
        width: Math.max(x(end) - x(seg.since), 2).toFixed(1),
        height: 20,
        class: `status-${seg.status}`,
      });
      rect.append(svgEl("title", {}, `${seg.status}: ${seg.count} result(s) from ${absTime(seg.since)}`));
      svg.append(rect);
    });
  }
  document.getElementById("timeline").replaceChildren(svg);
}

async function drawHistory() {
  chartTimer = null;
  chartDrawnAt = Date.now();
  try {
    const body = await getJSON(`${base}/history?points=200`);
    const rows = body.results ?? body.points ?? body.buckets ?? [];
    const points = rows.map(point).filter((p) => typeof p.t === "number");
    points.sort((a, b) => a.t - b.t);
    drawChart(points);
    drawTimeline(points);
  } catch (error) {
    console.warn("pymon: history not drawn:", error);
  }
}

function drawSoon() {
  if (chartTimer !== null) return;
  chartTimer = setTimeout(drawHistory, Math.max(0, chartDrawnAt + CHART_EVERY - Date.now()));
}

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
