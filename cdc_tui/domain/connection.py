"""Where a pipeline connects: shared by the config (which resolves it) and the store (which
keeps it), and never holding a secret, only where the secret comes from."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ConnectionRef:
    """A password-free URL plus the place its password comes from.

    `name` is the config connection name (None for a URL given on the command line);
    `kind` is "postgresql" or "mssql"; `password_env` / `password_file` say where the password
    is read at connect time (neither: libpq's PGPASSWORD, PGPASSFILE or ~/.pgpass).
    """

    url: str
    kind: str
    name: str | None = None
    password_env: str | None = None
    password_file: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """A dict for `--json` output and the console; safe to show, it holds no secret."""
        return asdict(self)
