"""Accounts (admin): connect, test, reconnect and remove the team's social accounts.

Credentials are typed into password fields, handed to the accounts service (which stores
them encrypted) and never shown again: the widgets are cleared after every attempt.
"""

from __future__ import annotations

import streamlit as st

from amplify import queries, simulated
from amplify.errors import AmplifyError
from amplify.models import Account
from amplify.permissions import Action
from amplify.ui import state, widgets
from connectors import registry
from connectors.base import ConnectorError, CredentialField, PlatformInfo


def _forms() -> dict[str, PlatformInfo]:
    """A connect form per offered platform, as its connector module describes it."""
    return {p: registry.info(p) for p in registry.platforms()}


def _credential_fields(platform: str) -> tuple[CredentialField, ...]:
    try:
        return registry.info(platform).credentials
    except ValueError:  # an account of a platform no longer offered
        return ()


def _test(account_id: int) -> tuple[bool, str]:
    from amplify import accounts

    try:
        with state.db() as s:
            identity = accounts.test_account(s, state.actor(s), account_id)
    except (AmplifyError, ConnectorError) as exc:
        return False, str(exc)
    with state.db() as s:
        acct = s.get(Account, account_id)
        if acct is not None and acct.status != "ok":
            return False, acct.last_error or "the platform refused the credentials"
    return True, f"signed in as {identity.handle}"


def _connect(platform: str) -> None:
    from amplify import accounts

    form = registry.info(platform)
    handle = st.session_state.get(f"acc_{platform}_handle", "").strip()
    service = st.session_state.get(f"acc_{platform}_service", form.form_service_url)
    scope = f"acc_{platform}"
    creds = {
        f.key: st.session_state.get(widgets.secret_key(scope, f.key), "") for f in form.credentials
    }
    widgets.clear_secret_fields(scope)
    try:
        with state.db() as s:
            acct = accounts.add_account(
                s,
                state.actor(s),
                platform=platform,
                handle=handle,
                service_url=service or "",
                credentials=creds,
                owner_id=st.session_state.get(f"acc_{platform}_owner"),
                amplify_opt_in=bool(st.session_state.get(f"acc_{platform}_optin")),
                x_plan=st.session_state.get("acc_x_plan") if platform == "x" else None,
            )
            s.flush()
            account_id = acct.id
    except (AmplifyError, ConnectorError) as exc:
        widgets.flash_error(exc)
        st.rerun()
    # Saved: a clean form for the next account (the secret fields were cleared above).
    st.session_state[f"acc_{platform}_reset"] = True
    ok, detail = _test(account_id)
    if ok:
        label = widgets.plain(widgets.account_label(platform, handle))
        widgets.flash(f"Connected {label}: {widgets.plain(detail)}.")
    else:
        widgets.flash(
            f"Saved {widgets.plain(widgets.account_label(platform, handle))}, but the platform "
            f"refused the sign-in: {widgets.plain(detail)}. Check the credentials and use "
            "Reconnect, or remove it.",
            "error",
        )
    st.rerun()


def _reconnect(acct: Account) -> None:
    from amplify import accounts

    fields = _credential_fields(acct.platform)
    scope = f"re_{acct.id}"
    creds = {f.key: st.session_state.get(widgets.secret_key(scope, f.key), "") for f in fields}
    widgets.clear_secret_fields(scope)
    try:
        with state.db() as s:
            accounts.update_credentials(s, state.actor(s), acct.id, credentials=creds)
    except (AmplifyError, ConnectorError) as exc:
        widgets.flash_error(exc)
        st.rerun()
    ok, detail = _test(acct.id)
    if ok:
        widgets.flash(f"Reconnected {widgets.plain(acct.label)}: {widgets.plain(detail)}.")
    else:
        refusal = f"{widgets.plain(acct.label)}: {widgets.plain(detail)}"
        widgets.flash(f"The platform still refuses {refusal}", "error")
    st.rerun()


def _remove(account_id: int, force: bool) -> None:
    from amplify import accounts

    with state.db() as s:
        accounts.remove_account(s, state.actor(s), account_id, force=force)


def _x_plan_picker(key: str, current: str) -> str:
    from amplify import ratelimit

    plans = list(ratelimit.X_PLANS)
    choice: str = st.selectbox(
        "X API plan of the app behind this account",
        plans,
        index=plans.index(current),
        format_func=ratelimit.describe_x_plan,
        key=key,
        help="Amplify sends no more posts a day than your plan allows; when X says "
        "otherwise, X's own figure wins. Check the plan in the X developer portal.",
    )
    return choice


def _save_x_plan(account_id: int, plan: str) -> None:
    from amplify import accounts

    with state.db() as s:
        accounts.set_x_plan(s, state.actor(s), account_id, plan)


def _reset_form(platform: str) -> None:
    """Empty the connect form after an account was saved. Done before the widgets are drawn:
    a value removed after drawing would come back from the browser on the next run."""
    if st.session_state.pop(f"acc_{platform}_reset", False):
        st.session_state[f"acc_{platform}_handle"] = ""
        st.session_state[f"acc_{platform}_service"] = registry.info(platform).form_service_url
        st.session_state[f"acc_{platform}_owner"] = None
        st.session_state[f"acc_{platform}_optin"] = False


def _account_card(acct: Account, tz: object) -> None:
    with st.container(border=True):
        c = st.columns([3, 1, 1, 1])
        owner = f" · advocate: {widgets.plain(acct.owner.name)}" if acct.owner is not None else ""
        name = widgets.plain(widgets.account_label(acct.platform, acct.handle))
        c[0].markdown(f"**{name}**{owner}")
        c[0].caption(
            simulated.followers(acct.followers_count, acct.platform)
            + (" · opted in to amplify" if acct.amplify_opt_in else "")
            + (f" · {widgets.plain(acct.service_url)}" if acct.service_url else "")
        )
        c[1].markdown(widgets.badge(acct.status))
        if c[2].button("Test", key=f"test_{acct.id}"):
            ok, detail = _test(acct.id)
            if ok:
                widgets.flash(f"{widgets.plain(acct.label)} works: {widgets.plain(detail)}.")
                st.rerun()
            st.error(f"{widgets.plain(acct.label)}: {widgets.plain(detail)}")
        if acct.last_error and acct.status != "ok":
            st.warning(f"Last error: {widgets.plain(acct.last_error)}")
        confirm = c[3].checkbox("Sure?", key=f"rmc_{acct.id}")
        force = c[3].checkbox(
            "Also cancel its scheduled sends",
            key=f"rmf_{acct.id}",
            help="Needed when stories are still scheduled on this account.",
        )
        if c[3].button("Remove", key=f"rm_{acct.id}", disabled=not confirm) and widgets.run_action(
            lambda: _remove(acct.id, force), f"Removed {widgets.plain(acct.label)}."
        ):
            st.rerun()
        if acct.platform == "x":
            from amplify import ratelimit

            plan = _x_plan_picker(f"plan_{acct.id}", ratelimit.x_plan_of(acct.options))
            saved = f"Saved the X plan of {widgets.plain(acct.label)}."
            if st.button("Save plan", key=f"plan_save_{acct.id}") and widgets.run_action(
                lambda: _save_x_plan(acct.id, plan), saved
            ):
                st.rerun()
        fields = _credential_fields(acct.platform)
        if fields:
            with st.expander("Reconnect with new credentials"):
                for f in fields:
                    st.text_input(
                        f.label, type="password", key=widgets.secret_key(f"re_{acct.id}", f.key)
                    )
                if st.button("Reconnect", key=f"re_{acct.id}"):
                    _reconnect(acct)


def render() -> None:
    widgets.guard(Action.MANAGE_ACCOUNTS)
    st.title("Accounts")
    tz = widgets.workspace_tz()
    from amplify import users

    with state.db() as s:
        accts = list(queries.accounts(s))
        people = list(users.list_users(s, include_inactive=False))
        s.expunge_all()
    forms = _forms()
    tabs = st.tabs([form.label for form in forms.values()])
    for tab, (platform, form) in zip(tabs, forms.items(), strict=True):
        with tab:
            mine = [a for a in accts if a.platform == platform]
            if not mine:
                st.caption("No account connected here yet.")
            for acct in mine:
                _account_card(acct, tz)
            st.subheader("Connect an account")
            _reset_form(platform)
            st.markdown(form.steps)
            st.text_input(form.handle_label, key=f"acc_{platform}_handle")
            if form.service_label:
                st.session_state.setdefault(f"acc_{platform}_service", form.form_service_url)
                st.text_input(form.service_label, key=f"acc_{platform}_service")
            for f in form.credentials:
                st.text_input(
                    f.label, type="password", key=widgets.secret_key(f"acc_{platform}", f.key)
                )
            if platform == "x":
                from amplify import ratelimit

                _x_plan_picker("acc_x_plan", ratelimit.DEFAULT_X_PLAN)
            owners: dict[int | None, str] = {None: "The organisation (publishes the stories)"}
            owners.update({u.id: f"{u.name} (their own, for amplifying)" for u in people})
            st.selectbox(
                "Whose account is it?",
                list(owners),
                format_func=owners.__getitem__,
                key=f"acc_{platform}_owner",
            )
            st.checkbox(
                "Reshare the team's approved stories from it (amplify)",
                key=f"acc_{platform}_optin",
            )
            if st.button("Connect and test", key=f"connect_{platform}", type="primary"):
                _connect(platform)
    advocates = [a for a in accts if a.amplify_opt_in]
    st.subheader("Advocates who opted in to amplify")
    if not advocates:
        st.caption("Nobody has opted in yet.")
    for a in advocates:
        who = widgets.plain(a.owner.name) if a.owner is not None else "the organisation"
        st.markdown(f"- {widgets.plain(widgets.account_label(a.platform, a.handle))} — {who}")


if __name__ == "__main__":
    render()
