"""A throwaway PostgreSQL server from Debian's binaries for the store tests (127.0.0.1, a free port).

initdb refuses to run as root, so as root the cluster belongs to the unprivileged ``nobody``.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"


def bin_dir() -> Path | None:
    """The newest Debian PostgreSQL bin folder with initdb, or the one on PATH."""
    for d in sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                    else 0, reverse=True):
        if (Path(d) / "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    folder: Path
    port: int
    bins: Path
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bins / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Server:
    """initdb in a new temporary folder and start the server; raises RuntimeError when it cannot."""
    bins = bin_dir()
    if bins is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="pathreview-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "nobody"
        pw = pwd.getpwnam(user)
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    os.chmod(folder, 0o700)
    server = Server(folder, free_port(), bins, user)
    try:
        server._run("initdb", "-D", str(folder / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync", "--locale=C")
        server._run("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"), "-w", "-t", "60",
                    "-o", f"-h 127.0.0.1 -p {server.port} -k {folder}", "start")
    except subprocess.CalledProcessError as exc:
        log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}{log}") from exc
    return server
