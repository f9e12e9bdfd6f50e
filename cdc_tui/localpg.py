"""Throwaway local PostgreSQL clusters for the demo and the test suite.

A cluster lives in its own directory with its own port and socket directory and runs with
`wal_level=logical`. PostgreSQL refuses to run as root, so when we are root the cluster is
owned by and started as an unprivileged OS user (`postgres` when it exists).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
FALLBACK_OS_USER = "cdc-tui-pg"


class LocalPgUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding `initdb`, `pg_ctl` and `postgres` of one major version."""

    bindir: Path
    major: int
    origin: str

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _major_of(bindir: Path) -> int:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+)", out)
    return int(match.group(1)) if match else 0


def find_binaries() -> list[PgBinaries]:
    """All usable server binaries: `CDC_TUI_PG_BINDIR`, pgserver's bundled build, Debian's."""
    found: list[PgBinaries] = []
    explicit = os.environ.get("CDC_TUI_PG_BINDIR")
    if explicit and (Path(explicit) / "postgres").exists():
        found.append(PgBinaries(Path(explicit), _major_of(Path(explicit)), "CDC_TUI_PG_BINDIR"))
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir at import; that warning is noise here.
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH  # bundled PostgreSQL (demo extra)

        bindir = Path(POSTGRES_BIN_PATH)
        if (bindir / "postgres").exists():
            found.append(PgBinaries(bindir, _major_of(bindir), "pgserver"))
    except ImportError:
        log.debug("pgserver is not installed; looking for Debian's PostgreSQL")
    if DEBIAN_PG_ROOT.is_dir():
        for ver_dir in sorted(DEBIAN_PG_ROOT.iterdir(), reverse=True):
            bindir = ver_dir / "bin"
            if (bindir / "postgres").exists() and (bindir / "initdb").exists():
                found.append(PgBinaries(bindir, _major_of(bindir), "debian"))
    return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _os_user() -> str | None:
    """The unprivileged OS user to run PostgreSQL as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_OS_USER], check=True)
    return FALLBACK_OS_USER


def _make_traversable(path: Path) -> None:
    """Let the cluster's OS user reach `path` through every parent directory."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


class LocalCluster:
    """One PostgreSQL cluster in `base_dir`, listening on 127.0.0.1:`port` and a private socket."""

    SUPERUSER = "postgres"

    def __init__(
        self,
        base_dir: Path,
        binaries: PgBinaries,
        *,
        wal_level: str = "logical",
        port: int | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.binaries = binaries
        self.wal_level = wal_level
        self.port = port or free_port()
        self.settings = settings or {}
        self.datadir = base_dir / "data"
        self.sockdir = base_dir / "sock"
        self.logfile = base_dir / "postgres.log"
        self.superuser_password = secrets.token_urlsafe(16)
        self.os_user = _os_user()

    def _run(self, argv: list[str]) -> None:
        if self.os_user is not None:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()}")

    def init(self) -> None:
        """initdb with scram on TCP, trust on the private socket, and our settings appended."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if self.os_user is not None:
            _make_traversable(self.base_dir)
            _make_traversable(self.binaries.bindir)
            uid = pwd.getpwnam(self.os_user).pw_uid
            gid = pwd.getpwnam(self.os_user).pw_gid
            for p in (self.base_dir, self.sockdir, pwfile):
                os.chown(p, uid, gid)
        self._run([
            self.binaries.tool("initdb"), "-D", str(self.datadir), "-U", self.SUPERUSER,
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
            f"--pwfile={pwfile}", "--no-sync",
        ])  # fmt: skip
        pwfile.unlink()
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "wal_level": self.wal_level,
            "max_replication_slots": "16",
            "max_wal_senders": "16",
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
            "max_connections": "100",
            **self.settings,
        }
        with (self.datadir / "postgresql.conf").open("a") as fh:
            fh.write("\n# cdc-tui local cluster\n")
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if self.os_user is not None and not self.logfile.exists():
            self.logfile.touch()
            os.chown(self.logfile, pwd.getpwnam(self.os_user).pw_uid, -1)
        self._run([
            self.binaries.tool("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
            "-w", "-t", "60", "start",
        ])  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`, `immediate` or `smart`)."""
        if (self.datadir / "postmaster.pid").exists():
            self._run([self.binaries.tool("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
                       "stop"])  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """A libpq conninfo for the superuser over the private socket (trust, no password)."""
        return f"host={self.sockdir} port={self.port} user={self.SUPERUSER} dbname={dbname}"

    def url(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A password-free `postgresql://` URL over TCP loopback."""
        who = quote(user or self.SUPERUSER, safe="")
        return f"postgresql://{who}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"
