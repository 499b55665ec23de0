"""One table for the chart's value axis, held against both implementations: the
Python one (``tests/web/test_axis.py``) and ``static/axis.js`` in a real browser
(``tests/web/browser/test_chart.py``)."""

from __future__ import annotations

# metric name -> what the axis says
TITLES: list[tuple[str, str]] = [
    ("response_time_ms", "response time (ms)"),
    ("connect_ms", "connect (ms)"),
    ("handshake_ms", "handshake (ms)"),
    ("rtt_avg_ms", "round-trip time average (ms)"),
    ("rtt_max_ms", "round-trip time max (ms)"),
    ("loss_pct", "loss (%)"),
    ("cpu_pct", "CPU (%)"),
    ("age_s", "age (s)"),
    ("rss_mb", "RSS (MB)"),
    ("body_bytes", "body (bytes)"),
    ("cert_days_left", "certificate days left"),
    ("days_left", "days left"),
    ("status_code", "status code"),
    ("entries", "entries"),
    ("ms", "ms"),  # a unit alone is the label, not a unit of nothing
    ("disk c", "disk c"),  # a plugin's metric, named by the plugin
    ("Load_1", "Load 1"),
    ("constructor", "constructor"),  # no lookup may reach JavaScript's Object prototype
    ("x_" * 40 + "ms", ("x " * 30)[:59] + "…"),  # long names are cut to 60 characters
]

# (low, high) -> the tick labels from low end to high end
TICKS: list[tuple[float, float, list[str]]] = [
    (0, 26.421, ["0", "10", "20", "30"]),
    (0, 100, ["0", "20", "40", "60", "80", "100"]),
    (0, 1, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
    (0, 0, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),  # nothing measured but zeros
    (0, 0.3, ["0.0", "0.1", "0.2", "0.3"]),
    (0, 0.0042, ["0.000", "0.001", "0.002", "0.003", "0.004", "0.005"]),
    (0, 12345, ["0", "5000", "10000", "15000"]),
    (0, 7, ["0", "2", "4", "6", "8"]),
    (-3.5, 90, ["-20", "0", "20", "40", "60", "80", "100"]),
    (-7, -7, ["-8", "-6", "-4", "-2", "0"]),
    (5, 5, ["5", "6", "7", "8", "9", "10"]),
    (
        0,
        1e300,
        [
            "0",
            "200000000000000",
            "400000000000000",
            "600000000000000",
            "800000000000000",
            "1000000000000000",
        ],
    ),
]
