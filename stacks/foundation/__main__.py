"""Foundation layer: KMS key, artifact bucket, GitHub token secret, failure topic."""

from shared.program import Program
from stacks.foundation.component import Foundation
from stacks.foundation.config import load

program = Program("foundation")
args = load(program.values, program.platform, program.label)
foundation = Foundation(program.layer.name, args, program.resource_options())
foundation.outputs.export()
