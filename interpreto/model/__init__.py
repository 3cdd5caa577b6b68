"""Task wrappers shared by the subpackages (classification, causal-LM generation) and models split at layers."""

from interpreto.model.activations import (
    ActivationGranularity,
    Activations,
    iter_activation_shards,
    load_activations,
)
from interpreto.model.classification import ClassificationTask
from interpreto.model.generation import GenerationTask
from interpreto.model.remote import RemoteScorer
from interpreto.model.split_points import ModelWithSplitPoints
from interpreto.model.task import Task, make_task

__all__ = [
    "ActivationGranularity",
    "Activations",
    "ClassificationTask",
    "GenerationTask",
    "ModelWithSplitPoints",
    "RemoteScorer",
    "Task",
    "iter_activation_shards",
    "load_activations",
    "make_task",
]
