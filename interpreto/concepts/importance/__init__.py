"""Concept importance: concept-to-output attributions with any attribution method, their global ranking, and
input-to-concept attributions."""

from interpreto.concepts.importance.attributions import concept_attributions
from interpreto.concepts.importance.concept_task import ERROR_NAME, ConceptSample, ConceptTask
from interpreto.concepts.importance.global_importance import GlobalConceptImportance, global_importance
from interpreto.concepts.importance.input_to_concept import ConceptActivationTask, input_to_concept

__all__ = [
    "ERROR_NAME",
    "ConceptActivationTask",
    "ConceptSample",
    "ConceptTask",
    "GlobalConceptImportance",
    "concept_attributions",
    "global_importance",
    "input_to_concept",
]
