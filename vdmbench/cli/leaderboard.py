"""`vdmbench leaderboard`: serve the Streamlit app in `dashboards/` on one results database."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

from vdmbench.core.paths import DEFAULT_DB, dashboards_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vdmbench leaderboard",
        description="Start the Streamlit leaderboard (leaderboard, compare, drill-down, plots, arena). "
                    "The database is opened read-only; Arena votes are the only write.",
    )
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})")
    parser.add_argument("--port", type=int, default=None, help="port to serve on (default: Streamlit's, 8501)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the app to the network)")
    parser.add_argument("--headless", action="store_true", help="do not open a browser window")
    return parser


def command(args: argparse.Namespace) -> list[str]:
    """The `streamlit run` command line for these arguments."""
    app = dashboards_dir() / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.host,
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    if args.port is not None:
        cmd += ["--server.port", str(args.port)]
    if args.headless:
        cmd += ["--server.headless", "true"]
    # The app resolves the path itself; pass it absolute so the server's cwd does not matter.
    return cmd + ["--", "--db", str(Path(args.db).expanduser().resolve())]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if importlib.util.find_spec("streamlit") is None:
        print("vdmbench leaderboard needs Streamlit: pip install 'vdmbench[dashboard]'", file=sys.stderr)
        return 2
    app = dashboards_dir() / "app.py"
    if not app.is_file():
        print(f"dashboard app not found at {app}; reinstall vdmbench", file=sys.stderr)
        return 2
    if not Path(args.db).is_file():
        # Not an error: the app itself explains how to create the first run.
        print(f"note: {args.db} does not exist yet; the app will say how to create the first run", file=sys.stderr)
    return serve(command(args))


def serve(cmd: list[str], grace: float = 10.0) -> int:
    """Run the Streamlit server as a child and stop it with us: SIGTERM, SIGINT (Ctrl-C) or SIGHUP
    to `vdmbench leaderboard` is passed on, so no server is left holding the port. A child that
    does not stop within `grace` seconds is killed."""
    child: subprocess.Popen[bytes] | None = None
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    # Handlers first: a signal that arrives while the child starts is passed on too.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        child = subprocess.Popen(cmd)
        if received:
            stop(received[-1], None)
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # a second Ctrl-C while waiting: keep waiting for the child
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    # Stopped because we were asked to (the server may die of the signal, or of a KeyboardInterrupt
    # while it is still starting, exit 1): that is how a server ends, not a failure.
    return 0 if received or code in (0, -signal.SIGTERM, -signal.SIGINT) else code


if __name__ == "__main__":
    raise SystemExit(main())
