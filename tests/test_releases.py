"""``invoke releases``: the recent deployments, read from a ledger in moto."""

from __future__ import annotations

import pytest

from tests.handler_support import REGION, TABLE, create_ledger
from tests.moto_support import fresh_account, moto_for_the_module
from toolbox.releases import recent, table

moto_session = moto_for_the_module(REGION)


@pytest.fixture
def ledger(moto_session, monkeypatch):
    """A ledger table in an empty moto account of this test's own."""
    fresh_account(monkeypatch)
    return moto_session, create_ledger(moto_session)


def _put(table_, execution, time, kind, state, **extra):
    table_.put_item(
        Item={"executionId": execution, "time": time, "kind": kind, "state": state, **extra}
    )


def _two_deploys(table_):
    # What the recorder and the deploy handler write for two executions.
    _put(table_, "exec-1", "2024-06-01T12:00:00Z#e1", "pipeline", "STARTED", commit="a" * 40)
    _put(table_, "exec-1", "2024-06-01T12:03:00Z#e2", "stage", "STARTED", stage="Deploy")
    _put(
        table_,
        "exec-1",
        "2024-06-01T12:12:05.250Z#release",
        "release",
        "SUCCEEDED",
        commit="a" * 40,
        imageDigest="sha256:" + "1" * 64,
    )
    _put(table_, "exec-2", "2024-06-02T09:00:00Z#e3", "pipeline", "STARTED", commit="b" * 40)
    _put(
        table_,
        "exec-2",
        "2024-06-02T09:08:30.000Z#release",
        "release",
        "FAILED",
        commit="b" * 40,
        imageDigest="",
    )


def test_recent_releases_come_newest_first_with_how_long_each_took(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    newest, older = recent(session, TABLE, limit=10)
    assert (newest.execution_id, newest.state, newest.commit) == ("exec-2", "FAILED", "b" * 40)
    assert newest.duration_seconds == 510
    assert (older.execution_id, older.state, older.image_digest) == (
        "exec-1",
        "SUCCEEDED",
        "sha256:" + "1" * 64,
    )
    assert older.duration_seconds == 725
    assert older.time == "2024-06-01 12:12:05"


def test_limit_keeps_only_the_newest(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    (only,) = recent(session, TABLE, limit=1)
    assert only.execution_id == "exec-2"


def test_the_table_prints_time_commit_digest_state_and_duration(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    lines = table(recent(session, TABLE)).splitlines()
    assert lines[0].split() == ["time", "(UTC)", "commit", "image", "digest", "state", "took"]
    assert lines[1].split() == ["2024-06-02", "09:08:30", "b" * 12, "-", "FAILED", "8m30s"]
    assert lines[2].split() == [
        "2024-06-01",
        "12:12:05",
        "a" * 12,
        "sha256:" + "1" * 12,
        "SUCCEEDED",
        "12m05s",
    ]


def test_an_empty_ledger_says_so(ledger):
    session, _ = ledger
    assert table(recent(session, TABLE)) == "no releases recorded yet"


def test_a_release_without_its_start_has_no_duration(ledger):
    session, table_ = ledger
    _put(table_, "exec-9", "2024-06-03T10:00:00.000Z#release", "release", "SUCCEEDED")
    (release,) = recent(session, TABLE)
    assert release.duration_seconds is None
    assert table([release]).splitlines()[1].split()[-1] == "-"
