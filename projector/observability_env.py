"""Where the process runs, without importing Powertools."""

from __future__ import annotations

import os


def in_lambda() -> bool:
    """True inside a Lambda runtime (also the Runtime Interface Emulator), never in the CLI or tests."""
    return bool(os.environ.get("AWS_LAMBDA_RUNTIME_API")) and bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
