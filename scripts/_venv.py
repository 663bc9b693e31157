"""Run the calling script under the project's `.venv` python, whatever `python3` started it.

Every script in this folder imports this module first (`import _venv`). Started with another
interpreter (`python3 scripts/services start`, a system python whose moto is another version), the
script is executed again with `.venv/bin/python` and the same arguments, so it always runs against the
locked dependencies (`make install`). Without a `.venv` it says how to make one. Set
PROJECTOR_NO_REEXEC=1 to run with the current interpreter on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / ".venv"
VENV_PYTHON = VENV / "bin" / "python"


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec_under_venv() -> None:
    if in_venv() or os.environ.get("PROJECTOR_NO_REEXEC"):
        return
    if not VENV_PYTHON.is_file():
        sys.exit(f"{VENV} does not exist: run `make install` first (it installs the locked dependencies)")
    script = os.path.realpath(sys.argv[0])
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])


if __name__ == "__main__":
    reexec_under_venv()
    print(sys.executable)
else:
    reexec_under_venv()
