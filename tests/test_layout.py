"""The layout shows the design: no import circles, each subpackage imports only the jobs below it, library code
never imports a command, ``model_training`` never imports ``app``, and no module grows past a readable size."""
from __future__ import annotations

import pytest
from import_graph import REPO, cycles, graph, modules

# Lowest first: a subpackage may import itself and those before it.
MODEL_LAYERS = ("bundle", "data", "inference", "evaluation", "slides", "export", "training", "cli")
APP_LAYERS = ("store", "display", "runtime", "inputs", "review", "quiz", "views")
# The server start imports, in the background, every module the first page needs, whatever its layer.
LAYER_EXCEPTIONS = {"app.runtime.server_start"}
MAX_LINES = 400

EDGES = graph()


def _layer(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if parts[-1] == "__main__":
        return None  # ``python -m package``: a command's entry point, above every layer like the commands
    layers = MODEL_LAYERS if parts[0] == "model_training" else APP_LAYERS
    if len(parts) < 2 or parts[1] not in layers:
        return None  # a package front or an entry point (app.main, app.selfcheck): above every layer
    return parts[0], layers.index(parts[1])


def test_the_graph_sees_every_module_and_its_imports():
    """Guards the checks below: a graph reader that found nothing would pass them all."""
    assert {"model_training.inference.predictor", "app.runtime.state", "app.store.db"} <= set(EDGES)
    assert "model_training.bundle.files" in EDGES["model_training.inference.predictor"]
    assert "model_training.inference.predictor" in EDGES["model_training.training.finish"]


def test_there_is_no_import_circle():
    assert cycles(EDGES) == []


def test_a_circle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["model_training", "app"])
def test_each_subpackage_imports_only_the_layers_below_it(package):
    wrong = []
    for module, targets in EDGES.items():
        if not module.startswith(package + ".") or module in LAYER_EXCEPTIONS or _layer(module) is None:
            continue
        root, level = _layer(module)
        for target in targets:
            there = _layer(target)
            if there and there[0] == root and there[1] > level:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_library_code_never_imports_a_command_and_model_training_never_imports_app():
    wrong = [f"{m} imports {t}" for m, ts in EDGES.items() for t in ts
             if (t.startswith("model_training.cli") and not m.startswith("model_training.cli")
                 and not m.endswith(".__main__"))
             or (m.startswith("model_training") and t.startswith("app"))]
    assert not wrong, "\n".join(wrong)


def test_every_command_is_a_thin_module_with_a_main():
    commands = [p for p in (REPO / "model_training" / "cli").glob("*.py") if not p.stem.startswith("_")]
    assert len(commands) >= 11
    for path in commands:
        if path.stem == "quiet":
            continue
        text = path.read_text(encoding="utf-8")
        assert "def main(" in text and 'if __name__ == "__main__"' in text, path.name
        assert len(text.splitlines()) <= 120, f"{path.name}: a command parses and calls; the work is a library's"


def test_no_module_is_over_the_size_a_reader_takes_in():
    long = {str(p.relative_to(REPO)): n for p in modules().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long
