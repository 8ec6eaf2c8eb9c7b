"""The dashboard's web server: Streamlit's own ASGI app (``st.App``) serving app.py, plus the
routes that give the browser its HttpOnly session cookie (amplify/ui/cookie_routes.py).

Start it from the repository root, so .streamlit/config.toml and secrets.toml are found:
``streamlit run amplify/ui/server.py`` (``make run`` does).
"""

from pathlib import Path

import streamlit as st

from amplify.ui import cookie_routes, state

APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"

state.cookie_routes_served(True)
app = st.App(APP_SCRIPT, routes=cookie_routes.routes())
