"""How a benchmark's JSON names where it came from: its command line and the files it wrote, as typed in the
repository. A run from another checkout or worktree (one frozen at a commit while this one changes) that
writes into this one passes absolute paths; they are recorded relative to the checkout that holds them, so
the JSON reads `runs/...` and names no folder of this machine."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def relative_to_checkout(path: Path | str) -> str:
    """`path` relative to the checkout that holds it (the first folder above it with `.git`; else this one)."""
    path = Path(path).resolve()
    checkout = next((folder for folder in path.parents if (folder / ".git").exists()), REPO)
    return os.path.relpath(path, checkout)


def recorded_command(script: str, argv: list[str]) -> str:
    """The command line of the benchmark at `script` (its `__file__`) with `argv`, absolute paths written
    relative to their checkout, so that it reads as run from the repository."""
    arguments = [relative_to_checkout(arg) if os.path.isabs(arg) else arg for arg in argv]
    return " ".join([f"python benchmarks/{Path(script).name}", *arguments])
