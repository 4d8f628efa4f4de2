"""The built graph links each sample trial to the drugs, conditions, sponsors and sites a reader expects."""

from __future__ import annotations

import hashlib

import pytest

from conftest import DATA, SAMPLE_FILES

# What a careful reader of each page expects the trial to give (drugs by INN).
EXPECTED_DRUGS = {
    "NCT06281886": {"toripalimab", "apatinib", "nab-paclitaxel", "cisplatin", "capecitabine"},
    "NCT05173246": {"toripalimab", "nab-paclitaxel", "cisplatin", "carboplatin"},  # JS001 is toripalimab
    "NCT07248696": {"tislelizumab", "gemcitabine", "cisplatin"},  # named inside the RADIATION description
    "NCT07325539": {"gemcitabine", "cisplatin", "toripalimab"},
    "NCT07581821": {"sintilimab", "anlotinib", "docetaxel", "paclitaxel", "nab-paclitaxel"},
}
EXPECTED_CONDITIONS = {
    "NCT06281886": {"esophageal-squamous-cell-carcinoma"},
    "NCT05173246": {"esophageal-small-cell-carcinoma"},
    "NCT07248696": {"nasopharyngeal-carcinoma"},
    "NCT07325539": {"nasopharyngeal-carcinoma"},
    "NCT07581821": {"nasopharyngeal-carcinoma"},
}


def _ids(rows, key):
    return {row[key].rsplit("/", 1)[-1] for row in rows}


@pytest.mark.parametrize("nct", sorted(EXPECTED_DRUGS))
def test_trial_links_to_its_drugs(ask, nct):
    """Each trial's interventions resolve to exactly the drugs its page names."""
    rows = ask(f'SELECT DISTINCT ?drug {{ ?t ctkg:nctId "{nct}" ; ctkg:hasIntervention/ctkg:involvesDrug ?drug }}')
    assert _ids(rows, "drug") == EXPECTED_DRUGS[nct]


@pytest.mark.parametrize("nct", sorted(EXPECTED_CONDITIONS))
def test_trial_links_to_its_conditions(ask, nct):
    """Each trial studies the curated condition its (possibly misspelt) condition text names."""
    rows = ask(f'SELECT DISTINCT ?c {{ ?t ctkg:nctId "{nct}" ; ctkg:studiesCondition ?c }}')
    assert _ids(rows, "c") == EXPECTED_CONDITIONS[nct]


def test_nct06281886_radiotherapy_and_identifiers(ask):
    """NCT06281886: radiotherapy typed as such; ESCC with MeSH and MONDO; Sun Yat-sen University with ROR;
    a site in Guangzhou with its GeoNames id."""
    assert ask('ASK { ?t ctkg:nctId "NCT06281886" ; ctkg:hasIntervention ?i . ?i a ctkg:Radiotherapy ; rdfs:label "Radiotherapy" }')
    rows = ask('SELECT ?x { ?t ctkg:nctId "NCT06281886" ; ctkg:studiesCondition/skos:exactMatch ?x }')
    links = {r["x"] for r in rows}
    assert "http://id.nlm.nih.gov/mesh/D000077277" in links
    assert "http://purl.obolibrary.org/obo/MONDO_0005580" in links
    assert ask('ASK { ?t ctkg:nctId "NCT06281886" ; ctkg:leadSponsor/skos:exactMatch <https://ror.org/0064kty71> }')
    rows = ask('SELECT ?g { ?t ctkg:nctId "NCT06281886" ; ctkg:hasSite/ctkg:inPlace ?p . ?p rdfs:label "Guangzhou" ; skos:exactMatch ?g }')
    assert "https://www.geonames.org/1809858" in {r["g"] for r in rows}


def test_apatinib_only_in_the_experimental_arm(ask):
    """NCT06281886's apatinib is reached through the study group arm only."""
    rows = ask('''SELECT ?label { ?t ctkg:nctId "NCT06281886" ; ctkg:hasArm ?a . ?a rdfs:label ?label ;
                  ctkg:hasIntervention/ctkg:involvesDrug drug:apatinib }''')
    assert [r["label"] for r in rows] == ["The study group"]


def test_code_name_resolution_keeps_the_raw_string(ask):
    """JS001 resolves to toripalimab by its code name; the raw text, method and confidence stay in the graph."""
    rows = ask('''SELECT ?raw ?method ?conf ?where { ?t ctkg:nctId "NCT05173246" ; ctkg:hasIntervention ?i .
                  ?i rdfs:label "JS001" ; ctkg:mentionsDrug ?m . ?m ctkg:resolvesTo drug:toripalimab ;
                  ctkg:rawText ?raw ; ctkg:matchMethod ?method ; ctkg:matchConfidence ?conf ; ctkg:matchedIn ?where }''')
    assert rows and rows[0]["raw"] == "JS001" and rows[0]["method"] == "code-name" and rows[0]["where"] == "name"
    assert 0 < float(rows[0]["conf"]) <= 1


def test_misspelt_conditions_are_fuzzy_matches_with_their_text(ask):
    """'Nasopharangeal Cancer' resolves by a fuzzy match and keeps its spelling."""
    rows = ask('''SELECT ?method ?conf { ?t ctkg:nctId "NCT07325539" ; ctkg:hasConditionMention ?m .
                  ?m ctkg:rawText "Nasopharangeal Cancer" ; ctkg:matchMethod ?method ; ctkg:matchConfidence ?conf }''')
    assert rows[0]["method"] == "fuzzy" and 0.5 < float(rows[0]["conf"]) < 1


def test_words_that_are_not_conditions_make_no_disease(ask):
    """'Efficacy' and 'Toxicity' (NCT06281886) are keywords, never condition concepts or mentions."""
    assert not ask('ASK { ?c a ctkg:Condition ; rdfs:label ?l FILTER(LCASE(?l) IN ("efficacy", "toxicity")) }')
    assert not ask('ASK { ?m a ctkg:ConditionMention ; ctkg:rawText ?l FILTER(LCASE(?l) IN ("efficacy", "toxicity")) }')
    assert ask('ASK { ?t ctkg:nctId "NCT06281886" ; schema:keywords "Efficacy", "Toxicity" }')


def test_sun_yat_sen_university_is_one_node_for_three_trials(ask):
    """The lead sponsor of three samples (000, 001, 003) is one organization node."""
    rows = ask('SELECT ?nct { ?t ctkg:leadSponsor org:sun-yat-sen-university ; ctkg:nctId ?nct } ORDER BY ?nct')
    assert [r["nct"] for r in rows] == ["NCT05173246", "NCT06281886", "NCT07325539"]


def test_person_sponsor_is_a_person(ask):
    """NCT07581821's sponsor Ming-Yuan Chen is a person, not an organization."""
    assert ask('ASK { ?t ctkg:nctId "NCT07581821" ; ctkg:leadSponsor ?s . ?s a ctkg:Person ; rdfs:label "Ming-Yuan Chen" }')


def test_sites_link_to_organization_and_place_chain(ask):
    """A site links to its organization and to a city inside its province and country."""
    rows = ask('''SELECT ?org ?country { ?t ctkg:nctId "NCT07581821" ; ctkg:hasSite ?s .
                  ?s ctkg:siteOrganization ?org ; ctkg:inPlace/ctkg:broaderPlace+ ?country . ?country ctkg:placeKind "country" }''')
    assert {(r["org"].rsplit("/", 1)[-1], r["country"].rsplit("/", 1)[-1]) for r in rows} == {
        ("fifth-affiliated-hospital-sun-yat-sen-university", "china")}


def test_drug_classes_follow_the_hierarchy(ask):
    """Toripalimab is a PD-1 inhibitor and so an immune checkpoint inhibitor; anlotinib is a VEGFR TKI and a kinase inhibitor."""
    assert ask("ASK { drug:toripalimab a/rdfs:subClassOf* ctkg:PD1Inhibitor }")
    assert ask("ASK { drug:toripalimab a/rdfs:subClassOf* ctkg:ImmuneCheckpointInhibitor }")
    assert ask("ASK { drug:anlotinib a/rdfs:subClassOf* ctkg:VEGFRTyrosineKinaseInhibitor }")
    assert ask("ASK { drug:anlotinib a/rdfs:subClassOf* ctkg:KinaseInhibitor }")
    assert not ask("ASK { drug:cisplatin a/rdfs:subClassOf* ctkg:ImmuneCheckpointInhibitor }")


def test_pd1_plus_vegfr_tki_by_class_hierarchy_only(ask):
    """Trials combining a PD-1 inhibitor with a VEGFR TKI, found without naming any drug."""
    rows = ask('''SELECT DISTINCT ?nct { ?t ctkg:nctId ?nct ; ctkg:hasIntervention/ctkg:involvesDrug ?a, ?b .
                  ?a a/rdfs:subClassOf* ctkg:PD1Inhibitor . ?b a/rdfs:subClassOf* ctkg:VEGFRTyrosineKinaseInhibitor } ORDER BY ?nct''')
    assert [r["nct"] for r in rows] == ["NCT06281886", "NCT07581821"]


def test_partial_dates_and_ages_are_typed(ask):
    """Dates are xsd:date as written; ages are quantities with a unit."""
    rows = ask('SELECT (DATATYPE(?d) AS ?type) ?d { ?t ctkg:nctId "NCT06281886" ; ctkg:startDate ?d }')
    assert rows == [{"type": "http://www.w3.org/2001/XMLSchema#date", "d": "2023-12-01"}]
    rows = ask('''SELECT ?v ?unit { ?t ctkg:nctId "NCT06281886" ; ctkg:hasEligibility/ctkg:maximumAge ?a .
                  ?a schema:value ?v ; schema:unitCode ?unit }''')
    assert float(rows[0]["v"]) == 80 and rows[0]["unit"] == "http://qudt.org/vocab/unit/YR"


@pytest.mark.parametrize("nct", sorted(SAMPLE_FILES))
def test_each_trial_graph_has_provenance(ask, nct):
    """Each trial's named graph says which file (and its SHA-256) and format it came from."""
    digest = hashlib.sha256((DATA / SAMPLE_FILES[nct]).read_bytes()).hexdigest()
    rows = ask(f'''SELECT ?file ?sha ?fmt ?primary {{ GRAPH ?g {{ ?g prov:wasDerivedFrom ?r ; dcterms:subject ?t .
                   ?t ctkg:nctId "{nct}" . ?r dcterms:source ?file ; ctkg:sha256 ?sha ; ctkg:sourceFormat ?fmt ;
                   prov:hadPrimarySource ?primary }} ?g prov:wasGeneratedBy/prov:wasAssociatedWith ?software }}''')
    assert len(rows) == 1
    # The file's name alone (no path of the machine that built it), and the registry's page of the study.
    assert rows[0]["file"] == SAMPLE_FILES[nct] and rows[0]["sha"] == digest
    assert rows[0]["primary"] == f"https://www.clinicaltrials.gov/study/{nct}"


def test_no_blank_nodes_in_trial_graphs(ask):
    """Everything with identity has an IRI: no blank node subject or object in any trial graph."""
    assert not ask('ASK { GRAPH ?g { ?s ?p ?o FILTER(isBlank(?s) || isBlank(?o)) } FILTER(STRSTARTS(STR(?g), STR(trial:))) }')
    assert not ask('ASK { GRAPH ?g { ?s ?p ?o FILTER(isBlank(?s) || isBlank(?o)) } FILTER(CONTAINS(STR(?g), "/graph/NCT")) }')


def test_every_ctkg_term_is_declared_with_label_and_definition(ask):
    """Each ctkg class or property the data uses is in the ontology with a label and a definition."""
    rows = ask('''SELECT DISTINCT ?term { { GRAPH ?g { ?s ?term ?o } } UNION { GRAPH ?g { ?s a ?term } }
                  FILTER(STRSTARTS(STR(?term), STR(ctkg:)))
                  FILTER NOT EXISTS { ?term rdfs:label ?l ; skos:definition ?d } }''')
    assert rows == []


def test_void_linksets_count_links_per_vocabulary(ask):
    """The dataset description has one VoID linkset per linked vocabulary, with its link count."""
    rows = ask('SELECT ?ls ?n { ?d a void:Dataset ; void:subset ?ls . ?ls a void:Linkset ; void:triples ?n }')
    names = {r["ls"].rsplit("/", 1)[-1] for r in rows}
    assert {"mesh", "mondo", "ror", "geonames", "drugbank", "pubmed"} <= names
    assert all(int(r["n"]) > 0 for r in rows)
    assert ask('ASK { ?d a dcat:Dataset ; dcterms:license ?l ; void:triples ?n ; void:sparqlEndpoint ?e }')


def test_each_triple_is_in_one_graph_only(ask):
    """The union default graph repeats a triple once for every graph that holds it, so a query would see
    it twice (a target's type, a vocabulary's label): each triple is written into one graph only. (With
    organizations and places no concept table names: test_queries, on real registry records.)"""
    repeated = ask("""SELECT ?s ?p ?o { GRAPH ?g1 { ?s ?p ?o } GRAPH ?g2 { ?s ?p ?o } FILTER(STR(?g1) < STR(?g2)) }
                      LIMIT 5""")
    assert repeated == []
    assert len(ask("SELECT ?type { target:PDCD1 a ?type }")) == 2  # owl:NamedIndividual, ctkg:MolecularTarget


def test_void_linksets_for_the_ontology_alignments_and_entities_in_the_uri_space(ask, built):
    """The class alignments of ontology/alignments.yaml are linksets too, one per vocabulary and predicate;
    void:entities counts the resources named in the dataset's URI space (no blank nodes)."""
    import yaml

    settings, _ = built
    alignments = yaml.safe_load((settings.ontology_dir / "alignments.yaml").read_text(encoding="utf-8"))
    expected = {}
    for row in alignments:
        if row["target"].startswith("NCIT:"):
            expected[row["relation"]] = expected.get(row["relation"], 0) + 1
    rows = ask("""SELECT ?predicate ?n { ?d void:subset ?ls . ?ls void:objectsTarget <http://localhost:8000/vocabulary/ncit> ;
                  void:linkPredicate ?predicate ; void:triples ?n }""")
    got = {r["predicate"].rsplit("#", 1)[-1]: int(r["n"]) for r in rows}
    assert {k: v for k, v in got.items() if k != "exactMatch"} == expected
    (row,) = ask("SELECT ?e ?s { ?d a void:Dataset ; void:entities ?e ; void:distinctSubjects ?s ; void:uriSpace ?u }")
    # Counted once the data and the build's provenance are in, before the description itself is written.
    named = """SELECT (COUNT(DISTINCT ?x) AS ?n) { GRAPH ?g { ?x ?p ?o } %s
               FILTER(isIRI(?x) && STRSTARTS(STR(?x), "http://localhost:8000/")) }"""
    outside = int(ask(named % "FILTER(?g != <http://localhost:8000/graph/dataset>)")[0]["n"])
    everywhere = int(ask(named % "")[0]["n"])
    blank = int(ask("SELECT (COUNT(DISTINCT ?x) AS ?n) { GRAPH ?g { ?x ?p ?o } FILTER(isBlank(?x)) }")[0]["n"])
    assert blank > 0 and outside <= int(row["e"]) < everywhere and int(row["e"]) + blank <= int(row["s"])


def test_unresolved_strings_are_kept_and_listed(tmp_path):
    """An intervention naming no known drug stays in the graph as a label and is listed by the build."""
    import json

    from kg.build import build
    from kg.settings import Settings
    from kg.store import open_read_only

    study = {"protocolSection": {"identificationModule": {"nctId": "NCT09999999", "briefTitle": "Fooximab study"},
             "armsInterventionsModule": {"interventions": [{"type": "DRUG", "name": "Fooximab"}]},
             "conditionsModule": {"conditions": ["Quuxoma"]}}}
    (tmp_path / "NCT09999999.json").write_text(json.dumps(study), encoding="utf-8")
    settings = Settings(store_dir=tmp_path / "store")
    report = build(settings, [tmp_path / "NCT09999999.json"])
    assert {(u.kind, u.text) for u in report.unresolved} == {("intervention", "Fooximab"), ("condition", "Quuxoma")}
    store = open_read_only(settings.store_dir)
    assert store.query('ASK { ?i <http://www.w3.org/2000/01/rdf-schema#label> "Fooximab" }', use_default_graph_as_union=True)
