"""`python -m orchestrator` and the `orchestrator` script: Ctrl-C even while the modules load is one line."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as run  # the imports take a moment: an early Ctrl-C lands here

        return run()
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return 130  # ExitCode.SIGINT, without importing anything that could be interrupted again


if __name__ == "__main__":
    raise SystemExit(main())
