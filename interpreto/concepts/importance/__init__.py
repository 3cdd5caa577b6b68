"""Concept importance: concept-to-output attributions with any attribution method, and their global ranking."""

from interpreto.concepts.importance.attributions import concept_attributions
from interpreto.concepts.importance.concept_task import ERROR_NAME, ConceptSample, ConceptTask

__all__ = ["ERROR_NAME", "ConceptSample", "ConceptTask", "concept_attributions"]
