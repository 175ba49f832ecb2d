"""Who is reviewing: the verified identity from Streamlit's OpenID Connect sign-in when ``[auth]`` is
configured in ``.streamlit/secrets.toml``, else a name the reviewer types (required, and marked unverified).

A signed-in reviewer *is* the provider's issuer and subject: two accounts are two reviewers whatever their
e-mail or name says. The e-mail is shown (and stored as the reviewer's name) only when the provider says it
is verified; otherwise the name the provider gives, else the subject."""
from __future__ import annotations

import streamlit as st

from app.display.text import md
from app.store import Reviewer

NAME_KEY = "reviewer"
KEPT_KEY = "reviewer_kept"  # the typed name outside the widget: a page switch drops the widget's own state
MAX_TYPED_NAME = 64  # a reader's name labels tables and the kappa map: longer ones are shortened
UNVERIFIED = ("Identities are not verified: no sign-in provider is configured, so reviews carry the name "
              "typed here.")


def auth_configured() -> bool:
    """True when secrets.toml has an ``[auth]`` section (no secrets file at all is fine: False)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file, or one that does not parse: no sign-in
        return False


def email_verified(claims) -> bool:
    """The ``email_verified`` claim as a boolean (some providers send the string "true")."""
    value = claims.get("email_verified")
    return value is True or str(value).strip().lower() == "true"


def from_claims(claims) -> Reviewer | None:
    """The reviewer an ID token's claims name: issuer + subject as identity, a verified e-mail (else the name,
    else the subject) as what is shown. None without a subject."""
    sub = str(claims.get("sub") or "").strip()
    if not sub:
        return None
    issuer = str(claims.get("iss") or claims.get("provider") or "").strip()
    email = str(claims.get("email") or "").strip()
    shown = email if email and email_verified(claims) else str(claims.get("name") or "").strip() or sub
    return Reviewer(shown, verified=True, subject=f"{issuer}|{sub}")


def _typed() -> str:
    """The name typed in the sidebar, white space folded (before it is kept to ``MAX_TYPED_NAME``)."""
    return " ".join(str(st.session_state.get(NAME_KEY) or "").split())


def current() -> Reviewer | None:
    """The reviewer of this session, or None (not signed in / no name typed)."""
    if auth_configured():
        user = st.user
        if not user.is_logged_in:
            return None
        return from_claims(user)
    name = _typed()[:MAX_TYPED_NAME]
    return Reviewer(name) if name else None


NAME_PARAM = "reviewer"


def _name_to_address() -> None:
    name = _typed()
    if name:
        st.query_params[NAME_PARAM] = name[:MAX_TYPED_NAME]
    else:
        st.query_params.pop(NAME_PARAM, None)


def sidebar() -> Reviewer | None:
    """Sign-in (or the name field) in the sidebar; the current reviewer."""
    if auth_configured():
        if st.user.is_logged_in:
            who = current()
            if who is None:
                st.caption("The sign-in provider sent no subject; sign out and in again.")
                return None
            how = ("verified e-mail" if email_verified(st.user) and who.name == str(st.user.get("email") or "")
                   else f"account {who.account}; no verified e-mail")
            st.caption(f"Signed in as **{md(who.name)}** ({md(how)}).")
            if st.button("Sign out", key="logout"):
                st.logout()
            return who
        st.caption("Sign in to record reviews under your verified identity.")
        if st.button("Sign in", key="login", type="primary"):
            st.login()
        return None
    if NAME_KEY not in st.session_state:
        if st.session_state.get(KEPT_KEY):
            # st.switch_page (a case or a queued tile opened in the Slide page) drops the widget's state
            st.session_state[NAME_KEY] = st.session_state[KEPT_KEY]
        elif st.query_params.get(NAME_PARAM):
            # a reload starts a new session: the typed name comes back from the page address
            st.session_state[NAME_KEY] = st.query_params[NAME_PARAM][:MAX_TYPED_NAME]
    st.text_input("Reviewer name (required to record reviews)", key=NAME_KEY, placeholder="name or initials",
                  help=f"Stored with each review you record; up to {MAX_TYPED_NAME} characters. It is kept in "
                       "the page address, so a reload keeps it.", on_change=_name_to_address)
    st.session_state[KEPT_KEY] = st.session_state.get(NAME_KEY) or ""
    if _typed() and st.query_params.get(NAME_PARAM) != _typed()[:MAX_TYPED_NAME]:
        _name_to_address()  # moving to another page leaves the address without it
    who = current()
    if who and len(_typed()) > MAX_TYPED_NAME:
        st.caption(f"Names are kept to {MAX_TYPED_NAME} characters: reviews are recorded as **{md(who.name)}**.")
    st.caption(UNVERIFIED)
    return who
