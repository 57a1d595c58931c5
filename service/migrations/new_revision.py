"""Write a new migration from the difference between the tables and a fresh database.

Run: uv run python -m service.migrations.new_revision "what changed"
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from service.db import MIGRATIONS, make_engine, migrate


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'schema.db'}")
        migrate(engine)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            count = len(list((MIGRATIONS / "versions").glob("*.py")))
            command.revision(config, message=message, autogenerate=True, rev_id=f"{count + 1:04}")


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
