"""A first run as a new user meets it: a port already taken, a second `up` on the same folder,
`up` killed outright, and what the terminal shows. `agentops up` runs as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from services.runtime.embedded import free_port
from tests.infra import until
from tests.system.test_agentops_up import start, stop, wait_for_line


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")  # a zombie has finished


def test_a_port_in_use_stops_up_at_once_with_who_holds_it_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(tmp_path / "home", port)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert f"port {port} is in use by pid {os.getpid()}" in out
    assert "--port 0" in out and "GATEWAY_PORT" in out and "Traceback" not in out


def test_a_second_up_on_the_same_folder_says_where_the_first_runs_and_a_killed_up_leaves_nothing(
    tmp_path: Path,
) -> None:
    home, port = tmp_path / "home", free_port()
    first = start(home, port)
    lines = wait_for_line(first, "Dashboard")
    shown = "".join(lines)
    # quiet by default: a line per service, the URLs; no framework banners or debug chatter
    for service in ("auditor", "planner", "guardian", "executor", "notifier", "gateway"):
        assert f"started {service} (pid " in shown
    assert "FastStream app" not in shown and " DEBUG " not in shown and "Traceback" not in shown
    try:
        second = start(home, free_port())
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 2, out
        assert f"already running from {home.resolve()} (pid {first.pid}) at http://127.0.0.1:{port}" in out
        assert "Traceback" not in out
        pids = json.loads((home / "runtime.json").read_text())["pids"]
        assert set(pids) >= {"auditor", "gateway", "nats", "postgres"}
        # the terminal client finds the local system and its admin key by itself
        env = {k: v for k, v in os.environ.items() if k not in ("AGENTOPS_URL", "AGENTOPS_API_KEY")}
        env.update(AGENTOPS_HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "config"))
        listed = subprocess.run(
            [sys.executable, "-m", "services.runtime.cli", "ls", "--json"], env=env, capture_output=True, text=True
        )
        assert listed.returncode == 0 and json.loads(listed.stdout)["count"] == 0, listed.stderr
    finally:
        first.send_signal(signal.SIGKILL)  # a closed terminal, an OOM kill: no chance to clean up
        first.wait()
    services = [pid for name, pid in pids.items() if name not in ("postgres",)]
    assert until(lambda: not any(alive(p) for p in services)), "services and nats-server outlived `up`"
    again = start(home, port)  # the same port and folder are free again; leftovers are stopped
    try:
        lines = wait_for_line(again, "Dashboard")
        assert "Traceback" not in "".join(lines)
    finally:
        out = stop(again)
    assert "AgentOps stopped." in out
    assert not alive(pids["postgres"])


def test_stopping_with_ctrl_c_is_quiet(tmp_path: Path) -> None:
    proc = start(tmp_path / "home", free_port())
    wait_for_line(proc, "Dashboard")
    out = stop(proc)
    assert "AgentOps stopped." in out
    assert "callback for Task" not in out and "Traceback" not in out and "FastStream app shut" not in out


def test_up_verbose_shows_the_frameworks_again(tmp_path: Path) -> None:
    env = dict(os.environ, AGENTOPS_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    for key in ("NATS_URL", "DATABASE_URL", "EXECUTOR_MODE", "IDENTITY_DIR"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.runtime.cli", "up", "--port", "0", "--verbose"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = wait_for_line(proc, "Dashboard")
    out = stop(proc)
    assert " DEBUG " in "".join(lines) + out


def test_a_damaged_state_folder_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "identity").mkdir(parents=True)
    (home / "identity" / "gateway.nk").write_text("not a key\n")
    proc = start(home, free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "gateway.nk is damaged" in out and "Traceback" not in out
