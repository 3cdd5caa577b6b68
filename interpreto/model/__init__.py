"""Task wrappers shared by the subpackages: classification and causal-LM generation."""

from interpreto.model.classification import ClassificationTask
from interpreto.model.generation import GenerationTask
from interpreto.model.task import Task, make_task

__all__ = ["ClassificationTask", "GenerationTask", "Task", "make_task"]
