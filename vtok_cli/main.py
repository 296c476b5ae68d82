"""Entry point of the `vtok` console script (declared in setup.cfg): one subparser per subcommand, and
every expected failure (bad option, missing or unreadable file, wrong model folder) reported as one line
`vtok <subcommand>: error: ...` on stderr with exit status 2 (argparse's convention for usage errors) or 1."""

import argparse
import sys

from . import ask, generate, tokenize, tokenize_corpus


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (no usage dump): `vtok tokenize: error: ...`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


SUBCOMMANDS = {"tokenize": tokenize, "tokenize-corpus": tokenize_corpus, "ask": ask, "generate": generate}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="vtok", description="VTok video tokenizer: tokenize videos and corpora, ask, generate.")
    subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name, module in SUBCOMMANDS.items():
        module.add_parser(subparsers, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `vtok` with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        SUBCOMMANDS[args.subcommand].run(args)
    except (OSError, ValueError, ImportError) as error:  # missing files, unreadable videos (VTokVideoError), bad values, a missing extra
        print(f"vtok {args.subcommand}: error: {error}".replace("\n", " "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vtok {args.subcommand}: interrupted", file=sys.stderr)
        return 130
    return 0


__all__ = ["main", "build_parser"]
