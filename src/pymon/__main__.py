"""Allow ``python -m pymon``."""

from __future__ import annotations

from pymon.cli import main

if __name__ == "__main__":
    main()
