"""Fixtures shared by every test: project paths, the public samples, a fresh warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = ROOT / "sample_logs"
#: Real files from public sources; each test that reads one names its origin (see its README).
SHARED_SAMPLES = (ROOT / ".." / "shared" / "samples").resolve()


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh")


def require_shared_samples() -> Path:
    """The public samples folder; a clear failure (not a skip) when it is not beside the project."""
    if not SHARED_SAMPLES.is_dir():
        pytest.fail(
            f"the public samples are expected at {SHARED_SAMPLES} (../shared/samples beside the project)"
        )
    return SHARED_SAMPLES


@pytest.fixture
def shared_samples() -> Path:
    return require_shared_samples()
