"""The sweep's host resync: every converged instance exactly once per RESYNC_MINUTES, spread by uid."""
import uuid

from chalicelib import config
from chalicelib.worker.sweep import resync_due


def instance(phase):
    return {"metadata": {"uid": str(uuid.uuid4())}, "status": {"phase": phase}}


def test_each_converged_instance_is_due_once_per_period(monkeypatch):
    monkeypatch.setattr(config, "RESYNC_MINUTES", 10)
    instances = [instance("Ready") for _ in range(200)] + [instance("Sleeping") for _ in range(20)]
    start = 1_800_000_000 - 1_800_000_000 % 600
    due_per_minute = [[i for i, obj in enumerate(instances) if resync_due(obj, start + 60 * m + 5)] for m in range(10)]
    assert sorted(i for minute in due_per_minute for i in minute) == list(range(len(instances)))
    assert max(len(minute) for minute in due_per_minute) < len(instances) / 3  # spread, not all at once


def test_pending_failed_and_disabled_are_not_resynced(monkeypatch):
    monkeypatch.setattr(config, "RESYNC_MINUTES", 1)
    assert not resync_due(instance("Pending"), 1_800_000_000)
    assert not resync_due(instance("Failed"), 1_800_000_000)
    assert resync_due(instance("Ready"), 1_800_000_000)
    monkeypatch.setattr(config, "RESYNC_MINUTES", 0)
    assert not resync_due(instance("Ready"), 1_800_000_000)
