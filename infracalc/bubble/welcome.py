"""The welcome notebooks, French and English, put into a bubble's work folder at its first start.

They say, with cells that run, what a bubble is for: calling an API the project was approved for
(through the egress proxy), reading the project's released imports, and sending a table out for
review with ``infracalc export``. They are copied once: a marker file remembers which notebooks a
folder was given, so a notebook the person edited is never overwritten and one they deleted does
not come back. The local spawner calls :func:`give_welcome_notebooks` before each start; the
bubble image runs ``python -m infracalc.bubble.welcome <folder>`` from its start hooks.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

#: The notebooks shipped with the package, by the name they get in the work folder.
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
WELCOME_NOTEBOOKS = ("Bienvenue.ipynb", "Welcome.ipynb")
#: The marker, in the work folder, listing the notebooks already given (one name a line).
MARKER = ".infracalc-welcome"


def give_welcome_notebooks(folder: Path) -> list[Path]:
    """Copy each welcome notebook ``folder`` was never given and does not hold; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    given = set(marker.read_text(encoding="utf-8").split()) if marker.exists() else set()
    written = []
    for name in WELCOME_NOTEBOOKS:
        target = folder / name
        if name in given or target.exists():
            continue
        shutil.copyfile(NOTEBOOKS / name, target)
        written.append(target)
    marker.write_text("".join(f"{name}\n" for name in sorted(given | set(WELCOME_NOTEBOOKS))), encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infracalc.bubble.welcome FOLDER``: give FOLDER the welcome notebooks (the image's start hook)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        print("usage: python -m infracalc.bubble.welcome FOLDER", file=sys.stderr)
        return 2
    for path in give_welcome_notebooks(Path(arguments[0])):
        print(f"infracalc: welcome notebook {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
