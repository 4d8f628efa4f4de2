"""The HTTP service: app factory; one router per resource."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from kg import __version__
from kg.settings import Settings
from service import dumps, pages, queries, querypage, sparql, validation
from service.state import ServiceState


def create_app(settings: Settings | None = None, workers: int = 2) -> FastAPI:
    settings = settings or Settings()
    state = ServiceState(settings, workers=workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.engine()  # open the store and start the query workers before the first request
        yield
        state.close()

    app = FastAPI(
        title="ctkg: clinical-trials knowledge graph",
        version=__version__,
        description="SPARQL 1.1 endpoint and linked-data pages for clinical trials linked to public vocabularies.",
        lifespan=lifespan,
    )
    app.state.ctkg = state
    # Browser clients (query editors on other origins) may read results; nothing here uses cookies.
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"],
                       expose_headers=["X-Result-Limit", "X-Result-Truncated", "X-Cache"])
    app.include_router(sparql.router)
    app.include_router(validation.router)
    queries.add_routes(app, state)
    app.include_router(dumps.router)
    app.include_router(querypage.router)
    app.mount("/static", querypage.static_files, name="static")
    app.include_router(pages.router)
    return app
