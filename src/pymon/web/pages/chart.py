"""The service page's chart and status timeline: their geometry, drawn from the
service's results downsampled as the history API does (``service.js`` redraws the
same from ``/history?points=``).

Both break where the downsampled points say ``gap`` (no result for too long, see
:mod:`pymon.web.downsample`): the line becomes one path per stretch of data and the
status bar one run per stretch, so a time pymon was not running shows as nothing.
The value axis has a title and round ticks from :mod:`pymon.web.pages.axis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymon.web.downsample import Sample, downsample
from pymon.web.pages.axis import axis_title, ticks

if TYPE_CHECKING:
    from pymon.store.base import ResultRecord

__all__ = ["chart"]

_CHART_POINTS = 200
# The drawing box (service.js's drawChart uses the same): the plot sits inside it,
# LEFT for the tick labels, TOP for the axis title, BOTTOM for the times.
_W, _H, _LEFT, _TOP, _BOTTOM, _RIGHT = 600.0, 160.0, 48.0, 20.0, 24.0, 8.0


def _metric_for_chart(points: Sequence[dict[str, Any]]) -> str | None:
    names = {m for p in points for m in p["metrics"]}
    for preferred in ("response_time_ms", "connect_ms"):
        if preferred in names:
            return preferred
    return next((m for p in reversed(points) for m in sorted(p["metrics"])), None)


def _status_runs(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive points of one status, a run ending early where the next point
    follows a gap: ``{status, since, until, count}``."""
    runs: list[dict[str, Any]] = []
    for p in points:
        last = runs[-1] if runs else None
        if last is not None and not p["gap"]:
            last["until"] = p["start"]  # no hole: the run lasts until this point
        if last is not None and last["status"] == p["status"] and not p["gap"]:
            last["count"] += p["count"]
        else:
            runs.append({"status": p["status"], "since": p["start"], "until": p["start"]})
            runs[-1]["count"] = p["count"]
    return runs


def chart(records: Sequence[ResultRecord], interval: float) -> dict[str, Any]:
    """Geometry of the history chart and the status timeline, drawn in a 600x160 box
    from the records downsampled as the history API does (``service.js`` redraws the
    same from ``/history?points=``); ``interval`` is the service's, for gaps."""
    samples = [Sample(r.started_at, r.status, dict(r.metrics)) for r in records]
    points = [b.to_json() for b in downsample(samples, _CHART_POINTS, interval=interval)]
    metric = _metric_for_chart(points)
    if not points:
        return {"metric": metric, "paths": [], "segments": [], "empty": True}
    t0: float = points[0]["start"]
    t1: float = points[-1]["start"]
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return round(_LEFT + (t - t0) / span * (_W - _LEFT - _RIGHT), 1)

    drawn = [p["metrics"][metric] for p in points if metric in p["metrics"]]
    # From 0 (or the lowest value below it) to the highest: service.js's band of
    # min..max must fit, so the scale takes them rather than the averages.
    scale = ticks(min([v["min"] for v in drawn] + [0.0]), max([v["max"] for v in drawn] + [0.0]))
    vmin, vmax = scale.values[0], scale.values[-1]
    vspan = (vmax - vmin) or 1.0

    def y(v: float) -> float:
        return round(_TOP + (1 - (v - vmin) / vspan) * (_H - _TOP - _BOTTOM), 1)

    paths: list[list[str]] = []
    joined = False
    for p in points:
        if metric not in p["metrics"] or p["gap"]:
            joined = False
        if metric not in p["metrics"]:
            continue
        if not joined:
            paths.append([])
        command = "L" if joined else "M"
        paths[-1].append(f"{command}{x(p['start'])} {y(p['metrics'][metric]['avg'])}")
        joined = True
    segments = _status_runs(points)
    for seg in segments:
        seg["x"] = x(seg["since"])
        seg["w"] = max(round(x(seg["until"]) - seg["x"], 1), 2.0)
    return {
        "metric": metric,
        "title": axis_title(metric) if metric else "",
        "paths": [" ".join(p) for p in paths],
        "ticks": [
            {"y": y(v), "label": text} for v, text in zip(scale.values, scale.labels(), strict=True)
        ],
        "segments": segments,
        "empty": not drawn,
        "vmax": vmax,
        "vmin": vmin,
        "t0": t0,
        "t1": t1,
    }
