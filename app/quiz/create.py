"""Making a quiz: draw the tiles from an allowed source with the model's stored scores, store the quiz."""
from __future__ import annotations

import numpy as np

from app.quiz import selection, sources
from app.runtime import state
from app.store import quizzes


def _scorer(pred, root: str):
    """Score tiles the bundle has no stored score for (8-view TTA, through the shared predictor)."""
    def score(ids: list[str]) -> np.ndarray:
        tiles = np.stack([sources.read(root, i) for i in ids])
        return state.predict(pred, tiles, tta=True).p
    return score


def make_quiz(source: sources.QuizSource, pred, *, size: int, balance: float, hard: bool, seed: int,
              creator: str = "") -> tuple[str, str]:
    """Create a quiz of ``size`` tiles from ``source``; returns (code, teacher key).

    Raises ``selection.SelectionError`` when the source cannot fill it, ``quizzes.QuizRefused`` on bad input.
    """
    tiles, _index = sources.open_root(source.root)
    threshold = pred.threshold(True)
    pool = selection.candidate_pool(tiles.ids, tiles.labels, selection.bundle_scores(pred.bundle),
                                    _scorer(pred, source.root), seed=seed)
    chosen = selection.choose(pool, int(size), float(balance), hard=bool(hard), seed=int(seed), threshold=threshold)
    spec = quizzes.QuizSpec(source_kind=source.kind, source_root=source.root, description=source.name,
                            size=len(chosen), balance=float(balance), hard=bool(hard), seed=int(seed),
                            model_sha256=pred.sha256, threshold=threshold, creator=creator)
    return quizzes.create_quiz(spec, [quizzes.TileIn(r.id, int(r.label), float(r.p)) for r in chosen.itertuples()])
