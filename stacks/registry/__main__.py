"""Registry layer: the ECR repository, encrypted with the foundation key."""

from shared.contracts import FoundationOutputs
from shared.program import Program
from stacks.registry.component import Registry
from stacks.registry.config import load

program = Program("registry")
args = load(program.values, program.platform, program.label)
foundation = FoundationOutputs.read(program.platform.organization, program.platform.environment)
registry = Registry(program.layer.name, args, foundation, program.resource_options())
registry.outputs.export()
