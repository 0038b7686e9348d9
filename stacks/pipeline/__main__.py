"""Pipeline layer: IAM, CodeBuild, the five-stage CodePipeline, events and notifications."""

from shared.contracts import FoundationOutputs, RegistryOutputs
from shared.program import Program
from stacks.pipeline.component import Pipeline
from stacks.pipeline.config import load

program = Program("pipeline")
args = load(program.values, program.platform, program.label)
organization, environment = program.platform.organization, program.platform.environment
foundation = FoundationOutputs.read(organization, environment)
registry = RegistryOutputs.read(organization, environment)
pipeline = Pipeline(program.layer.name, args, foundation, registry, program.resource_options())
pipeline.outputs.export()
