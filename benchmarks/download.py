"""Fetch a missing dataset once, even when several trial processes start together and all find it absent.

The files are looked for first; only if they are absent is torchvision's downloader run, under a file lock in the
dataset folder, so that the first worker downloads and the others wait and then find the files. Any failure (no
internet, no torchvision, a read-only folder) becomes one `DataMissing` whose message says how to point the script at
local files.
"""
from __future__ import annotations

import os
from typing import Callable, TypeVar

Found = TypeVar("Found")


class DataMissing(RuntimeError):
    """The dataset's files are absent and could not be downloaded."""


def find_or_download(dataset_path: str | os.PathLike, lock_name: str,
                     find: Callable[[str | os.PathLike], Found | None], download: Callable[[str], object],
                     missing_message: str) -> Found:
    """`find(dataset_path)`, after `download(dataset_path)` under the lock `lock_name` if nothing was found."""
    found = find(dataset_path)
    if found is not None:
        return found
    try:
        os.makedirs(dataset_path, exist_ok=True)
        from filelock import FileLock
        with FileLock(os.path.join(dataset_path, lock_name)):
            found = find(dataset_path)
            if found is None:
                download(str(dataset_path))
                found = find(dataset_path)
    except Exception as err:
        raise DataMissing(missing_message) from err
    if found is None:
        raise DataMissing(missing_message)
    return found
