"""The layer graph is written once, and every layer folder is a real Pulumi project.

Which package may import which is import-linter's (``[tool.importlinter]``, run by ``./dev lint``).
"""

from __future__ import annotations

import pytest
import yaml

from shared import layers
from shared.layers import LAYERS, UnknownLayerError
from shared.settings import environments


def test_dependency_order():
    assert layers.names() == ("foundation", "registry", "pipeline")
    assert [layer.name for layer in layers.upstream("pipeline")] == ["foundation", "registry"]
    assert [layer.name for layer in layers.downstream("foundation")] == ["registry", "pipeline"]
    assert layers.downstream("pipeline") == ()


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(UnknownLayerError) as error:
        layers.get("network")
    assert str(error.value) == (
        "unknown layer 'network': valid layers are foundation, registry, pipeline"
    )


def test_selection():
    assert [layer.name for layer in layers.selection(None)] == list(layers.names())
    assert [layer.name for layer in layers.selection("registry")] == ["registry"]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_each_layer_is_a_pulumi_project_with_a_stack_per_environment(layer):
    project = yaml.safe_load((layer.directory / "Pulumi.yaml").read_text())
    assert project["name"] == layer.project
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../../.venv"
    for env in environments():
        assert layer.stack_file(env).is_file()


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_main_is_thin(layer):
    lines = [
        line
        for line in (layer.directory / "__main__.py").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) <= 20
    assert "def " not in "\n".join(lines) and "class " not in "\n".join(lines)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_stack_files_hold_only_namespaced_deltas(layer):
    project = yaml.safe_load((layer.directory / "Pulumi.yaml").read_text())
    defaults = {
        f"{layer.project}:{key}": spec.get("default")
        for key, spec in (project.get("config") or {}).items()
    }
    for env in environments():
        stack = yaml.safe_load(layer.stack_file(env).read_text()) or {}
        for key, value in (stack.get("config") or {}).items():
            assert ":" in key
            assert defaults.get(key) != value, f"{env}: {key} repeats the default"
