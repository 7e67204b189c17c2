"""`vdmbench leaderboard` stops its Streamlit child when it is stopped (SIGTERM, SIGINT), so no
server is left holding the port (issue #15 item 3)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures import REPO

FAKE_SERVER = "import time\nwhile True:\n    time.sleep(0.1)\n"


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")  # a zombie has stopped


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child pids from /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_command_stops_the_server(tmp_path, sig):
    # serve() with a stand-in server (a Python loop), in a child process of its own
    script = tmp_path / "serve.py"
    script.write_text(f"import sys\nfrom vdmbench.cli.leaderboard import serve\n"
                      f"sys.exit(serve([sys.executable, '-c', {FAKE_SERVER!r}], grace=5))\n")
    proc = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120  # a busy machine: imports alone can take long
    while time.time() < deadline and not children(proc.pid):
        time.sleep(0.05)
    (server,) = children(proc.pid)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 0
    deadline = time.time() + 60
    while time.time() < deadline and alive(server):
        time.sleep(0.05)
    assert not alive(server), "the server outlived `vdmbench leaderboard`"
