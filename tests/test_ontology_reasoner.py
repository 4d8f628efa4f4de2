"""The ontology is consistent under HermiT and classifies drugs from their targets."""

from __future__ import annotations

import shutil

import pytest

from kg.reasoning import classify
from kg.settings import Settings

pytestmark = [
    pytest.mark.reasoner,
    pytest.mark.skipif(shutil.which("java") is None, reason="HermiT needs Java"),
]

# Two drugs described only by what they are and what they bind: the reasoner must classify them.
INDIVIDUALS = """
@prefix ctkg: <ontology/> . @prefix target: <target/> . @prefix owl: <http://www.w3.org/2002/07/owl#> .
<drug/test-anti-pd1> a owl:NamedIndividual , ctkg:Drug ; ctkg:hasTarget target:PDCD1 .
<drug/test-vegfr-tki> a owl:NamedIndividual , ctkg:KinaseInhibitor ; ctkg:hasTarget target:KDR .
<drug/test-her2> a owl:NamedIndividual , ctkg:MonoclonalAntibody ; ctkg:hasTarget target:ERBB2 .
"""


def _types(world, base, local):
    individual = world[f"{base}/drug/{local}"]
    return {cls.iri.rsplit("/", 1)[-1] for cls in individual.INDIRECT_is_a if hasattr(cls, "iri")}


def test_hermit_finds_the_ontology_consistent_and_classifies_by_target():
    """HermiT: consistent; a PDCD1 binder is a PD-1 inhibitor (so a checkpoint inhibitor and an antineoplastic
    agent); a kinase inhibitor binding KDR is a VEGFR TKI; an antibody binding ERBB2 is HER2-directed."""
    settings = Settings()
    world = classify(settings, INDIVIDUALS)
    base = settings.base_iri
    assert {"PD1Inhibitor", "ImmuneCheckpointInhibitor", "AntineoplasticAgent"} <= _types(world, base, "test-anti-pd1")
    assert {"VEGFRTyrosineKinaseInhibitor", "KinaseInhibitor"} <= _types(world, base, "test-vegfr-tki")
    assert "PD1Inhibitor" not in _types(world, base, "test-vegfr-tki")
    assert "HER2DirectedAntibody" in _types(world, base, "test-her2")


def test_hermit_rejects_a_contradiction():
    """The check can fail: a target declared both PDCD1 and KDR (declared different) is inconsistent."""
    import owlready2

    bad = """@prefix target: <target/> . @prefix owl: <http://www.w3.org/2002/07/owl#> .
    target:PDCD1 owl:sameAs target:KDR ."""
    with pytest.raises(owlready2.OwlReadyInconsistentOntologyError):
        classify(Settings(), bad)
