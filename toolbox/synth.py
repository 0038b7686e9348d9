"""``./dev synth``: the offline plan written to disk, with the policy verdicts, and its summary.

Per layer it writes ``build/plan/<env>/<layer>.json`` (deterministic, secrets redacted) and the
verdicts of the policy pack over it, ``<layer>.policy.json``, and prints the resources per type
and the verdicts (after the component tree, when asked for it), like ``cdk synth`` with cdk-nag.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shared.layers import REPO_ROOT
from toolbox.offline import LayerPlan
from toolbox.plancache import plan_all
from toolbox.verdicts import SpecVerdicts, Verdicts, evaluate, evaluate_specs, unexamined

PLAN_DIR = REPO_ROOT / "build" / "plan"


@dataclass(frozen=True)
class SynthResult:
    """The plans of one run and the files they were written to."""

    environment: str
    plans: dict[str, LayerPlan]
    files: dict[str, Path]
    verdicts: dict[str, Verdicts]
    specs: SpecVerdicts | None = None
    """AWS's specs over the plans (toolbox/specs): None when not run."""

    @property
    def violations(self) -> int:
        """Mandatory policy violations and spec findings over every planned layer."""
        found = self.specs.failures if self.specs is not None else 0
        return sum(len(v.violations) for v in self.verdicts.values()) + found


def synth(environment: str, layer: str | None = None, out_dir: Path = PLAN_DIR) -> SynthResult:
    """Plan the selected layers offline and write one JSON file per layer."""
    plans = plan_all(environment, layer)
    target = out_dir / environment
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    verdicts: dict[str, Verdicts] = {}
    for name, plan in plans.items():
        path = target / f"{name}.json"
        path.write_text(plan.to_text(), encoding="utf-8")
        files[name] = path
        verdicts[name] = evaluate(plan)
        (target / f"{name}.policy.json").write_text(verdicts[name].to_text(), encoding="utf-8")
    specs = check_specs(environment, plans, target)
    return SynthResult(environment, plans, files, verdicts, specs)


def check_specs(environment: str, plans: dict[str, LayerPlan], target: Path) -> SpecVerdicts:
    """AWS's specs over the plans, written beside them as ``<layer>.specs.json`` (and
    ``operator-policy.specs.json`` for the operators' roles)."""
    specs = evaluate_specs(environment, plans)
    for name, verdict in specs.all().items():
        (target / f"{name}.specs.json").write_text(verdict.to_text(), encoding="utf-8")
    return specs


def summary(result: SynthResult) -> str:
    """Resources per layer and type, and the policies' verdicts: the outcome, printed last."""
    lines: list[str] = []
    for name, plan in result.plans.items():
        lines.append(
            f"{name} ({plan.stack}): {len(plan.resources)} resources"
            f" -> {_display(result.files[name])}"
        )
        for type_, count in sorted(Counter(r.type for r in plan.resources).items()):
            lines.append(f"  {count:4d}  {type_}")
        verdict = result.verdicts[name]
        lines.append(
            f"  policies: {len(verdict.examined)} mandatory, {len(verdict.violations)} violations,"
            f" {sum(1 for n in verdict.examined.values() if n)} examined a resource here"
        )
        lines.extend(f"  VIOLATION {v.policy}: {v.message}" for v in verdict.violations)
    if result.specs is not None:
        lines.extend(result.specs.summary())
    idle = unexamined(result.verdicts.values())
    if idle:
        lines.append(f"policies that examined no resource of these layers: {', '.join(idle)}")
    return "\n".join(lines)


def trees(result: SynthResult) -> str:
    """Each layer's tree of components and resources (``./dev synth --tree``)."""
    lines: list[str] = []
    for name, plan in result.plans.items():
        lines.append(f"{name} tree:")
        lines.extend(tree(plan))
        lines.append("")
    return "\n".join(lines)


def tree(plan: LayerPlan) -> list[str]:
    """The layer's resources as an indented tree under the stack."""
    children: dict[str | None, list[str]] = {}
    by_urn = {r.urn: r for r in plan.resources}
    for resource in plan.resources:
        children.setdefault(resource.parent, []).append(resource.urn)
    out: list[str] = []

    def walk(urn: str, depth: int) -> None:
        resource = by_urn[urn]
        out.append(f"{'  ' * depth}- {resource.name} [{resource.type}]")
        for child in sorted(children.get(urn, []), key=lambda u: (by_urn[u].type, by_urn[u].name)):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda u: (by_urn[u].type, by_urn[u].name)):
        walk(root, 1)
    return out


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
