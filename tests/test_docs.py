"""Every ```python block of README.md and docs/*.md runs on its own, so the docs cannot rot (issue 12).

Each block is one test case, named by file and line (`docs/training.md:47`), run as a script in a fresh
Python process from the repository root, with no network and a timeout. A block must therefore be a
complete program: its own imports, its own data (written to a temporary folder, never into the
repository). Illustrative fragments are fenced as ```text instead. The processes are forked from a
runner that has imported torch, transformers and our packages once (tests/docs_runner.py says why).

Markers, an HTML comment (invisible when rendered) on the line right before the fence:
- `<!-- docs-test: skip (reason) -->`: the block cannot run here (needs a GPU, a download, your data).
  The reason is required and becomes the skip reason.
- `<!-- docs-test: slow -->`: the block takes more than a few seconds; it runs with the slow tests.
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TIMEOUT_S = 300  # catches a hang; generous because a busy 2-core machine runs a block several times slower
FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\S*)")
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|slow)\s*(?:\((.+)\))?\s*-->")


def python_blocks(page: Path) -> list[tuple[int, str, str | None, str | None]]:
    """`(line, code, marker, reason)` of each ```python block of `page`; `line` is the fence's, 1-based."""
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i].strip())
        if not opening:
            i += 1
            continue
        fence, language = opening.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), len(lines))
        if language == "python":
            marker = MARKER.search(lines[i - 1]) if i > 0 else None
            kind, reason = (marker.group(1), marker.group(2)) if marker else (None, None)
            blocks.append((i + 1, "\n".join(lines[i + 1 : end]) + "\n", kind, reason))
        i = end + 1
    return blocks


def cases():
    for page in PAGES:
        name = page.relative_to(REPO).as_posix()
        for line, code, kind, reason in python_blocks(page):
            marks = []
            if kind == "skip":
                marks.append(pytest.mark.skip(reason=f"{name}:{line}: {reason or 'no reason given'}"))
            elif kind == "slow":
                marks.append(pytest.mark.slow)
            yield pytest.param(name, line, code, id=f"{name}:{line}", marks=marks)


class BlockRunner:
    """tests/docs_runner.py in a subprocess (offline, in the repository root) and a thread reading its replies."""

    def __init__(self):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "MPLBACKEND": "Agg", "TQDM_DISABLE": "1",
               # The blocks are read from this checkout, so they run against its code, as the rest of the
               # suite does, whether the package is installed editable or not (CI's newest-releases world).
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}  # fmt: skip
        self.process = subprocess.Popen([sys.executable, str(REPO / "tests" / "docs_runner.py")], cwd=REPO, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        self.replies = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.replies.put(json.loads(line))
        self.replies.put(None)  # the runner ended

    def reply(self, timeout: float | None = None) -> dict:
        reply = self.replies.get(timeout=timeout)
        if reply is None:
            raise RuntimeError(f"tests/docs_runner.py ended (exit code {self.process.wait()}); its error is above.")
        return reply

    def run(self, script: Path, output: Path, timeout: float) -> int | None:
        """The block's exit code, or `None` when it ran past `timeout` seconds (it is then killed)."""
        self.process.stdin.write(json.dumps({"script": str(script), "output": str(output)}) + "\n")
        self.process.stdin.flush()
        pid = self.reply(timeout=600)["pid"]  # the first block waits for the runner's imports
        try:
            return self.reply(timeout=timeout)["returncode"]
        except queue.Empty:
            os.kill(pid, signal.SIGKILL)
            self.reply()
            return None

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def runner():
    runner = BlockRunner()
    yield runner
    runner.close()


@pytest.mark.parametrize(("page", "line", "code"), list(cases()))
def test_docs_block_runs(runner, page, line, code, tmp_path):
    script, output = tmp_path / "block.py", tmp_path / "output.txt"
    script.write_text(code)
    returncode = runner.run(script, output, TIMEOUT_S)
    assert returncode is not None, f"The ```python block at {page}:{line} ran past {TIMEOUT_S} s."
    assert returncode == 0, f"The ```python block at {page}:{line} failed:\n{output.read_text()[-4000:]}"


def test_a_block_runs_fresh_and_its_failures_and_timeouts_are_caught(runner, tmp_path):
    script, output = tmp_path / "block.py", tmp_path / "output.txt"
    script.write_text("import os\nprint(os.getcwd())\n")
    assert runner.run(script, output, TIMEOUT_S) == 0 and output.read_text().strip() == str(REPO)
    script.write_text("print(torch.zeros(1))\n")  # the runner imported torch, the block did not
    assert runner.run(script, output, TIMEOUT_S) == 1 and "NameError: name 'torch' is not defined" in output.read_text()
    script.write_text("import conftest\n")  # tests/ is not on the block's path
    assert runner.run(script, output, TIMEOUT_S) == 1 and "No module named 'conftest'" in output.read_text()
    script.write_text("import time\ntime.sleep(60)\n")
    assert runner.run(script, output, timeout=1) is None


def test_markers_are_read(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nprint(1)\n```\n<!-- docs-test: skip (needs a GPU) -->\n```python\nimport cuda\n```\n"
        "<!-- docs-test: slow -->\n````python\nx = '```'\n````\n```text\nnot python\n```\n"
    )
    assert python_blocks(page) == [
        (2, "print(1)\n", None, None),
        (6, "import cuda\n", "skip", "needs a GPU"),
        (10, "x = '```'\n", "slow", None),
    ]


def test_every_page_is_collected():
    names = {page.relative_to(REPO).as_posix() for page in PAGES}
    assert {"README.md", "docs/your_own_data.md", "docs/training.md"} <= names
    assert sum(len(python_blocks(page)) for page in PAGES) > 10
