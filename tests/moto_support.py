"""moto for a test module: one ``mock_aws`` and one set of clients, a fresh account per test.

Entering ``mock_aws`` (~15 ms, it re-registers every backend URL) and making boto3 clients
(~20 ms each) per test cost more than most of the tests. Neither holds an account's state:
moto keeps each account's resources apart and reads the account of every request from
``MOTO_ACCOUNT_ID`` (moto/core/responses.py, ``get_current_account``), and it intercepts every
client through a botocore ``before-send`` handler registered when moto is imported
(moto/core/models.py, ``BUILTIN_HANDLERS``), whenever the client was made. So a module keeps
one of each, and a test that needs an empty account takes one of its own (``fresh_account``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from tests.handler_support import fake_credentials


class OneClientEach:
    """A boto3 Session that keeps one client (and resource) per service and region.

    As a script would: everything else (credentials, region) is the session's own.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._made: dict[tuple[str, str, str], Any] = {}

    def client(self, service: str, region_name: str | None = None) -> Any:
        return self._one("client", service, region_name)

    def resource(self, service: str, region_name: str | None = None) -> Any:
        return self._one("resource", service, region_name)

    def _one(self, kind: str, service: str, region_name: str | None) -> Any:
        key = (kind, service, region_name or self._session.region_name)
        if key not in self._made:
            self._made[key] = getattr(self._session, kind)(service, region_name=key[2])
        return self._made[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def moto_for_the_module(region: str):
    """A module fixture: fake credentials and ``region`` set, ``mock_aws`` entered once, and a
    session keeping one client per service. Use ``fresh_account`` for state of a test's own."""

    @pytest.fixture(scope="module")
    def moto_session(aws_session) -> Iterator[OneClientEach]:
        with pytest.MonkeyPatch.context() as patch:
            fake_credentials(patch, region)
            with mock_aws():
                yield OneClientEach(aws_session(region))

    return moto_session


_accounts = itertools.count(100000000001)


def fresh_account(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every moto request of this test at an account no other test used; its id."""
    account = f"{next(_accounts):012d}"
    monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
    return account
