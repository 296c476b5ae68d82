"""The `vtok` command line: tokenize videos, tokenize a corpus into a `datasets` dataset, ask a question
about a video, generate a video from text. Each subcommand lives in its own module; `main` dispatches."""

from .main import main

__all__ = ["main"]
