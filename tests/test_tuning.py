"""Process-wide settings: the collector's thresholds and the choice of event loop."""

from __future__ import annotations

import asyncio
import gc
import sys
import types

import pytest

from pymon.tuning import FREEZE_FROM, GC_THRESHOLD, freeze_heap, loop_factory, paused_gc, relaxed_gc


def test_relaxed_gc_sets_the_thresholds_and_restores_them() -> None:
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold() == GC_THRESHOLD
    assert gc.get_threshold() == before


def test_relaxed_gc_restores_the_thresholds_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), relaxed_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_paused_gc_pauses_and_leaves_an_off_collector_off() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_heap_is_frozen_only_for_a_large_daemon() -> None:
    before = gc.get_freeze_count()
    freeze_heap(FREEZE_FROM - 1)
    assert gc.get_freeze_count() == before
    try:
        freeze_heap(FREEZE_FROM)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_asyncio_loop_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import uvloop`` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert loop_factory() == (None, "asyncio")


def test_uvloop_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("uvloop")
    fake.new_event_loop = asyncio.new_event_loop  # type: ignore[attr-defined]
    fake.__version__ = "9.9"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    factory, name = loop_factory()
    assert factory is asyncio.new_event_loop
    assert name == "uvloop 9.9"
