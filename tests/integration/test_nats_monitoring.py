"""The embedded nats-server's monitoring endpoints, which `python -m bench.cost` reads to count
the messages a command costs: served only when asked for, and then only on loopback (they have
no authentication: anyone who reached them would see every connection and subject)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedNats, free_port
from tests.infra import IDENTITIES, connect

pytestmark = pytest.mark.integration


def listening(pid: int) -> set[tuple[str, int]]:
    """(local address, port) of every TCP socket the process listens on (/proc, IPv4 and 6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add((address, int(port, 16)))
    return found


@pytest.mark.parametrize("secured", [True, False], ids=["with identities", "plain"])
async def test_monitoring_is_served_on_loopback_only_when_asked_for(tmp_path: Path, secured: bool) -> None:
    port = free_port()
    server = EmbeddedNats(tmp_path / "nats", identities=IDENTITIES if secured else None, monitor_port=port).start()
    nc = None
    try:
        nc = await connect(server.url) if secured else None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/connz", timeout=10) as answer:
            connz = json.load(answer)
        assert connz["num_connections"] == (1 if secured else 0)
        assert server.proc is not None
        # the clients' port and the monitoring port, both on 127.0.0.1 (0100007F) alone
        assert listening(server.proc.pid) == {("0100007F", server.port), ("0100007F", port)}
    finally:
        if nc is not None:
            await nc.close()
        server.stop()

    quiet = EmbeddedNats(tmp_path / "quiet").start()
    try:
        assert quiet.proc is not None
        assert listening(quiet.proc.pid) == {("0100007F", quiet.port)}  # no monitoring unless asked for
    finally:
        quiet.stop()
