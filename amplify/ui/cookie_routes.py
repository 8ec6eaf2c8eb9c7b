"""The two HTTP routes that keep the browser's session cookie out of reach of page scripts.

Streamlit talks to the browser over a WebSocket, which cannot set cookies, and a cookie set
from the page's JavaScript can be read by any script on the page. So the sign-in page sends
the browser to ``/auth/session?h=<handoff>`` (a sealed, single-use value that expires within a
minute, never the token itself); that route sets ``amplify_sid`` as an HttpOnly cookie and
sends the browser back to the page it was on. Streamlit then reads the cookie from the
WebSocket handshake (``st.context.cookies``) on every new tab and reload. Signing out revokes
the session on the Streamlit side, then sends the browser to ``/auth/signout`` to drop the
cookie (the route revokes it too, for a browser that arrives there some other way).

Lifetime: the cookie lives ``COOKIE_MAX_AGE`` (400 days, the most browsers keep one) and the
session row decides: 14 days after its last use, or at once when revoked. The row's expiry
slides with use the HTTP layer never sees (clicks travel over the WebSocket), so a cookie
refreshed only on page loads could expire under someone working in one open tab for two
weeks; a long-lived cookie cannot, and a stolen one is useless once its row has ended.

Served by ``amplify/ui/server.py`` (``streamlit run amplify/ui/server.py``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from amplify import sessions
from amplify.db import session_scope

COOKIE = "amplify_sid"
SESSION_PATH = "/auth/session"
SIGNOUT_PATH = "/auth/signout"
COOKIE_MAX_AGE = 400 * 24 * 3600
# A browser marks where a navigation came from; only the app's own pages may use these routes
# (no signing someone in or out from another site). Older browsers send no such header.
_SAME_ORIGIN = {"same-origin", None}


def session_url(handoff: str) -> str:
    """Where the sign-in page sends the browser (the page adds ``next``)."""
    return f"{SESSION_PATH}?{urlencode({'h': handoff})}"


def _next_path(request: Request) -> str:
    """The page to return to: a path on this site only (no open redirect)."""
    wanted = request.query_params.get("next") or "/"
    if not wanted.startswith("/") or wanted.startswith(("//", "/\\")) or "\\" in wanted:
        return "/"
    if any(ord(c) < 0x20 for c in wanted):
        return "/"
    return wanted


def _same_origin(request: Request) -> bool:
    return request.headers.get("sec-fetch-site") in _SAME_ORIGIN


def _https(request: Request) -> bool:
    # uvicorn sets the scheme from X-Forwarded-Proto only for trusted proxies (localhost
    # unless FORWARDED_ALLOW_IPS says more).
    return request.url.scheme == "https"


def _back(request: Request) -> RedirectResponse:
    response = RedirectResponse(_next_path(request), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def start_session(request: Request) -> Response:
    """Trade a fresh handoff for the HttpOnly session cookie, then go back to the page."""
    response = _back(request)
    handoff = request.query_params.get("h") or ""
    if not handoff or not _same_origin(request):
        return response
    with session_scope() as s:
        token = sessions.claim_handoff(s, handoff)
    if token is not None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_MAX_AGE,
            path="/",
            secure=_https(request),
            httponly=True,
            samesite="strict",
        )
    return response


def sign_out(request: Request) -> Response:
    """End this browser's session (if the page has not already) and drop its cookie."""
    response = _back(request)
    if not _same_origin(request):
        return response
    token = request.cookies.get(COOKIE)
    if token:
        with session_scope() as s:
            sessions.revoke(s, sessions.hash_token(token))
    response.delete_cookie(
        COOKIE, path="/", secure=_https(request), httponly=True, samesite="strict"
    )
    return response


def routes() -> list[Route]:
    return [
        Route(SESSION_PATH, start_session, methods=["GET"]),
        Route(SIGNOUT_PATH, sign_out, methods=["GET", "POST"]),
    ]
