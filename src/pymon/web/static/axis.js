// The value axis of the service page's chart: a human title from a metric's name and
// round ticks (1, 2 or 5 x 10^n apart). The same rules as pymon/web/pages/axis.py,
// step for step, so the page the server renders and the one redrawn here agree; the
// tests hold both to one table.

const UNITS = {
  ms: "ms", s: "s", seconds: "s", pct: "%", percent: "%", bytes: "bytes",
  kb: "KB", mb: "MB", gb: "GB", days: "days", hours: "hours",
};
const WORDS = { rtt: "round-trip time", avg: "average", cert: "certificate", cpu: "CPU", rss: "RSS" };
const TITLE_MAX = 60;
const STEPS = 5;
const LIMIT = 1e15;

const own = (table, key) => (Object.hasOwn(table, key) ? table[key] : undefined);

/** [label, unit] of a metric: "response_time_ms" -> ["response time", "ms"]. */
export function metricLabel(name) {
  const words = name.replaceAll("_", " ").split(" ").filter((w) => w);
  let unit = "";
  const lastUnit = words.length > 1 ? own(UNITS, words[words.length - 1].toLowerCase()) : undefined;
  const leftUnit = words.length > 1 && words[words.length - 1].toLowerCase() === "left"
    ? own(UNITS, words[words.length - 2].toLowerCase())
    : undefined;
  if (lastUnit !== undefined) {
    unit = lastUnit;
    words.pop();
  } else if (leftUnit !== undefined) {
    unit = leftUnit;
  }
  return [words.map((w) => own(WORDS, w.toLowerCase()) ?? w).join(" "), unit];
}

/** What the value axis says: "response time (ms)", "certificate days left". */
export function axisTitle(name) {
  const [label, unit] = metricLabel(name);
  const title = unit && !label.split(" ").includes(unit) ? `${label} (${unit})` : label;
  return [...title].length <= TITLE_MAX ? title : `${[...title].slice(0, TITLE_MAX - 1).join("")}…`;
}

const clamp = (v) => (Number.isFinite(v) ? Math.min(Math.max(v, -LIMIT), LIMIT) : 0);

/** Round ticks covering low..high: {values, step, decimals, labels}. */
export function ticks(low, high) {
  low = clamp(low);
  high = clamp(high);
  if (high < low) [low, high] = [high, low];
  if (high - low < 1e-6) high = low + (Math.abs(low) >= 1e-6 ? Math.abs(low) : 1);
  const raw = (high - low) / STEPS;
  // Powers of ten by repeated * and / (not log10), as in Python: the same bits.
  let power = 1;
  let decimals = 0;
  while (power > raw) {
    power /= 10;
    decimals += 1;
  }
  while (power * 10 <= raw) {
    power *= 10;
    decimals -= 1;
  }
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  if (step === 10 * power) decimals -= 1;
  decimals = Math.max(decimals, 0);
  const first = Math.floor(low / step + 1e-9);
  const last = Math.ceil(high / step - 1e-9);
  const values = [];
  for (let k = first; k <= last; k += 1) values.push(Number((k * step).toFixed(decimals)) + 0);
  return { values, step, decimals, labels: values.map((v) => v.toFixed(decimals)) };
}
