"""`make golden`: rewrite every case's expected/ after a deliberate change to a generator."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.golden.cases import GOLDEN, cases, render_case


def main() -> None:
    for case in cases():
        expected = GOLDEN / case / "expected"
        shutil.rmtree(expected, ignore_errors=True)
        with tempfile.TemporaryDirectory() as work:
            files = render_case(case, Path(work))
        for rel, text in files.items():
            target = expected / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        print(f"{case}: {len(files)} files")  # noqa: T201


if __name__ == "__main__":
    main()
