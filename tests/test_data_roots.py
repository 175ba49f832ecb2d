"""Every file the app opens lies inside the operator's folders: links inside an allowed dataset or slide folder
that lead elsewhere are neither opened nor listed, and refusals say nothing of where they lead."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.inputs import datasets, roots, slide_files


@pytest.fixture
def linked(tmp_path, data_root, monkeypatch) -> dict[str, Path]:
    """An allowed root holding a class-folder dataset whose ``0/`` links to a folder outside it and whose
    ``1/`` holds real tiles plus one file linked from outside; beside it, the outside folder."""
    outside, allowed = tmp_path / "outside", tmp_path / "allowed"
    tiles = sorted((data_root / "valid").glob("*.jpg"))[:12]
    (outside / "0").mkdir(parents=True)
    for p in tiles[:6]:
        shutil.copy(p, outside / "0" / p.name)
    ds = allowed / "cases"
    (ds / "1").mkdir(parents=True)
    for p in tiles[6:10]:
        shutil.copy(p, ds / "1" / p.name)
    (ds / "0").symlink_to(outside / "0", target_is_directory=True)
    shutil.copy(tiles[10], outside / tiles[10].name)
    (ds / "1" / tiles[10].name).symlink_to(outside / tiles[10].name)
    monkeypatch.setenv(roots.DATA_ENV, str(allowed))
    monkeypatch.delenv(roots.ROOTS_ENV, raising=False)
    return {"dataset": ds, "outside": outside, "inside": [ds / "1" / p.name for p in tiles[6:10]]}


def test_a_dataset_opens_only_the_files_inside_the_allowed_folders(linked):
    source = datasets.open_dataset(str(linked["dataset"]))
    assert sorted(source.ids) == sorted(p.stem for p in linked["inside"])
    assert set(source.labels.tolist()) == {1}
    said = " ".join(str(p) for p in source.problems)
    assert "7 file(s) link outside the folders this server may open" in said
    assert str(linked["outside"]) not in said


def test_the_slide_folder_lists_and_opens_nothing_beyond_it(tmp_path, slides_root):
    outside, root = tmp_path / "outside", tmp_path / "slides"
    outside.mkdir()
    root.mkdir()
    svs = slides_root / "CMU-1-Small-Region.svs"
    (outside / "secret.svs").symlink_to(svs)
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "linked.svs").symlink_to(outside / "secret.svs")
    shutil.copy(svs, root / "here.svs")
    assert slide_files.list_slides(root) == ["here.svs"]
    for name in ("elsewhere/secret.svs", "linked.svs", "../outside/secret.svs"):
        with pytest.raises(slide_files.SlideAccessError) as refused:
            slide_files.resolve_in(root, name)
        assert str(outside) not in str(refused.value) and "outside the slide folder" in str(refused.value)
    assert slide_files.resolve_in(root, "here.svs") == (root / "here.svs").resolve()


def test_an_overlong_typed_path_is_refused_with_the_reason(linked):
    with pytest.raises(datasets.DatasetError, match="File name too long") as refused:
        datasets.open_dataset(str(linked["dataset"] / ("x" * 5000)))
    assert len(str(refused.value)) < 400
