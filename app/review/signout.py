"""The slide-level sign-out form (metastasis / no metastasis / defer, with a comment), recorded under the
reviewer's identity in the append-only sign-out table, and the next case to sign out; the Cases page and the
Slide page (for a case opened from the worklist) show the same form."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from app import store
from app.display.text import md
from app.inputs import case_open
from app.review import reviewer, scored_by
from app.review.drawn_for import pressed_on

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd


def next_to_sign_out(view: pd.DataFrame, case_id: int) -> pd.Series | None:
    """The first case after ``case_id`` in the worklist ``view``'s order (from the top again after the last) that
    is not signed out yet, or None when every other case is."""
    ids = view.id.tolist()
    start = ids.index(case_id) if case_id in ids else -1
    for k in range(1, len(ids)):
        row = view.iloc[(start + k) % len(ids)]
        if row.status != "signed out":
            return row
    return None


def open_next_case(case_id: int) -> None:
    """The Slide page's "Next case to sign out" callback: open the case after ``case_id`` that is not signed out
    yet, found when asked (the worklist is not read on every rerun of the page), or say that none is left. Only
    the cases the same model scored follow, as on the Cases page."""
    cases = store.worklist()
    mine = scored_by.same_model(cases, case_id)
    following = next_to_sign_out(mine, case_id)
    if following is None:
        model = scored_by.model_of(cases, case_id)
        whose = f" scored by {model}" if model is not None and len(scored_by.models(cases)) > 1 else ""
        st.session_state[case_open.OPEN_SAID] = (f"Every other case{whose} in the worklist is signed out.", False)
    else:
        case_open.open_case_here(int(following.id))


@dataclass(frozen=True)
class SignoutTarget:
    """The case a sign-out form was drawn for, its slide file's name, and the latest sign-out the form showed."""

    case: int
    slide: str
    last_signout: int | None


def stale_signout(pressed: SignoutTarget | None, now: SignoutTarget, history: pd.DataFrame) -> str | None:
    """Why a sign-out sent from the form ``pressed`` must not be recorded on the case ``now`` shows, whose
    sign-outs are ``history`` (oldest first); None: it may."""
    if pressed is None or (pressed.case, pressed.last_signout) == (now.case, now.last_signout):
        return None
    if pressed.case != now.case:
        return (f"that sign-out was for {md(pressed.slide)}, which is no longer the case shown (another reader's "
                f"sign-out may have moved it out of the list). Open {md(pressed.slide)} again to see its sign-outs "
                "and add yours.")
    unseen = history if pressed.last_signout is None else history[history.signout_id > pressed.last_signout]
    last = unseen.iloc[-1]
    return (f"{md(last.reviewer)} signed this case out ({store.CALL_NAMES[last.call]}) while your form was open; "
            "every sign-out is listed above. Send yours again if it stands.")


def signout_form(case_id: int, slide: str, key: str) -> None:
    """The form for case ``case_id`` (its slide file's name ``slide``); widget keys start with ``key``. Without a
    reviewer it says how to become one; a recorded sign-out reruns the page so its status follows. A sign-out
    sent from a form drawn for another case (the case shown changed under it), or before a sign-out of this case
    that it did not show, records nothing and says so."""
    earlier = store.signout_history(case_id)
    now = SignoutTarget(case_id, slide, int(earlier.signout_id.iloc[-1]) if len(earlier) else None)
    pressed = pressed_on(f"{key}-signout-case", now)
    if pressed is not None and pressed.case != case_id:  # a call chosen for one case never carries over
        for field in ("call", "comment"):
            st.session_state.pop(f"{key}-{field}", None)
    if len(earlier):
        st.markdown("\n".join(
            f"- {store.CALL_NAMES[r.call]} by {md(r.reviewer)}{' (signed in)' * bool(r.reviewer_verified)}, "
            f"{r.signed_out_at.replace('T', ' ').replace('+00:00', ' UTC')}"
            + (f": “{md(r.comment, 300)}”" if r.comment else "") for r in earlier.itertuples()),
            help="Every sign-out of this case so far, oldest first; the latest sets its status.")
    who = reviewer.reviewer()
    if who is None:
        st.warning("Enter your name in the sidebar (or sign in) to sign out a case.", icon=":material/person:")
        return
    with st.form(f"{key}-signout", clear_on_submit=True):
        # no call chosen in advance: a sign-out sent in haste must not record one the pathologist never made
        call = st.radio("Slide-level call", list(store.CALLS), format_func=store.CALL_NAMES.get, horizontal=True,
                        index=None, key=f"{key}-call")
        comment = st.text_area("Comment", key=f"{key}-comment")
        sent = st.form_submit_button(f"Sign out as {who.name}")
    stale = stale_signout(pressed, now, earlier) if sent else None
    if stale:
        st.error(f"Nothing was recorded: {stale}", icon=":material/sync_problem:")
    elif sent and call is None:
        st.error("Choose the slide-level call (metastasis, no metastasis or defer) first: nothing was recorded.",
                 icon=":material/rule:")
    elif sent:
        try:
            store.record_signout(case_id, who, call, comment)
        except store.ReviewRefused as exc:
            st.error(md(exc, 600))
        else:
            st.toast(f"{md(slide)}: {store.CALL_NAMES[call]}, recorded.")
            st.rerun()
