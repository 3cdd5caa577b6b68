"""Sparse autoencoders as concepts: vanilla (L1), TopK, BatchTopK and JumpReLU SAEs, trained on streamed
activations, saved in our format or SAELens', and loaded from SAELens and sparsify folders (`formats`)."""

from interpreto.concepts.sae.base import SAEConcepts
from interpreto.concepts.sae.batch_topk import BatchTopKSAEConcepts
from interpreto.concepts.sae.jump_relu import JumpReLUSAEConcepts
from interpreto.concepts.sae.topk import TopKSAEConcepts
from interpreto.concepts.sae.vanilla import VanillaSAEConcepts

__all__ = [
    "BatchTopKSAEConcepts",
    "JumpReLUSAEConcepts",
    "SAEConcepts",
    "TopKSAEConcepts",
    "VanillaSAEConcepts",
]
