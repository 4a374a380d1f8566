"""``ledger …``: the command line. Commands translate arguments and delegate; errors are one
clear line on stderr and a non-zero exit code, never a traceback."""

from ledger.cli import ops, streams, views  # noqa: F401  (each module registers its commands)
from ledger.cli.base import app


def main() -> None:
    app(prog_name="ledger")
