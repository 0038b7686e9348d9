"""The project's menu: `./dev --list` (or `invoke --list` inside the venv).

Tasks are thin: each calls functions in the project that the tests reach directly, and fails with
one clear line (invoke.Exit), never a traceback.
"""

from __future__ import annotations

import os
import sys

from invoke import Exit, task

from shared.errors import PlatformError
from shared.layers import UnknownLayerError

ENV_HELP = "environment (a stack name defined in platform.yaml), e.g. dev or prod"
LAYER_HELP = "one layer (foundation, registry, pipeline); all layers in dependency order if omitted"


def _fail_cleanly(exc: Exception) -> Exit:
    return Exit(f"error: {exc}", code=1)


@task(help={"env": ENV_HELP, "layer": LAYER_HELP})
def synth(c, env="dev", layer=""):
    """Plan the layers offline (no CLI, no AWS): write build/plan/<env>/*.json and a summary."""
    from shared.synth import summary
    from shared.synth import synth as run_synth

    try:
        result = run_synth(env, layer or None)
    except (PlatformError, UnknownLayerError) as exc:
        raise _fail_cleanly(exc) from None
    print(summary(result))


@task(
    help={
        "workers": "pytest-xdist workers: auto (default), or 0 to run serially",
        "k": "only tests matching this pytest -k expression",
    }
)
def test(c, workers="auto", k=""):
    """Run the test suite in parallel (pytest -n auto)."""
    args = [sys.executable, "-m", "pytest", "-n", workers, "-q"]
    if k:
        args += ["-k", k]
    result = c.run(" ".join(args), warn=True, pty=False, env={"PYTHONHASHSEED": "0", **os.environ})
    if result.exited:
        raise Exit(code=result.exited)
