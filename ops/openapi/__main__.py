"""`make openapi`: write docs/openapi.json from the models; `--check` only tells whether it is current."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ops.openapi.document import build

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/openapi.json is stale")
    arguments = parser.parse_args(argv)
    current = render()
    if arguments.check:
        if DOCUMENT.exists() and DOCUMENT.read_text() == current:
            return 0
        print(f"{DOCUMENT} is stale: run `make openapi`", file=sys.stderr)
        return 1
    DOCUMENT.write_text(current)
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
