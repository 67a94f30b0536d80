import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def assay_cmd() -> list[str]:
    """The installed console command when present, else the module (same code)."""
    exe = Path(sys.executable).parent / "assay"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "fuzz.cli"]


@pytest.fixture
def assay():
    return assay_cmd()


def pytest_configure(config):
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
