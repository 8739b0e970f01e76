"""The shared find-or-download helper: downloads only what is missing, once across processes, and fails clearly."""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from benchmarks.download import DataMissing, find_or_download

MESSAGE = "data not found: put the files under the folder, or point --dataset_path at them."


def _find(path) -> Path | None:
    target = Path(path) / "data.bin"
    return target if target.is_file() else None


def _slow_download(path: str) -> None:
    """Append to a log (to count downloads), wait so that other processes queue on the lock, then write the file."""
    with open(Path(path) / "downloads.log", "a") as log:
        log.write("x")
    time.sleep(0.5)
    (Path(path) / "data.bin").write_bytes(b"1")


_start_together = None


def _meet_at(barrier) -> None:
    global _start_together
    _start_together = barrier


def _fetch(path: str) -> str:
    _start_together.wait(timeout=120)  # all three look for the files at once, however slowly the processes started
    return str(find_or_download(path, ".lock", _find, _slow_download, MESSAGE))


def test_present_files_are_not_downloaded(tmp_path) -> None:
    (tmp_path / "data.bin").write_bytes(b"1")
    calls = []
    assert find_or_download(tmp_path, ".lock", _find, calls.append, MESSAGE) == tmp_path / "data.bin"
    assert calls == []


def test_missing_files_are_downloaded_once_across_processes(tmp_path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3, initializer=_meet_at, initargs=(context.Barrier(3),)) as pool:
        found = pool.map(_fetch, [str(tmp_path)] * 3, chunksize=1)
    assert found == [str(tmp_path / "data.bin")] * 3
    assert (tmp_path / "downloads.log").read_text() == "x"


def test_failed_download_raises_data_missing_with_the_message(tmp_path) -> None:
    def fail(path: str) -> None:
        raise OSError("no network")

    with pytest.raises(DataMissing, match="--dataset_path") as info:
        find_or_download(tmp_path / "new", ".lock", _find, fail, MESSAGE)
    assert isinstance(info.value.__cause__, OSError)


def test_download_that_leaves_files_missing_raises_data_missing(tmp_path) -> None:
    with pytest.raises(DataMissing, match="--dataset_path"):
        find_or_download(tmp_path, ".lock", _find, lambda path: None, MESSAGE)
