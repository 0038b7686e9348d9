"""The deployment ledger's schema: one definition for the table, the handlers' tests and the tools.

The table (foundation layer) is keyed by ``executionId`` (the pipeline execution id; a build's id
for builds that run outside the pipeline) and ``time`` (the event's ISO-8601 UTC time, then ``#``
and what makes the row unique, so two events in the same second never overwrite each other and
rows still sort by time). The ``by-kind`` index on (``kind``, ``time``) lists the newest releases
with one Query. The Lambda handlers are single files packaged alone, so they spell the same names
as literals; a test holds them to this module.

Every service's pipeline writes to this one ledger; ``service`` (:data:`SERVICE_KEY`) says whose
row it is. One service's releases are the ``by-kind`` Query for releases with a FilterExpression
on ``service``, not an index of their own: an index would change the foundation's table (a new
attribute definition and GSI, and the writes of every row twice) for a listing an operator runs
by hand. The cost is the filter's: DynamoDB reads (and bills) every release the Query passes over,
of every service, and drops the others after reading them, so listing a service that deploys
rarely reads the releases of all services back to its own (``toolbox/releases.py`` pages until it
has enough). A release row is a few hundred bytes (a refusal's reason adds up to a thousand), so
a page of a hundred releases is a few read units.
"""

from __future__ import annotations

PARTITION_KEY = "executionId"
SORT_KEY = "time"
KIND_KEY = "kind"
KIND_INDEX = "by-kind"
SERVICE_KEY = "service"
"""The service a row belongs to (a name of ``platform.yaml``'s ``services``). The deploy handler
writes it on every release (from its UserParameters); the recorder on pipeline and stage rows
(the pipeline's name without the layer's ending) and on a build's row when a pipeline started the
build. A row without it: a build started by hand, or a row written before services existed."""

KINDS = ("pipeline", "stage", "build", "release")
"""What a row records: a pipeline execution's, a stage's or a build's state change, or a release
(the deploy handler's verdict on one deployed image)."""
