"""Content negotiation shared by the routes: the Accept header as mimeparse should read it, and the 406."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse


def accept_header(request: Request, default: str) -> str:
    """The request's Accept header (``default`` when it has none), lower-cased: media types are
    case-insensitive (RFC 9110, 8.3.1), and mimeparse compares them as written."""
    return (request.headers.get("accept") or default).lower()


def not_acceptable(offered, vary: bool = True) -> PlainTextResponse:
    """406, naming the media types the route can send."""
    return PlainTextResponse("none of the accepted media types is available: " + ", ".join(offered) + "\n",
                             status_code=406, headers={"Vary": "Accept"} if vary else None)
