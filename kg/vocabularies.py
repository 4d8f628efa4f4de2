"""The public vocabularies the graph links to, and how their identifiers become IRIs.

Identifiers are expanded with ``curies`` from a prefix map taken from the Bioregistry
(``ontology/prefixes.json``). The map is generated, not written by hand:
``python -m kg.vocabularies --refresh`` rebuilds it from the installed ``bioregistry``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import curies

PREFIX_FILE = Path(__file__).resolve().parent.parent / "ontology" / "prefixes.json"


@dataclass(frozen=True)
class Vocabulary:
    key: str            # key in the concept tables ("chebi")
    prefix: str         # Bioregistry prefix ("chebi")
    title: str
    homepage: str
    # Bioregistry's RDF IRIs where the vocabulary publishes RDF, its resolver pages otherwise.
    prefer_rdf: bool = False
    # Codes whose registry IRIs are search pages, not identifiers: kept as skos:notation literals.
    notation_only: bool = False


VOCABULARIES: dict[str, Vocabulary] = {v.key: v for v in (
    Vocabulary("wikidata", "wikidata", "Wikidata", "https://www.wikidata.org", True),
    Vocabulary("chebi", "chebi", "ChEBI", "https://www.ebi.ac.uk/chebi/", True),
    Vocabulary("drugbank", "drugbank", "DrugBank", "https://go.drugbank.com"),
    Vocabulary("ncit", "ncit", "NCI Thesaurus", "https://ncit.nci.nih.gov", True),
    Vocabulary("mesh", "mesh", "Medical Subject Headings", "https://meshb.nlm.nih.gov", True),
    Vocabulary("atc", "atc", "Anatomical Therapeutic Chemical Classification", "https://www.whocc.no/atc_ddd_index/"),
    Vocabulary("rxnorm", "rxnorm", "RxNorm", "https://www.nlm.nih.gov/research/umls/rxnorm/"),
    Vocabulary("unii", "unii", "FDA Unique Ingredient Identifier", "https://precision.fda.gov/uniisearch"),
    Vocabulary("mondo", "mondo", "Mondo Disease Ontology", "https://mondo.monarchinitiative.org", True),
    Vocabulary("doid", "doid", "Human Disease Ontology", "https://disease-ontology.org", True),
    Vocabulary("icd10", "icd10", "ICD-10", "https://icd.who.int/browse10/"),
    Vocabulary("icdo3", "icdo", "ICD-O-3", "https://www.who.int/standards/classifications/other-classifications/international-classification-of-diseases-for-oncology", notation_only=True),
    Vocabulary("ror", "ror", "Research Organization Registry", "https://ror.org"),
    Vocabulary("geonames", "geonames", "GeoNames", "https://www.geonames.org"),
    Vocabulary("iso3166", "iso.3166", "ISO 3166 country and subdivision codes", "https://www.iso.org/iso-3166-country-codes.html", notation_only=True),
    Vocabulary("hgnc", "hgnc", "HGNC", "https://www.genenames.org", False),
    Vocabulary("uniprot", "uniprot", "UniProt", "https://www.uniprot.org", True),
    Vocabulary("ncbigene", "ncbigene", "NCBI Gene", "https://www.ncbi.nlm.nih.gov/gene"),
    Vocabulary("pubmed", "pubmed", "PubMed", "https://pubmed.ncbi.nlm.nih.gov"),
    Vocabulary("doi", "doi", "Digital Object Identifier", "https://www.doi.org"),
    Vocabulary("obi", "obi", "Ontology for Biomedical Investigations", "https://obi-ontology.org", True),
    Vocabulary("cto", "cto", "Clinical Trials Ontology", "https://github.com/ClinicalTrialOntology/CTO", True),
    Vocabulary("clinicaltrials", "clinicaltrials", "ClinicalTrials.gov", "https://clinicaltrials.gov"),
)}

# Concept tables write banana-style ids ("CHEBI:27899", "MONDO:0005580"); the registry wants the local part.
_BANANA = re.compile(r"^(CHEBI|MONDO|DOID|HGNC|NCIT|OBI|CTO):(.+)$", re.I)


def local_id(key: str, identifier: str) -> str:
    match = _BANANA.match(identifier.strip())
    return match.group(2) if match else identifier.strip()


@lru_cache(maxsize=1)
def converter() -> curies.Converter:
    prefix_map = json.loads(PREFIX_FILE.read_text(encoding="utf-8"))
    return curies.Converter.from_prefix_map(prefix_map)


@lru_cache(maxsize=1)
def _uri_prefixes() -> dict[str, str]:
    # curies rebuilds its prefix map on every expand(); mapping calls this per reference, so keep one copy.
    return dict(converter().prefix_map)


def expand(key: str, identifier: str) -> str:
    """The IRI of an identifier in a vocabulary: ``expand("chebi", "CHEBI:27899")``."""
    vocabulary = VOCABULARIES[key]
    uri_prefix = _uri_prefixes().get(vocabulary.prefix)
    if uri_prefix is None:
        raise KeyError(f"no IRI pattern for {key}:{identifier}")
    return uri_prefix + local_id(key, identifier)


def vocabulary_of(iri: str) -> str | None:
    """The vocabulary key an external IRI belongs to, or None."""
    parsed = converter().compress(iri)
    if not parsed:
        return None
    prefix = parsed.split(":", 1)[0]
    return next((v.key for v in VOCABULARIES.values() if v.prefix == prefix), None)


def refresh_prefix_file() -> dict[str, str]:
    """Regenerate ontology/prefixes.json from the installed Bioregistry."""
    import bioregistry

    prefix_map: dict[str, str] = {}
    for vocabulary in VOCABULARIES.values():
        resource = bioregistry.get_resource(vocabulary.prefix)
        if resource is None:
            raise SystemExit(f"bioregistry has no prefix {vocabulary.prefix!r}")
        fmt = (resource.get_rdf_uri_format() if vocabulary.prefer_rdf else None) or resource.get_uri_format()
        if vocabulary.prefer_rdf and vocabulary.prefix == "mesh":
            fmt = bioregistry.get_converter(uri_prefix_priority=["rdf", "default"]).expand("mesh:$1") or fmt
        if not fmt or "$1" not in fmt:
            raise SystemExit(f"bioregistry gives no IRI format for {vocabulary.prefix!r}")
        # curies needs IRI prefixes: keep what comes before the identifier.
        prefix_map[vocabulary.prefix] = fmt.split("$1", 1)[0]
    PREFIX_FILE.write_text(json.dumps(prefix_map, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return prefix_map


if __name__ == "__main__":
    if "--refresh" in sys.argv:
        print(json.dumps(refresh_prefix_file(), indent=2))
    else:
        print("usage: python -m kg.vocabularies --refresh", file=sys.stderr)
        sys.exit(2)
