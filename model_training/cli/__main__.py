"""``python -m model_training.cli``: list the commands with their one-line summaries."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def commands() -> dict[str, str]:
    """Each command module's name and the first line of its docstring."""
    out = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "quiet":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        out[path.stem] = doc.splitlines()[0] if doc else ""
    return out


def main() -> int:
    print("usage: python -m model_training.cli.<command> [--help]\n")
    for name, summary in commands().items():
        print(f"  {name:<15} {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
