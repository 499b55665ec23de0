"""Config: YAML in, a validated immutable Config out (``load.load_config``).

The models: ``schema.py`` (with ``durations.py``, ``ranges.py``, ``windows.py`` for
value syntax and maintenance windows; ``inheritance.py`` for how a service inherits).
The loader: ``load.py``, the entry point, and the steps it runs: ``reading.py`` and
``interpolation.py`` (text to plain data with lines), ``includes.py``, ``tree.py``
(where each key path was written), ``validation.py``, ``defaults.py``,
``crosscheck.py``, ``messages.py`` (the words of issues). ``watch.py`` asks for a
reload when the files change.
"""

from __future__ import annotations
