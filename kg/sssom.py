"""The curated mappings as SSSOM TSV: a YAML metadata block in ``#`` comments, then one row per mapping."""

from __future__ import annotations

import csv
import io
from datetime import date

import yaml

from kg import __version__
from kg.concepts import ConceptTables
from kg.dataset import LICENSE
from kg.vocabularies import VOCABULARIES, converter, local_id

COLUMNS = ["subject_id", "subject_label", "predicate_id", "object_id", "mapping_justification",
           "subject_source", "object_source", "mapping_date", "comment"]
KIND_PATH = {"drug": "drug", "condition": "condition", "organization": "organization", "place": "place", "target": "target"}


def sssom_tsv(tables: ConceptTables, base: str) -> str:
    prefix_map = converter().prefix_map
    curie_map = {f"ctkg.{kind}": f"{base}/{path}/" for kind, path in KIND_PATH.items()}
    curie_map.update({"skos": "http://www.w3.org/2004/02/skos/core#", "semapv": "https://w3id.org/semapv/vocab/"})
    rows = []
    for concept in tables.all():
        for xref in concept.xrefs:
            vocabulary = VOCABULARIES[xref.vocabulary]
            if vocabulary.notation_only:
                continue
            curie_map[vocabulary.prefix] = prefix_map[vocabulary.prefix]
            rows.append({
                "subject_id": f"ctkg.{concept.kind}:{concept.id}",
                "subject_label": concept.label,
                "predicate_id": "skos:exactMatch",
                "object_id": f"{vocabulary.prefix}:{local_id(xref.vocabulary, xref.id)}",
                "mapping_justification": "semapv:ManualMappingCuration",
                "subject_source": f"{base}/dataset",
                "object_source": vocabulary.homepage,
                "mapping_date": date.today().isoformat(),
                "comment": f"evidence: {xref.evidence}",
            })
    metadata = {
        "mapping_set_id": f"{base}/dataset/mappings.sssom.tsv",
        "mapping_set_version": __version__,
        "mapping_set_title": "ctkg curated concept mappings",
        "license": LICENSE,
        "curie_map": dict(sorted(curie_map.items())),
    }
    out = io.StringIO()
    for line in yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True).splitlines():
        out.write(f"# {line}\n")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
