"""The HTTP service: app factory; one router per resource."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.middleware.cors import CORSMiddleware

from kg import __version__
from kg.queries import load_library
from kg.settings import Settings
from service import dumps, pages, queries, querypage, sparql, validation
from service.state import ServiceState
from service.warm import Warmer


def create_app(settings: Settings | None = None, workers: int = 2) -> FastAPI:
    settings = settings or Settings()
    state = ServiceState(settings, workers=workers)
    library = load_library(settings.queries_dir)
    warmer = Warmer(state, library)
    # Answers computed ahead need a version to be keyed by: not for a remote store, nor with the cache off.
    warming = settings.warm_queries and state.cache.enabled and not settings.remote_query_url

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.engine()  # open the store and start the query workers before the first request
        task = asyncio.create_task(warmer.run()) if warming else None
        yield
        state.close()  # first: a warming query cut short now stops its worker instead of starting a new one
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
    queries.add_routes(app, state, library)

    @app.get("/status", tags=["service"], summary="The store version served, and its named-query answers computed ahead")
    def status() -> JSONResponse:
        version = state.data_version()
        return JSONResponse({"store": Path(version).name if version else None,
                             "warm": warmer.status.as_json(warming, version)})
    app.include_router(dumps.router)
    app.include_router(querypage.router)
    app.mount("/static", querypage.static_files, name="static")
    app.include_router(pages.router)
    return app
