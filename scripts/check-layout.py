#!/usr/bin/env python3
"""Layout checks run in CI (issue 15): no source file of a crate is over 700 lines before
its inline test module (`#[cfg(test)]`), outside tests/, fuzz/ and examples/.
Import circles are checked by ../shared/tools/circles.py, run beside this by .ci/run.

    python3 scripts/check-layout.py [LIMIT]
"""
import pathlib
import sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 700
ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["formats", "verify", "engine", "cli"]

bad = []
for crate in CRATES:
    for path in sorted((ROOT / crate / "src").rglob("*.rs")):
        lines = path.read_text().splitlines()
        n = len(lines)
        for i, line in enumerate(lines):
            if line.strip() == "#[cfg(test)]":
                n = i
                break
        if n > LIMIT:
            bad.append((n, path.relative_to(ROOT)))
for n, p in sorted(bad, reverse=True):
    print(f"{p}: {n} lines before its test module (limit {LIMIT})")
if bad:
    sys.exit(1)
print(f"layout: every source file of {', '.join(CRATES)} is within {LIMIT} lines")
