"""Amplify dashboard: the router. Sign-in, then the pages each role may use.

Served by `amplify/ui/server.py` (`make run`), which adds the routes that set the HttpOnly sign-in
cookie. Pages live in amplify/ui/pages/; each one checks the signed-in person's role on every run.
"""

import streamlit as st

from amplify import crypto, logs, notify
from amplify.config import get_settings
from amplify.errors import ConfigError
from amplify.ui import auth, nav, widgets

# An emoji icon: the browser draws it itself. A :material/ icon makes every visitor's browser
# fetch the favicon from fonts.gstatic.com (Google), which this self-hosted tool should not.
st.set_page_config(page_title="Amplify", page_icon="📣", layout="wide")
logs.configure()  # quiet by default (AMPLIFY_LOG_LEVEL), secrets masked, with or without a worker
notify.listen()  # committed workflow events (a story submitted...) become notifications

try:  # a missing or wrong secret key: say where it goes instead of failing later
    crypto.verify_key()
except ConfigError as exc:
    st.error(f"Amplify cannot start: {exc}")
    st.stop()

if get_settings().embedded_worker:
    from amplify import embedded

    embedded.ensure_started()

widgets.keep_typed_values()
user = auth.gate()
pages = nav.pages_for(user, checklist=nav.checklist_for(user))
page = st.navigation(pages, expanded=True)  # every page in view: admins have 13
nav.open_wanted_page(pages)
auth.sidebar(user)
# One container whether or not there are messages, so the page below keeps its place:
# otherwise an open expander or chosen tab resets on the run after a message shows.
with st.container():
    widgets.show_flashes()
page.run()
