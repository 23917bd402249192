"""Write the generated documentation: man pages (man/) and shell completion (completions/).

Usage: python -m faceunlock.commands.gendocs [--out DIR]   (default: the repository root)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
COMPLETIONS = {"faceunlock.bash": "bash", "_faceunlock": "zsh"}


def generated() -> dict[str, str]:
    """{relative path: text} of every generated file."""
    from faceunlock.cli import build_parser
    from faceunlock.commands import completion, manpages

    files = {f"man/{name}": make() for name, make in manpages.PAGES.items()}
    parser = build_parser()
    for name, shell in COMPLETIONS.items():
        files[f"completions/{name}"] = getattr(completion, shell)(parser)
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m faceunlock.commands.gendocs", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, default=ROOT, help="where man/ and completions/ go")
    args = p.parse_args(argv)
    for rel, text in generated().items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
