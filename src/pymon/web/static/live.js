// Live updates: Server-Sent Events from {prefix}/api/v1/stream, with resync on every
// (re)connect and polling at the user's interval (localStorage "pymon.refresh") while
// the stream is down. Shows the state in #live.

import { eventRow, fetchAllServices, prefix, refreshTimes } from "./common.js";

const STORAGE_KEY = "pymon.refresh";
const DEFAULT_INTERVAL = 20;
const MAX_EVENT_ROWS = 200;

let started = false;

export function refreshInterval() {
  let stored = null;
  try {
    stored = Number(localStorage.getItem(STORAGE_KEY));
  } catch {
    stored = null;
  }
  return stored >= 1 && stored <= 3600 ? Math.round(stored) : DEFAULT_INTERVAL;
}

function showState(state, text) {
  const node = document.getElementById("live");
  if (!node) return;
  node.dataset.state = state;
  node.textContent = text;
}

/** Set every [data-count="status"] element to the number in `counts`. */
export function applyCounts(counts) {
  for (const node of document.querySelectorAll("[data-count]")) {
    const n = counts[node.dataset.count];
    if (n != null && node.textContent !== String(n)) node.textContent = String(n);
  }
}

function prependEvent(e) {
  for (const body of document.querySelectorAll("tbody[data-live-events]")) {
    if (body.dataset.service != null && body.dataset.service !== e.service) continue;
    body.querySelector("tr.empty")?.remove();
    body.prepend(eventRow(e));
    while (body.rows.length > MAX_EVENT_ROWS) body.lastElementChild.remove();
  }
}

/**
 * Start live updates once per page. `handlers`:
 * - resync(): refetch what the page shows (awaited); called on every (re)connect and poll;
 * - onState(service): a changed service (the API's service JSON);
 * - onCounts(counts), onEvent(event): optional, after the built-in handling.
 */
export function startLive(handlers = {}) {
  if (started) return;
  started = true;
  let source = null;
  let pollTimer = null;
  let reconnectTimer = null;
  let backoff = 2000;
  let resyncing = false;
  let again = false;
  let buffered = [];

  async function resync() {
    if (!handlers.resync) return;
    if (resyncing) {
      again = true;
      return;
    }
    resyncing = true;
    buffered = [];
    try {
      await handlers.resync();
    } catch (error) {
      console.warn("pymon: resync failed:", error);
    } finally {
      resyncing = false;
      const queued = buffered;
      buffered = [];
      for (const service of queued) handlers.onState?.(service);
    }
    if (again) {
      again = false;
      await resync();
    }
  }

  let seconds = refreshInterval();

  function startPolling() {
    clearInterval(pollTimer);
    showState("polling", `polling every ${seconds}s`);
    pollTimer = setInterval(resync, seconds * 1000);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function onStateEvent(message) {
    const service = JSON.parse(message.data);
    if (resyncing) buffered.push(service);
    else handlers.onState?.(service);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (typeof EventSource === "undefined") {
      startPolling();
      resync();
      return;
    }
    showState("connecting", "connecting");
    source = new EventSource(`${prefix}/api/v1/stream`);
    let opened = false;
    source.addEventListener("open", () => {
      opened = true;
      backoff = 2000;
      stopPolling();
      showState("live", "live");
      resync();
    });
    source.addEventListener("error", () => {
      if (opened || pollTimer === null) {
        opened = false;
        startPolling();
        resync();
      }
      if (source.readyState === EventSource.CLOSED) {
        // Refused outright (not an event stream, auth): the browser will not retry.
        source.close();
        reconnectTimer = setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 60000);
      }
    });
    source.addEventListener("state", onStateEvent);
    source.addEventListener("counts", (message) => {
      const counts = JSON.parse(message.data);
      applyCounts(counts);
      handlers.onCounts?.(counts);
    });
    source.addEventListener("event", (message) => {
      const event = JSON.parse(message.data);
      prependEvent(event);
      handlers.onEvent?.(event);
    });
  }

  const input = document.getElementById("refresh-interval");
  if (input) {
    input.value = String(seconds);
    input.addEventListener("change", () => {
      const wanted = Math.round(Number(input.value));
      if (!(wanted >= 1 && wanted <= 3600)) {
        input.value = String(seconds);
        return;
      }
      seconds = wanted;
      try {
        localStorage.setItem(STORAGE_KEY, String(seconds));
      } catch {
        // Storage off (private mode): the interval holds for this page only.
      }
      if (pollTimer !== null) {
        clearInterval(pollTimer);
        showState("polling", `polling every ${seconds}s`);
        pollTimer = setInterval(resync, seconds * 1000);
      }
    });
  }
  setInterval(() => refreshTimes(), 15000);
  window.addEventListener("pagehide", () => source?.close());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) connect();
  });
  connect();
}

/**
 * Live updates for a page that shows every service: `services` (a Map, name → the
 * API's service JSON, or only its `fields` when given) is refilled from the API on
 * every resync, then `loaded()` runs; each state event updates it (the whole JSON),
 * then `changed()` runs once the first fill is in.
 */
export function startLiveServices(services, { fields = null, loaded, changed }) {
  let filled = false;
  startLive({
    async resync() {
      const all = await fetchAllServices(fields);
      services.clear();
      for (const s of all) services.set(s.name, s);
      filled = true;
      loaded();
    },
    onState(s) {
      services.set(s.name, s);
      if (filled) changed();
    },
  });
}
