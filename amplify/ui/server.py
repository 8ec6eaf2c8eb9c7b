"""The dashboard's web server: Streamlit's own ASGI app (``st.App``) serving app.py, plus the
routes that give the browser its HttpOnly session cookie (amplify/ui/cookie_routes.py).

Start it from the repository root, so .streamlit/config.toml and secrets.toml are found:
``streamlit run amplify/ui/server.py`` (``make run`` does).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from amplify import embedded
from amplify.ui import cookie_routes, state

APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    """Stop the embedded worker as the server shuts down.

    Under uvicorn a SIGTERM ends Python right after the server's own shutdown, before
    atexit hooks run: without this the worker's in-flight sends would not finish and its
    leases would stay behind until they expire.
    """
    yield
    await asyncio.to_thread(embedded.stop)


state.cookie_routes_served(True)
app = st.App(APP_SCRIPT, routes=cookie_routes.routes(), lifespan=_lifespan)
