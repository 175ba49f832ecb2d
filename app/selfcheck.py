"""``python -m app.selfcheck``: the app as a reviewer first meets it, run headless by Streamlit's AppTest.

It opens the first page, scores the example tiles (results table and detail view with Grad-CAM), then shows
every page; any exception or error message on the way fails it (run it with PATHREVIEW_DEBUG=1 so page errors
raise). It prints which heavy libraries the first page and the whole tour imported, and the engine and model
sha256 the app scored with. CI runs it inside the container image; a test runs it on the working tree.
"""
from __future__ import annotations

import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent / "main.py"
# pandas is kept off the first page (app.warmup imports it after), scipy.ndimage off the tile pages
# (explain.linear_zoom); TensorFlow is never needed with model.onnx
FIRST_PAGE_HEAVY = ("pandas", "scipy.ndimage", "tensorflow", "keras")
# Scoring a tile and its detail view need neither scipy module (0.3 s each to import on a 2-core machine):
# Predictor.calibrate and explain.linear_zoom are plain numpy.
TILE_PATH_HEAVY = ("scipy.special", "scipy.ndimage", "tensorflow", "keras")
NEVER_WITH_ONNX = ("tensorflow", "keras", "tf_keras_vis")


def _problems(at, where: str) -> list[str]:
    return [f"{where}: {e.message}" for e in at.exception] + [f"{where}: {e.value}" for e in at.error]


def main() -> int:
    from streamlit.testing.v1 import AppTest

    from app.runtime import model_loader, state, warmup

    warmup.LATER, warmup.WARM_STORE = (), False  # the background work would race the first-page check
    at = AppTest.from_file(str(MAIN), default_timeout=300).run()
    problems = _problems(at, "first page")
    if not any(b.label == "Try the example tiles" for b in at.button):
        problems.append("first page: no 'Try the example tiles' button")
    first_page = sorted(m for m in FIRST_PAGE_HEAVY if m in sys.modules)
    at.button(key="analyze-examples").click().run()
    problems += _problems(at, "example tiles")
    if not any(s.value.startswith("Tile detail") for s in at.subheader):
        problems.append("example tiles: no detail view")
    tile_path = sorted(m for m in TILE_PATH_HEAVY if m in sys.modules)
    pages = sorted((MAIN.parent / "views").glob("*.py"))
    for page in pages:
        at.switch_page(f"views/{page.name}").run()
        problems += _problems(at, page.name)
    if problems:
        print("the app failed: " + "; ".join(problems), file=sys.stderr)
        return 1
    pred = model_loader.start(str(state.bundle_path())).result()  # the predictor the pages scored with
    print(f"pages shown: {len(pages)}")
    print("first page loaded:", first_page)
    print("scoring and detail view loaded:", tile_path)
    print("loaded:", sorted(m for m in NEVER_WITH_ONNX if m in sys.modules))
    print(pred.engine.name, pred.sha256)
    return 0


if __name__ == "__main__":
    sys.exit(main())
