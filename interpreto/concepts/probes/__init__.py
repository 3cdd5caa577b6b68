"""Supervised concepts: probes fitted on labelled activations (`ProbeExplainer`), CAVs and TCAV."""

from interpreto.concepts.probes.explainer import ProbeExplainer
from interpreto.concepts.probes.linear import (
    CentroidProbe,
    LinearRegressionProbe,
    LinearSVMProbe,
    LogisticRegressionProbe,
    MeansDiffProbe,
    Probe,
    make_probe,
)
from interpreto.concepts.probes.tcav import CAV, TCAV, TCAVResult

__all__ = [
    "CAV",
    "TCAV",
    "CentroidProbe",
    "LinearRegressionProbe",
    "LinearSVMProbe",
    "LogisticRegressionProbe",
    "MeansDiffProbe",
    "Probe",
    "ProbeExplainer",
    "TCAVResult",
    "make_probe",
]
