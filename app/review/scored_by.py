"""Which model scored the worklist's cases. A slide scored by two models (a lab that scores its slides again with
a new model keeps both) is a case of each, with its own sign-outs: the pages show one model's cases at a time."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

UNNAMED = "unnamed model"  # a batch summary without a model name


def models(cases: pd.DataFrame) -> list[str]:
    """The models that scored ``cases`` (a worklist), the one with the latest scoring first."""
    latest = cases.assign(model=cases.model.fillna(UNNAMED)).groupby("model").created_at.max()
    return latest.sort_values(ascending=False, kind="stable").index.tolist()


def scored_by(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The rows of ``frame`` (worklist or sign-outs, each with a ``model`` column) that ``model`` scored."""
    return frame[frame.model.fillna(UNNAMED) == model] if not frame.empty else frame


def model_of(cases: pd.DataFrame, case_id: int) -> str | None:
    """The model that scored case ``case_id`` of ``cases`` (a worklist), or None when it is not among them."""
    model = cases.model[cases.id == case_id].fillna(UNNAMED)
    return model.iloc[0] if len(model) else None


def same_model(cases: pd.DataFrame, case_id: int) -> pd.DataFrame:
    """The cases of ``cases`` (a worklist) scored by the model that scored case ``case_id``; all of them when
    that case is not among them."""
    model = model_of(cases, case_id)
    return scored_by(cases, model) if model is not None else cases
