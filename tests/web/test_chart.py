"""The service page's chart geometry (``pages/chart.py``): the line and the status
bar break at a hole in the history, the value axis is titled and has round ticks."""

from __future__ import annotations

from typing import Any

from pymon.model import Status
from pymon.store.base import ResultRecord
from pymon.web.pages.chart import chart

INTERVAL = 60.0
HOLE = 50 * 60  # pymon stopped for 50 minutes
T0 = 1_780_000_000.0  # a fixed instant: nothing here reads the clock


def record(seq: int, at: float, status: Status = Status.OK, ms: float = 20.0) -> ResultRecord:
    return ResultRecord("web", seq, status, "", {"response_time_ms": ms}, at, 0.01, 0.0)


def history(
    before: int, after: int, hole: float = HOLE, status: Status = Status.OK
) -> list[ResultRecord]:
    """``before`` results a minute apart, ``hole`` seconds of nothing, ``after`` more."""
    times = [T0 + i * INTERVAL for i in range(before)]
    times += [times[-1] + hole + i * INTERVAL for i in range(after)]
    return [record(seq, at, status, 20.0 + seq % 7) for seq, at in enumerate(times, 1)]


def path_xs(d: str) -> list[float]:
    return [float(part[1:].split(" ")[0]) for part in d.split(" ") if part[:1] in "ML"]


def test_a_50_minute_hole_gives_two_lines_and_two_status_runs() -> None:
    drawn = chart(history(30, 30), INTERVAL)
    assert len(drawn["paths"]) == 2
    assert [d.count("M") for d in drawn["paths"]] == [1, 1]
    assert [d.count("L") for d in drawn["paths"]] == [29, 29]
    runs: list[dict[str, Any]] = drawn["segments"]
    assert [(r["status"], r["count"]) for r in runs] == [("ok", 30), ("ok", 30)]
    # Nothing is drawn across the hole: the first run and line end where the second begin.
    before_end, after_start = max(path_xs(drawn["paths"][0])), min(path_xs(drawn["paths"][1]))
    assert runs[0]["x"] + runs[0]["w"] <= before_end + 0.1
    assert runs[1]["x"] >= after_start - 0.1
    assert after_start - before_end > 200  # 50 of the 109 minutes shown: about half the width


def test_a_history_without_a_hole_is_one_line_and_one_run() -> None:
    drawn = chart(history(30, 30, hole=INTERVAL), INTERVAL)
    assert len(drawn["paths"]) == 1
    assert [(r["status"], r["count"]) for r in drawn["segments"]] == [("ok", 60)]


def test_a_late_check_is_no_hole() -> None:
    drawn = chart(history(30, 30, hole=2 * INTERVAL), INTERVAL)
    assert len(drawn["paths"]) == 1


def test_status_runs_split_at_a_change_and_at_a_hole() -> None:
    records = history(10, 0)
    records += [
        record(11 + i, records[-1].started_at + (i + 1) * INTERVAL, Status.FAILED) for i in range(5)
    ]
    records += [
        record(16 + i, records[-1].started_at + HOLE + i * INTERVAL, Status.FAILED)
        for i in range(5)
    ]
    runs = chart(records, INTERVAL)["segments"]
    assert [(r["status"], r["count"]) for r in runs] == [("ok", 10), ("failed", 5), ("failed", 5)]
    # A change with no hole: the ok run lasts until the failed one begins.
    assert runs[0]["x"] + runs[0]["w"] == runs[1]["x"]


def test_the_axis_is_titled_with_round_ticks() -> None:
    drawn = chart(history(3, 3), INTERVAL)  # response times 21 to 26 ms
    assert drawn["title"] == "response time (ms)"
    assert [t["label"] for t in drawn["ticks"]] == ["0", "10", "20", "30"]
    ys = [t["y"] for t in drawn["ticks"]]
    assert ys[0] == 136.0 and ys[-1] == 20.0  # the plot's bottom and top
    assert drawn["vmin"] == 0 and drawn["vmax"] == 30


def test_no_results_draw_nothing() -> None:
    assert chart([], INTERVAL)["empty"] is True
