"""Who is reviewing: the verified identity from Streamlit's OpenID Connect sign-in when ``[auth]`` is
configured in ``.streamlit/secrets.toml``, else a name the reviewer types (required, and marked unverified)."""
from __future__ import annotations

import streamlit as st

from app.store import Reviewer

NAME_KEY = "reviewer"
UNVERIFIED = ("Identities are not verified: no sign-in provider is configured, so reviews carry the name "
              "typed here.")


def auth_configured() -> bool:
    """True when secrets.toml has an ``[auth]`` section (no secrets file at all is fine: False)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file, or one that does not parse: no sign-in
        return False


def current() -> Reviewer | None:
    """The reviewer of this session, or None (not signed in / no name typed)."""
    if auth_configured():
        user = st.user
        if not user.is_logged_in:
            return None
        sub = str(user.get("sub") or "")
        name = str(user.get("email") or user.get("name") or sub)
        return Reviewer(name, verified=True, subject=sub or None)
    name = str(st.session_state.get(NAME_KEY) or "").strip()
    return Reviewer(name) if name else None


def sidebar() -> Reviewer | None:
    """Sign-in (or the name field) in the sidebar; the current reviewer."""
    if auth_configured():
        if st.user.is_logged_in:
            who = current()
            st.caption(f"Signed in as **{who.name}** (verified).")
            if st.button("Sign out", key="logout"):
                st.logout()
            return who
        st.caption("Sign in to record reviews under your verified identity.")
        if st.button("Sign in", key="login", type="primary"):
            st.login()
        return None
    st.text_input("Reviewer name (required to record reviews)", key=NAME_KEY, placeholder="name or initials",
                  help="Stored with each review you record.")
    st.caption(UNVERIFIED)
    return current()
