"""The ``monalisa`` command: argparse sub-commands; the only place objects are built and wired.

Exit statuses: 0 success, 1 runtime failure, 2 bad usage or unreadable input,
78 (EX_CONFIG) bad configuration or frame set, so systemd does not restart-loop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from appliance import __version__

Handler = Callable[[argparse.Namespace], int]


def _add_config_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="check or show a configuration file")
    csub = p.add_subparsers(dest="config_command", required=True)
    c = csub.add_parser("check", help="validate FILE; one line per error, exit 78 if invalid")
    c.add_argument("file")
    c.set_defaults(handler=_cmd_config_check)
    s = csub.add_parser("show", help="print the effective configuration as TOML")
    s.add_argument("file", nargs="?")
    s.set_defaults(handler=_cmd_config_show)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from appliance.config import EX_CONFIG, ConfigError, load_config

    try:
        load_config(args.file)
    except ConfigError as err:
        for line in err.lines:
            print(line, file=sys.stderr)
        return EX_CONFIG
    print(f"{args.file}: OK")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    from appliance.config import EX_CONFIG, ConfigError, dump_config, load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as err:
        for line in err.lines:
            print(line, file=sys.stderr)
        return EX_CONFIG
    print(dump_config(cfg), end="")
    return 0


# Sub-command registration. Each entry adds its parser(s) and sets ``handler``.
# Keep imports of heavy modules inside the handlers so `monalisa --help` stays fast.
# >>> command registry (add one line per command group; keep this marker)
_REGISTRY: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_config_commands,
]
# <<< command registry


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="monalisa",
        description="A gallery portrait whose eyes follow the visitor.",
    )
    parser.add_argument("--version", action="version", version=f"monalisa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _REGISTRY:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monalisa`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
