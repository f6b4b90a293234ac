"""What `agentops up` does so that it runs once per state folder, never leaves orphans, and says
why it cannot start: a lock on the folder, children that die with it, leftovers of a crashed run
cleaned up, and the gateway's port checked before anything starts."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO

from shared.errors import StartupError

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the child gets SIGTERM when `agentops up` dies, however it dies
    (Linux; elsewhere the next start cleans up instead)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def hold_folder(home: Path) -> IO[str]:
    """The lock that makes this the one `agentops up` of `home` (released when the process ends,
    however it ends). Another running one: say where it is and stop."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / "up.lock", "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        running = _runtime(home)
        where = f" at http://127.0.0.1:{running['gateway_port']}" if running.get("gateway_port") else ""
        pid = running.get("pid", "?")
        raise StartupError(
            f"AgentOps is already running from {home} (pid {pid}){where}: use it, or stop it first "
            f"(Ctrl-C in its terminal, or `kill {pid}`); AGENTOPS_HOME=<another folder> runs a second one"
        ) from None
    return handle


def clean_leftovers(home: Path) -> list[int]:
    """Stop what a crashed `agentops up` of this folder left running (its runtime.json lists the
    pids; a pid is only stopped if it still runs one of our programs). Returns the pids stopped."""
    stopped = []
    pids = _runtime(home).get("pids")
    for name, pid in pids.items() if isinstance(pids, dict) else []:
        # PostgreSQL's SIGINT is its fast shutdown; SIGTERM would wait for clients to leave
        sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
        if isinstance(pid, int) and pid != os.getpid() and _ours(pid, home) and _stop(pid, sig):
            stopped.append(pid)
    return stopped


def record_pids(home: Path, pids: dict[str, int]) -> None:
    from services.runtime.secretfiles import write_private

    runtime = _runtime(home)
    runtime["pids"] = pids
    write_private(home / "runtime.json", json.dumps(runtime, indent=2))


def check_port(host: str, port: int) -> None:
    """Stop at once with the fix when the gateway's port is taken (a restart loop helps nobody)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            holder = port_holder(port)
            raise StartupError(
                f"port {port} is in use{f' by {holder}' if holder else ''}: stop that, or start on another port "
                "with `agentops up --port 0` (any free port) or GATEWAY_PORT=<port>"
            ) from None


def port_holder(port: int) -> str | None:
    """Which process listens on `port`, when /proc says (Linux): 'pid 1234 (python3)'."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(fields[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    name = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({name})"
    return None


def _runtime(home: Path) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        value = json.loads((home / "runtime.json").read_text())
        if isinstance(value, dict):
            return value
    return {}


def _ours(pid: int, home: Path) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return "services.runtime.cli" in command or str(home) in command


def _stop(pid: int, sig: int = signal.SIGTERM, grace: float = 30.0) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True
