"""``pymon bench --peers``: the point's workload through the peer tools, after pymon.

Modules: ``lineup`` (the peers in turn, the target they share), ``nagios`` and
``blackbox`` (one peer each), ``nginx`` (the shared http and tcp target), ``child``
(a peer's process), ``window`` (the window a peer is measured over) and ``figures``
(a row per tool, the ratios, the skips). benchmarks/README.md says what each measures.
"""
