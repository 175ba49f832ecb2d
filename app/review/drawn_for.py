"""What a press is about. Streamlit reports a form's submit or a button's press in the run after the one that drew
it, and by then the store may have moved (another reader's sign-out, a review in another tab): the page must act
on what the pressed widget showed, not on what this run would show in its place."""
from __future__ import annotations

from typing import TypeVar

import streamlit as st

T = TypeVar("T")


def pressed_on(key: str, now: T) -> T | None:
    """Remember ``now`` as what the widget under ``key`` is drawn for in this run, and return what it was drawn for
    in the run before (what a press arriving in this run is about); None before its first drawing."""
    before = st.session_state.get(key)
    st.session_state[key] = now
    return before
