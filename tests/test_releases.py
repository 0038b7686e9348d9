"""``invoke releases``: the recent deployments, read from a ledger in moto."""

from __future__ import annotations

import pytest

from shared.errors import PlatformError
from tests.handler_support import REGION, TABLE, Calls, create_ledger
from tests.moto_support import fresh_account, moto_for_the_module
from toolbox.releases import check_service, recent, table

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
    # What the recorder and the deploy handlers write for two executions of two services.
    _put(
        table_,
        "exec-1",
        "2024-06-01T12:00:00Z#e1",
        "pipeline",
        "STARTED",
        commit="a" * 40,
        service="app",
    )
    _put(
        table_,
        "exec-1",
        "2024-06-01T12:03:00Z#e2",
        "stage",
        "STARTED",
        stage="Deploy",
        service="app",
    )
    _put(
        table_,
        "exec-1",
        "2024-06-01T12:12:05.250Z#release",
        "release",
        "SUCCEEDED",
        commit="a" * 40,
        imageDigest="sha256:" + "1" * 64,
        service="app",
    )
    _put(
        table_,
        "exec-2",
        "2024-06-02T09:00:00Z#e3",
        "pipeline",
        "STARTED",
        commit="b" * 40,
        service="worker",
    )
    _put(
        table_,
        "exec-2",
        "2024-06-02T09:08:30.000Z#release",
        "release",
        "FAILED",
        commit="b" * 40,
        imageDigest="",
        service="worker",
    )


def test_recent_releases_come_newest_first_with_how_long_each_took(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    newest, older = recent(session, TABLE, limit=10)
    assert (newest.execution_id, newest.service, newest.state, newest.commit) == (
        "exec-2",
        "worker",
        "FAILED",
        "b" * 40,
    )
    assert newest.duration_seconds == 510
    assert (older.execution_id, older.service, older.state, older.image_digest) == (
        "exec-1",
        "app",
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


def test_the_table_prints_time_service_commit_digest_state_and_duration(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    lines = table(recent(session, TABLE)).splitlines()
    assert lines[0].split() == [
        "time",
        "(UTC)",
        "service",
        "commit",
        "image",
        "digest",
        "state",
        "took",
    ]
    assert lines[1].split() == [
        "2024-06-02",
        "09:08:30",
        "worker",
        "b" * 12,
        "-",
        "FAILED",
        "8m30s",
    ]
    assert lines[2].split() == [
        "2024-06-01",
        "12:12:05",
        "app",
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


def test_a_release_recorded_before_services_shows_no_service(ledger):
    session, table_ = ledger
    _put(
        table_,
        "exec-9",
        "2024-06-03T10:00:00.000Z#release",
        "release",
        "SUCCEEDED",
        commit="c" * 40,
    )
    (release,) = recent(session, TABLE)
    assert release.service == ""
    assert table([release]).splitlines()[1].split()[2:4] == ["-", "c" * 12]


def test_one_services_releases_are_its_own_only(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    (worker,) = recent(session, TABLE, service="worker")
    assert (worker.execution_id, worker.service, worker.duration_seconds) == (
        "exec-2",
        "worker",
        510,
    )
    (app,) = recent(session, TABLE, service="app")
    assert (app.execution_id, app.service) == ("exec-1", "app")


def _deploys(table_, service, count, day):
    for n in range(count):
        _put(
            table_,
            f"{service}-{n}",
            f"2024-06-{day:02d}T10:{n:02d}:00.000Z#release",
            "release",
            "SUCCEEDED",
            service=service,
        )


class Counted:
    """The session, counting the Queries its ledger table is asked."""

    def __init__(self, session):
        self.session = session
        self.queries = []

    def resource(self, name):
        table_ = self.session.resource(name).Table(TABLE)

        def query(**kwargs):
            self.queries.append(kwargs)
            return table_.query(**kwargs)

        return Calls(self.session.resource(name), Table=lambda _: Calls(table_, query=query))


def test_one_services_releases_are_found_past_the_other_services_pages(ledger):
    session, table_ = ledger
    _deploys(table_, "app", 3, day=1)  # the oldest
    _deploys(table_, "worker", 7, day=2)  # newer: the first pages are all the worker's
    found = recent(session, TABLE, limit=2, service="app", page_size=3)
    assert [r.execution_id for r in found] == ["app-2", "app-1"]
    assert [r.execution_id for r in recent(session, TABLE, service="app", page_size=3)] == [
        "app-2",
        "app-1",
        "app-0",
    ]


def test_paging_stops_once_there_are_enough_releases(ledger):
    session, table_ = ledger
    _deploys(table_, "app", 3, day=1)
    _deploys(table_, "worker", 4, day=2)
    counted = Counted(session)
    (newest,) = recent(counted, TABLE, limit=1, service="worker", page_size=2)
    assert newest.execution_id == "worker-3"
    assert sum(1 for q in counted.queries if q.get("IndexName") == "by-kind") == 1


def test_a_service_without_releases_says_so_by_name(ledger):
    session, table_ = ledger
    _two_deploys(table_)
    found = recent(session, TABLE, service="billing")
    assert table(found, "billing") == "no releases recorded yet for billing"


def test_an_unknown_service_is_one_line_naming_platform_yamls_services():
    check_service("worker", ("app", "worker"))
    with pytest.raises(PlatformError) as refused:
        check_service("billing", ("app", "worker"))
    assert str(refused.value) == (
        "--service 'billing' is not a service of platform.yaml (its services: app, worker)"
    )
