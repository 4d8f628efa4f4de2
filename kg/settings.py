"""The one settings object. Read from the environment (``CTKG_*``) or passed down by the CLI."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
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
    dumps_dir: Path = PROJECT_ROOT / "var" / "dumps"
    # A remote SPARQL 1.1 endpoint to use instead of the embedded store (issue: remote stores).
    remote_query_url: str | None = None
    remote_update_url: str | None = None
    query_timeout_s: float = Field(default=30.0, gt=0)
    result_limit: int = Field(default=10_000, gt=0)
    update_token: str | None = None

    @field_validator("base_iri")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
