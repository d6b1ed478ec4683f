"""Golden-file tests: every generator's output on every case equals tests/golden/<case>/expected."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.golden.cases import GOLDEN, cases, render_case


@pytest.mark.parametrize("case", cases())
def test_generated_files_match_golden(case: str, tmp_path: Path) -> None:
    expected_dir = GOLDEN / case / "expected"
    files = render_case(case, tmp_path)
    expected = {
        str(p.relative_to(expected_dir)): p.read_text()
        for p in expected_dir.rglob("*") if p.is_file()
    }
    assert sorted(files) == sorted(expected), "file set differs; run `make golden` if deliberate"
    for rel, text in sorted(files.items()):
        if text != expected[rel]:
            diff = "".join(difflib.unified_diff(
                expected[rel].splitlines(keepends=True), text.splitlines(keepends=True),
                f"expected/{rel}", f"generated/{rel}"))
            pytest.fail(f"{case}: {rel} differs from golden (run `make golden` if deliberate)\n"
                        f"{diff[:4000]}")
