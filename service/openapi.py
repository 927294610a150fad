"""Write the API's OpenAPI schema: ``python -m service.openapi [PATH]`` (default ./openapi.json).

The committed openapi.json is the contract CMS plugins build against; a test fails when
the app's schema drifts from it, and this command is how to accept a deliberate change.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def current_schema() -> dict:
    from service.app import create_app
    from service.settings import Settings

    # In-memory database: generating the schema must not create files.
    return create_app(Settings(_env_file=None, database_url="sqlite://"), drafter=None).openapi()


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    path = Path(argv[0] if argv else "openapi.json")
    path.write_text(render(current_schema()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
