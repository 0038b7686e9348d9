"""``./dev releases``: the recent deployments, read from the ledger.

The deploy handler writes one ``release`` row per deploy (commit, image digest, state); the
recorder writes the execution's state changes. A release's duration is from the first row of its
execution (the pipeline's STARTED) to the release itself. One Query on the ``by-kind`` index gives
the newest releases, one Query per release its execution's start: never a Scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from shared import ledger


@dataclass(frozen=True)
class Release:
    """One deployment as the ledger holds it."""

    time: str
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


def recent(session: Any, table_name: str, limit: int = 10) -> list[Release]:
    """The newest ``limit`` releases, newest first."""
    table = session.resource("dynamodb").Table(table_name)
    items = table.query(
        IndexName=ledger.KIND_INDEX,
        KeyConditionExpression=Key(ledger.KIND_KEY).eq("release"),
        ScanIndexForward=False,
        Limit=limit,
    )["Items"]
    return [_release(table, item) for item in items]


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


def table(releases: list[Release]) -> str:
    """One line per release: time (UTC), commit, image digest, state, duration."""
    if not releases:
        return "no releases recorded yet"
    lines = [f"{'time (UTC)':<19}  {'commit':<12}  {'image digest':<19}  {'state':<9}  took"]
    for r in releases:
        short = r.image_digest.removeprefix("sha256:")[:12]
        digest = f"sha256:{short}" if short else "-"
        lines.append(
            f"{r.time:<19}  {r.commit[:12] or '-':<12}  {digest:<19}"
            f"  {r.state:<9}  {duration(r.duration_seconds)}"
        )
    return "\n".join(lines)
