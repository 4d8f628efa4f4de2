"""The one settings object. Read from the environment (``CTKG_*``) or passed down by the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CTKG_", extra="ignore")

    # Every IRI the graph mints lives under this base; serving maps request paths onto it.
    base_iri: str = "http://localhost:8000"
    data_dir: Path = PROJECT_ROOT / "data"
    ontology_dir: Path = PROJECT_ROOT / "ontology"
    shapes_dir: Path = PROJECT_ROOT / "shapes"
    queries_dir: Path = PROJECT_ROOT / "queries"
    store_dir: Path = PROJECT_ROOT / "var" / "store"
    # Where the full dumps of each store version go; by default beside the store (``<store_dir>.dumps``),
    # so a store given with --store keeps its own dumps.
    dumps_dir: Path | None = None
    # Write the full dumps (N-Quads, TriG, Turtle, JSON-LD; gzip) with every store version.
    write_dumps: bool = True
    # Worker processes that parse, map and validate records during a build (0: one per core).
    build_workers: int = Field(default=0, ge=0)
    # Files (or ZIP members) per worker task; with two or more chunks the build maps in parallel.
    build_chunk_records: int = Field(default=200, gt=0)
    # A remote SPARQL 1.1 endpoint to use instead of the embedded store (see docs/remote-store.md).
    # Setting the query URL switches `kg build` and `kg serve` to it; a build also needs the update
    # URL, and loads faster through the Graph Store Protocol URL when one is given.
    remote_query_url: str | None = None
    remote_update_url: str | None = None
    remote_store_url: str | None = None
    remote_chunk_quads: int = Field(default=20_000, gt=0)  # quads per load request
    remote_load_timeout_s: float = Field(default=300.0, gt=0)  # per load request; queries use query_timeout_s
    remote_auth: Literal["basic", "digest", "bearer"] | None = None  # default: bearer with a token, else basic
    remote_user: str | None = None
    remote_password: SecretStr | None = None
    remote_token: SecretStr | None = None
    query_timeout_s: float = Field(default=30.0, gt=0)
    # `kg serve` builds pages (and the home page) in worker processes of their own, so slow SPARQL queries
    # holding every query worker do not hold pages up; 0: pages share the query workers.
    page_workers: int = Field(default=1, ge=0)
    result_limit: int = Field(default=10_000, gt=0)
    # The service keeps answers to repeated queries in memory, keyed by the store version that produced
    # them (service.state.ResultCache): at most this many answers and bytes; 0 entries turns it off.
    cache_entries: int = Field(default=1_000, ge=0)
    cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # As soon as a store version is live, `kg serve` computes the named queries' answers with their default
    # and example parameters, one at a time in the background, and caches them (service.warm): the
    # queries that scan every trial are then answered from memory. Each may run this long.
    warm_queries: bool = True
    warm_timeout_s: float = Field(default=600.0, gt=0)
    # Curators' bearer tokens for SPARQL Update, by the name the audit trail records:
    # CTKG_UPDATE_TOKENS='{"alice": "<a long random secret>"}'. None configured: updates are refused.
    update_tokens: dict[str, str] = Field(default_factory=dict)
    # One JSON line per update; None: ``audit/updates.jsonl`` next to the store link (see kg.updates).
    audit_log: Path | None = None
    # The ClinicalTrials.gov API v2 that `kg fetch` downloads from; tests point it at a local server.
    ctgov_api_url: str = "https://clinicaltrials.gov/api/v2"

    @field_validator("update_tokens")
    @classmethod
    def _usable_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        for name, token in value.items():
            if not name.strip():
                raise ValueError("an update token has an empty name; the name is what the audit trail records")
            if len(token) < 16:
                raise ValueError(f"the update token of {name!r} has {len(token)} characters; use at least 16")
        return value

    @field_validator("base_iri")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def dumps_root(self) -> Path:
        return self.dumps_dir or self.store_dir.parent / (self.store_dir.name + ".dumps")
