"""The deployment ledger's schema: one definition for the table, the handlers' tests and the tools.

The table (foundation layer) is keyed by ``executionId`` (the pipeline execution id; a build's id
for builds that run outside the pipeline) and ``time`` (the event's ISO-8601 UTC time, then ``#``
and what makes the row unique, so two events in the same second never overwrite each other and
rows still sort by time). The ``by-kind`` index on (``kind``, ``time``) lists the newest releases
with one Query. The Lambda handlers are single files packaged alone, so they spell the same names
as literals; a test holds them to this module.
"""

from __future__ import annotations

PARTITION_KEY = "executionId"
SORT_KEY = "time"
KIND_KEY = "kind"
KIND_INDEX = "by-kind"

KINDS = ("pipeline", "stage", "build", "release")
"""What a row records: a pipeline execution's, a stage's or a build's state change, or a release
(the deploy handler's verdict on one deployed image)."""
