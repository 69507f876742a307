"""What the commands share: the exit-code help, the human logs on stderr, the connection overrides, and the
secrets of this process, of which everything printed is scrubbed."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence

import structlog

from .connect import IAM_ENDPOINT_ENV, Overrides
from .redact import Scrubber
from .report import SecretRedactor

EXIT_CODES_HELP = """\
exit codes:
  0    all done, or nothing to do
  1    internal error
  2    usage error or invalid plan (nothing was sent)
  3    finished, but some targets failed or their outcome is unknown (report: some need a look)
  4    the preview gate refused the run
  5    the change window is closed or not open yet, or closed leaving targets not started
  6    stopped by the failure budget, leaving targets not started
  7    another run holds the lock
  130  interrupted (SIGINT)   143  terminated (SIGTERM)
"""

IAM_HELP = (
    f"IAM endpoint for a password login (default: the plan's iam_endpoint, else ${IAM_ENDPOINT_ENV}, "
    "else the plan region's)"
)
log = structlog.get_logger("orchestrator")


# --- logging ---------------------------------------------------------------------------------------------------

# Where the secrets of this process are (the credentials in use): human logs and error lines are scrubbed of
# them, as the report is. Secrets are never logged on purpose; this catches one quoted back by a server.
SECRET_SOURCES: list[Callable[[], Iterable[str]]] = []


def current_scrubber() -> Scrubber:
    return Scrubber(secret for source in SECRET_SOURCES for secret in source())


def redact(text: str) -> str:
    return current_scrubber()(text)


def configure_logging(verbosity: int, quiet: bool, log_format: str = "text") -> None:
    """Human logs on stderr: warnings and errors only, unless -v (info) or -vv (debug)."""
    level = 40 if quiet else 30 - 10 * min(verbosity, 2)
    structlog.configure(
        processors=[
            SecretRedactor(lambda: (secret for source in SECRET_SOURCES for secret in source())),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True)
            if log_format == "json"
            else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.processors.JSONRenderer()
            if log_format == "json"
            else structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def overrides(args: argparse.Namespace) -> Overrides:
    return Overrides(
        endpoint=args.endpoint,
        iam_endpoint=args.iam_endpoint,
        simulate=getattr(args, "simulate", False),
        sim_job_duration=getattr(args, "sim_job_duration", 0.3),
        seed=getattr(args, "seed", 0),
    )


def command_line(*words: str) -> str:
    """An orchestrator command to suggest, quoted for a shell (paths may hold spaces)."""
    return shlex.join(("orchestrator", *words))


def add_subcommand(
    parent: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    help_text: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """A subcommand with the common options, its examples and the exit codes in its --help."""
    listed = "\n".join(f"  {example}" for example in examples)
    return parent.add_parser(
        name,
        parents=[common],
        help=help_text,
        description=help_text,
        epilog=f"example{'s' if len(examples) > 1 else ''}:\n{listed}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
