"""Runs docs code blocks for tests/test_docs.py, each in its own forked process.

Importing torch, transformers, diffusers and our packages costs about 10 s of CPU, more than most
blocks. This runner imports them once, then forks a child per block: the child starts with those
modules loaded but with nothing else of the runner (a fresh `__main__` namespace, the block's own
folder first on `sys.path`, as `python block.py` has), so a block that forgets an import still fails.

Protocol, one JSON object per line: the runner reads `{"script": path, "output": path}` on stdin,
writes `{"pid": pid}` once the child runs and `{"returncode": rc}` when it has ended; the child's
stdout and stderr go to `output`.
"""

import json
import os
import runpy
import sys
import traceback

import torch  # noqa: F401  (loaded once for every block)
import transformers  # noqa: F401

import modeling_vtok  # noqa: F401
import processing_vtok  # noqa: F401


def run_block(script: str, output: str) -> None:
    """In the child: run `script` as `__main__` with stdout and stderr going to `output`, then exit."""
    with open(output, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    sys.argv, sys.path[0] = [script], os.path.dirname(script)
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run_block(request["script"], request["output"])
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
