import os
import subprocess
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


def run_assay_cli(*argv, cwd=None, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run ``assay ARGV...`` as a user would (a child process), output captured as text."""
    return subprocess.run(assay_cmd() + [str(a) for a in argv], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=timeout, **kw)


@pytest.fixture
def run_assay():
    """``run_assay("rules", "stats", "--json")`` -> CompletedProcess of the real command."""
    return run_assay_cli


def pytest_configure(config):
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
