"""radiobench: a benchmark suite for generative models of radio-galaxy images."""
from .interfaces import Dataset, Generator, Metric, MetricContext
from .presets import PRESETS, Preset, get_preset
from .types import Conditions, GeneratorCost, InputError, MetricResult, RadioImages, SampleBatch, SurveyInfo

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "Generator",
    "Metric",
    "MetricContext",
    "Preset",
    "PRESETS",
    "get_preset",
    "Conditions",
    "GeneratorCost",
    "InputError",
    "MetricResult",
    "RadioImages",
    "SampleBatch",
    "SurveyInfo",
    "__version__",
]
