"""Generating structures from a checkpoint: settings, the checks against the template, sampling and
screening, and the same sharded over a torchrun job."""

from .checks import TemplateChecks, template_checks
from .config import SampleConfig
from .sampling import Structures, make_denoiser, sample
from .sharded import sharded_sample

__all__ = ["SampleConfig", "Structures", "TemplateChecks", "make_denoiser", "sample", "sharded_sample", "template_checks"]
