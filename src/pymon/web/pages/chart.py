"""The service page's chart and status timeline: their geometry, drawn from the
service's results downsampled as the history API does (``service.js`` redraws the
same from ``/history?points=``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymon.web.downsample import Sample, downsample

if TYPE_CHECKING:
    from pymon.store.base import ResultRecord

__all__ = ["chart"]

_CHART_POINTS = 200


def _metric_for_chart(points: Sequence[dict[str, Any]]) -> str | None:
    names = {m for p in points for m in p["metrics"]}
    for preferred in ("response_time_ms", "connect_ms"):
        if preferred in names:
            return preferred
    return next((m for p in reversed(points) for m in sorted(p["metrics"])), None)


def chart(records: Sequence[ResultRecord]) -> dict[str, Any]:
    """Geometry of the history chart and the status timeline, drawn in a 600x160 box
    from the records downsampled as the history API does (``service.js`` redraws the
    same from ``/history?points=``)."""
    width, height, left, top, bottom = 600.0, 160.0, 48.0, 8.0, 24.0
    samples = [Sample(r.started_at, r.status, dict(r.metrics)) for r in records]
    points = [b.to_json() for b in downsample(samples, _CHART_POINTS)]
    metric = _metric_for_chart(points)
    if not points:
        return {"metric": metric, "path": "", "segments": [], "empty": True}
    t0: float = points[0]["start"]
    t1: float = points[-1]["start"]
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return round(left + (t - t0) / span * (width - left - 8), 1)

    values = [p["metrics"][metric]["avg"] for p in points if metric in p["metrics"]]
    vmax = max(values, default=0.0)
    vmin = min(min(values, default=0.0), 0.0)
    vspan = (vmax - vmin) or 1.0
    path: list[str] = []
    joined = False
    for p in points:
        if metric not in p["metrics"]:
            joined = False
            continue
        y = round(
            top + (1 - (p["metrics"][metric]["avg"] - vmin) / vspan) * (height - top - bottom), 1
        )
        path.append(f"{'L' if joined else 'M'}{x(p['start'])} {y}")
        joined = True
    segments: list[dict[str, Any]] = []
    for p in points:
        if segments and segments[-1]["status"] == p["status"]:
            segments[-1]["count"] += p["count"]
        else:
            segments.append({"status": p["status"], "since": p["start"], "count": p["count"]})
    for i, seg in enumerate(segments):
        end = segments[i + 1]["since"] if i + 1 < len(segments) else t1
        seg["x"] = x(seg["since"])
        seg["w"] = max(round(x(end) - seg["x"], 1), 2.0)
    return {
        "metric": metric,
        "path": " ".join(path),
        "segments": segments,
        "empty": not values,
        "vmax": vmax,
        "vmin": vmin,
        "t0": t0,
        "t1": t1,
    }
