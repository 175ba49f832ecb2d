"""Opening a stored case in the Slide page with the tiles the batch run scored, so nothing is scored again; and
opening a slide there at one tile (a queued slide tile, seen in its slide).

The Cases page calls ``open_case``: it points the Slide page's own controls at the case (the slide folder, the
slide, the stride, TTA and tissue settings it was scored with) and remembers the case. The Slide page then asks
``stored_result`` before it scores: when the remembered case is this slide, this model and this grid, the
stored tiles are the result. The Review queue calls ``open_tile``, which opens a slide that is a stored case
the same way.
"""
from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from app import store
from app.inputs.roots import inside
from app.inputs.slide_files import SlideAccessError, resolve_in, slides_root
from model_training.bundle.contract import TILE
from model_training.bundle.files import sha256
from model_training.slides.outputs import CSV_COLUMNS
from model_training.slides.reader import SlideError, open_slide
from model_training.slides.scoring import Overview, SlideResult

OPEN_CASE = "case_open"  # the id of the case the Slide page was opened for
OPEN_PATH = "case_open_path"  # and its slide file, resolved
OPEN_AT = "case_open_at"  # (slide file resolved, x, y, width, height): a tile to open once the slide is scored
OPEN_SAID = "case_open_said"  # (what to tell, whether it is an error) after a case was asked for on the Slide page
ADDRESS_SAID = "case_address_said"  # (why the case in the address was not opened, the slide on view then)
CASE_PARAM = "case"  # the Slide page's address names the case on view (?case=ID): a bookmark or a link opens it
FOLDER = "Slide folder"  # the Slide page's source option for the slide folder
SLIDE_PAGE = "views/slide.py"


def slide_name(case: dict) -> str | None:
    """The case's slide as the Slide page lists it (relative to the slide folder), or None when the slide is
    not under the folder the app may open."""
    root = slides_root()
    path = Path(case["path"]).resolve()
    if root is None or not path.is_file() or not inside(path, [root]):
        return None
    return str(path.relative_to(root))


def _not_in_folder(name: str) -> str:
    return (f"{name}: is not in the slide folder ({slides_root() or 'PATHREVIEW_SLIDES is not set'}); the app opens "
            "slides only from there")


def _point_at(name: str, state: dict) -> None:
    """Point the Slide page's controls at the folder slide ``name``, with ``state`` besides: before they are drawn
    (they cannot be changed once drawn), so from another page or from a button's callback."""
    st.session_state.update({"slide-source": FOLDER, "slide-name": name, **state})


def _point_at_case(case: dict | None, asked: object) -> str | None:
    """Point the Slide page's controls at ``case`` as the batch scored it; why not, when there is no such case
    (``asked`` names the one asked for) or its slide is not in the slide folder."""
    if case is None:
        return f"There is no case {asked} in the review store."
    name = slide_name(case)
    if name is None:
        return _not_in_folder(case["slide"])
    if not same_file(case):
        return (f"{case['slide']}: the file has changed since the batch run scored it (its sha256 is no longer the "
                "case's), so it cannot be signed out as this case; score it again with the slides command (--db) "
                "to add the new file to the worklist")
    _point_at(name, _case_state(case))
    return None


def same_file(case: dict) -> bool:
    """Whether the file at the case's path is still the one the batch run scored (the same sha256): a slide
    scanned again under the same name is another slide, with other tiles."""
    path = Path(case["path"]).resolve()
    try:
        info = path.stat()
        return _file_sha256(str(path), info.st_size, info.st_mtime_ns) == case["sha256"]
    except OSError:
        return False


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    # keyed by size and modification time too: a file written again is hashed again, an unchanged one once
    return sha256(Path(path))


def open_case_here(case_id: int) -> None:
    """Open the case ``case_id`` on the Slide page from a button's callback there; why not is left under
    ``OPEN_SAID``."""
    problem = _point_at_case(store.get_case(case_id), case_id)
    if problem:
        st.session_state[OPEN_SAID] = (problem, True)
    else:
        st.query_params[CASE_PARAM] = str(case_id)  # or the address would open the case on view again


def follow_address() -> None:
    """Open the case the Slide page's address names (a bookmark, a shared link) when it is not the case open,
    before the page's controls are drawn; when it cannot, drop it from the address and keep why not for
    ``address_problem``."""
    want = st.query_params.get(CASE_PARAM)
    if not want or str(st.session_state.get(OPEN_CASE)) == want:
        return
    if not store.open_store().ok:
        problem = f"case {want}: the review store cannot be opened, so its cases cannot be either"
    else:
        problem = _point_at_case(store.get_case(int(want)) if want.isdigit() else None, want)
    if problem:
        del st.query_params[CASE_PARAM]
        st.session_state[ADDRESS_SAID] = (problem, None)


def address_problem(name: str) -> str | None:
    """Why the case the page's address named was not opened, said for as long as the slide ``name`` (the one on
    view then) stays on view: the page reruns once that slide is scored, and the address no longer names it."""
    said = st.session_state.get(ADDRESS_SAID)
    if said is None:
        return None
    if said[1] is None:
        st.session_state[ADDRESS_SAID] = said = (said[0], name)
    if said[1] != name:
        del st.session_state[ADDRESS_SAID]
        return None
    return said[0]


def keep_address(path: Path) -> None:
    """The Slide page's address names the case on view, and no case when the slide on view is not one."""
    case_id = opened(path)
    if case_id is None:
        st.query_params.pop(CASE_PARAM, None)
    elif st.query_params.get(CASE_PARAM) != str(case_id):
        st.query_params[CASE_PARAM] = str(case_id)


def _case_state(case: dict) -> dict:
    """The Slide page's state for showing ``case`` as the batch scored it: its settings, and the case remembered."""
    settings = case["summary"].get("settings") or {}
    tissue = settings.get("tissue") or {}
    state = {"slide-stride": settings.get("stride", 96), "slide-tta": bool(settings.get("tta", False)),
             OPEN_CASE: int(case["id"]), OPEN_PATH: str(Path(case["path"]).resolve())}
    for key, field in (("slide-minsat", "min_saturation"), ("slide-maxsat", "max_saturation"),
                       ("slide-mintissue", "min_tissue")):
        if field in tissue:
            state[key] = float(tissue[field])
    return state


def open_case(case: dict) -> str | None:
    """Set the Slide page up for ``case`` and switch to it; returns why not when the slide cannot be opened."""
    problem = _point_at_case(case, case["id"])
    if problem is None:
        st.switch_page(SLIDE_PAGE)
    return problem


def opened(path: Path) -> int | None:
    """The id of the case last opened from the Cases page when it is the slide at ``path``, else None."""
    if st.session_state.get(OPEN_PATH) != str(Path(path).resolve()):
        return None
    return st.session_state.get(OPEN_CASE)


def stored_result(path: Path, ov: Overview, model_sha256: str) -> SlideResult | None:
    """The opened case's stored result for this slide, when it was scored by this model on this grid."""
    case_id = st.session_state.get(OPEN_CASE)
    if case_id is None:
        return None
    case = store.get_case(case_id)
    if case is None or case["model_sha256"] != model_sha256 or Path(case["path"]).resolve() != Path(path).resolve():
        return None
    tiles = case["tiles"]
    if len(tiles) != ov.grid.n or not ((tiles.x.to_numpy() == ov.grid.xs).all() and (tiles.y.to_numpy() == ov.grid.ys).all()):
        return None  # another grid (settings changed since): score as usual
    frame = tiles[CSV_COLUMNS + [c for c in tiles.columns if c not in CSV_COLUMNS]]
    return SlideResult(frame.reset_index(drop=True), ov, case["summary"])


def folder_slide_of(item: dict, target_mpp: float) -> str | None:
    """The slide-folder name of a queued slide tile's slide when the file there still holds the queued pixels at
    the item's box, else None: an uploaded slide may share a name with another file in the folder."""
    root = slides_root()
    if root is None or item.get("source") != "slide" or not item.get("slide"):
        return None
    try:
        path = resolve_in(root, item["slide"])
        with open_slide(path, target_mpp=target_mpp) as slide:
            tile = slide.read_scaled(int(item["x"]), int(item["y"]), int(item["width"]), int(item["height"]),
                                     target_mpp, (TILE, TILE))
    except (SlideAccessError, SlideError, OSError):
        return None
    return str(item["slide"]) if store.pixel_sha256(tile) == item.get("pixel_sha256") else None


def open_tile(name: str, x: int, y: int, width: int, height: int, model_sha256: str) -> str | None:
    """Open the slide ``name`` (as the slide folder lists it) in the Slide page with the tile at level-0 box
    (x, y, width, height) opened once it is scored; returns why not when the slide cannot be opened. A slide a
    batch run scored with this model opens as its case, with the stored tiles: a large slide is not scored again."""
    root = slides_root()
    try:
        path = resolve_in(root, name) if root is not None else None
    except SlideAccessError as exc:
        return str(exc)
    if path is None or not path.is_file():
        return _not_in_folder(name)
    case_id = store.case_of_file(path, model_sha256)
    case = store.get_case(case_id) if case_id is not None else None
    state = _case_state(case) if case is not None and same_file(case) else {}
    _point_at(name, {**state, OPEN_AT: (str(path.resolve()), int(x), int(y), int(width), int(height))})
    st.switch_page(SLIDE_PAGE)
    return None


def tile_request(path: Path) -> tuple[int, int, int, int] | None:
    """The box of the tile to open on the slide at ``path``, once (the request is then forgotten)."""
    want = st.session_state.get(OPEN_AT)
    if not want or want[0] != str(Path(path).resolve()):
        return None
    del st.session_state[OPEN_AT]
    return want[1:]
