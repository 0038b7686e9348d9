"""A layer's settings as the tools read them: the layer's own pure reader over its stack files.

The preflight, the operator policies and the spec checks read the pipeline's settings here,
so none of them needs the others to get at a layer's config.
"""

from __future__ import annotations

from shared.layers import get as get_layer
from shared.naming import Label
from shared.settings import load_platform
from shared.stackconfig import file_values
from stacks.pipeline.config import LayerArgs, load


def read_pipeline_args(environment: str) -> LayerArgs:
    """The pipeline layer's config, read and validated by the layer's own (pure) reader.

    From the same two files the CLI hands the program (``Pulumi.yaml`` defaults overlaid by
    ``Pulumi.<env>.yaml``); a bad value is the reader's own ConfigError line.
    """
    layer = get_layer("pipeline")
    platform = load_platform(environment)
    return load(file_values(layer, environment), platform, Label(platform, layer))


__all__ = ["read_pipeline_args"]
