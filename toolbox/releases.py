"""``./dev releases``: the recent deployments of every service, or of one, read from the ledger.

Each service's deploy handler writes one ``release`` row per deploy (service, commit, image
digest, state); the recorder writes the execution's state changes. A release's duration is from
the first row of its execution (the pipeline's STARTED) to the release itself. One Query on the
``by-kind`` index gives the newest releases, one Query per release its execution's start: never
a Scan. One service's releases are the same Query filtered on ``service``, page by page until
there are enough (``shared/ledger.py`` says why a filter and not an index, and what it costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from shared import ledger
from shared.errors import PlatformError

PAGE_SIZE = 100
"""Releases read per Query when one service's are wanted: the filter drops the other services'
after they are read (and billed), so a page reads this many whatever the limit."""


@dataclass(frozen=True)
class Release:
    """One deployment as the ledger holds it."""

    time: str
    service: str
    """'' for a release recorded before the ledger named services."""
    execution_id: str
    commit: str
    image_digest: str
    state: str
    duration_seconds: int | None
    """From the execution's first recorded event to the release; None if that is missing."""


def parse_time(sort_key: str) -> datetime:
    """The time at the start of a ledger sort key (``2024-06-01T12:00:00[.123]Z#...``)."""
    stamp = sort_key.split("#", 1)[0].removesuffix("Z")
    layout = "%Y-%m-%dT%H:%M:%S.%f" if "." in stamp else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(stamp, layout).replace(tzinfo=UTC)


def check_service(service: str, services: tuple[str, ...]) -> None:
    """PlatformError unless ``service`` is one of ``services`` (platform.yaml's, in order)."""
    if service not in services:
        raise PlatformError(
            f"--service {service!r} is not a service of platform.yaml"
            f" (its services: {', '.join(services)})"
        )


def recent(
    session: Any,
    table_name: str,
    limit: int = 10,
    *,
    service: str = "",
    page_size: int = PAGE_SIZE,
) -> list[Release]:
    """The newest ``limit`` releases, newest first: of every service, or of ``service`` only."""
    table = session.resource("dynamodb").Table(table_name)
    query: dict[str, Any] = {
        "IndexName": ledger.KIND_INDEX,
        "KeyConditionExpression": Key(ledger.KIND_KEY).eq("release"),
        "ScanIndexForward": False,
    }
    if not service:
        items = table.query(**query, Limit=limit)["Items"]
        return [_release(table, item) for item in items]
    # Limit counts the items read, not those the filter keeps: page until there are enough.
    query |= {"FilterExpression": Attr(ledger.SERVICE_KEY).eq(service), "Limit": page_size}
    items: list[dict[str, Any]] = []
    while len(items) < limit:
        page = table.query(**query)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [_release(table, item) for item in items[:limit]]


def _release(table: Any, item: dict[str, Any]) -> Release:
    execution = item[ledger.PARTITION_KEY]
    first = table.query(
        KeyConditionExpression=Key(ledger.PARTITION_KEY).eq(execution),
        ScanIndexForward=True,
        Limit=1,
    )["Items"]
    released = parse_time(item[ledger.SORT_KEY])
    duration = None
    if first and first[0][ledger.SORT_KEY] != item[ledger.SORT_KEY]:
        duration = int((released - parse_time(first[0][ledger.SORT_KEY])).total_seconds())
    return Release(
        time=released.strftime("%Y-%m-%d %H:%M:%S"),
        service=str(item.get(ledger.SERVICE_KEY, "")),
        execution_id=execution,
        commit=str(item.get("commit", "")),
        image_digest=str(item.get("imageDigest", "")),
        state=str(item.get("state", "")),
        duration_seconds=duration,
    )


def duration(seconds: int | None) -> str:
    """``12m05s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest:02d}s"


def table(releases: list[Release], service: str = "") -> str:
    """One line per release: time (UTC), service, commit, image digest, state, duration.

    ``service``: the one service listed, named when it has no release yet.
    """
    if not releases:
        whose = f" for {service}" if service else ""
        return f"no releases recorded yet{whose}"
    width = max(len("service"), *(len(r.service) for r in releases))
    lines = [
        f"{'time (UTC)':<19}  {'service':<{width}}  {'commit':<12}  {'image digest':<19}"
        f"  {'state':<9}  took"
    ]
    for r in releases:
        short = r.image_digest.removeprefix("sha256:")[:12]
        digest = f"sha256:{short}" if short else "-"
        lines.append(
            f"{r.time:<19}  {r.service or '-':<{width}}  {r.commit[:12] or '-':<12}"
            f"  {digest:<19}  {r.state:<9}  {duration(r.duration_seconds)}"
        )
    return "\n".join(lines)
