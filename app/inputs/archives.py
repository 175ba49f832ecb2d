"""Tiles sent as one .zip archive: a folder of tiles exported from a slide viewer, dropped as one file.

Each member is decoded exactly as a dropped file would be. Nothing is extracted to disk; a member is read
only when its turn to be decoded comes, after its declared size passed the per-tile limit, so one member at a
time is held uncompressed. The members of one drop may take at most ``MAX_UNCOMPRESSED_MB`` together: a small
archive can declare gigabytes. Every problem becomes a message naming the archive and the member.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

ARCHIVE_TYPES = ["zip"]
MAX_ARCHIVE_MB = 100  # a drop is one WebSocket message (tile_drop.MAX_DROP_MB)
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
# 500 tiles of 512 KB: real 96x96 tiles take 10-60 KB, so only an archive built to inflate reaches it.
MAX_UNCOMPRESSED_MB = 256


class MemberError(ValueError):
    """A member that cannot be read from its archive; the message names archive/member and the reason."""


class ArchiveMember:
    """One image member, read from the archive only when ``getvalue()`` is called (as an uploaded file is)."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, max_bytes: int):
        self._archive, self._info, self.where, self._max = archive, info, where, max_bytes
        self.size = info.file_size

    def getvalue(self) -> bytes:
        """The member's bytes; raises ``MemberError`` when it cannot be read or is larger than it declared."""
        try:
            with self._archive.open(self._info) as fh:
                data = fh.read(self._max + 1)  # the declared size can lie
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
            raise MemberError(f"{self.where}: could not be read from the archive ({exc})") from None
        if len(data) > self._max:
            raise MemberError(f"{self.where}: larger than its archive entry says; the limit for a tile is "
                              f"{self._max / 2**20:.0f} MB")
        return data


@dataclass
class Expanded:
    """The uploads with each archive replaced by its image members, plus what could not be used."""

    files: list[tuple[str, object, str]] = field(default_factory=list)  # (name, data, where it came from)
    errors: list[str] = field(default_factory=list)


def is_archive(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() == ".zip"


def member_path(member: str) -> PurePosixPath:
    """A member's path, with the backslashes of archives made on Windows read as folder separators."""
    return PurePosixPath(member.replace("\\", "/"))


def _ignored(member: str) -> bool:
    """Folders and what archivers add by themselves (macOS resource forks, Finder and Windows metadata)."""
    parts = member_path(member).parts
    if not parts:
        return True
    return (member.endswith(("/", "\\")) or "__MACOSX" in parts or parts[-1].startswith(".")
            or parts[-1].lower() in {"thumbs.db", "desktop.ini"})


def expand(files: list[tuple[str, object]], *, max_member_bytes: int, max_members: int,
           max_archive_bytes: int = MAX_ARCHIVE_MB * 2**20,
           max_uncompressed_bytes: int = MAX_UNCOMPRESSED_MB * 2**20) -> Expanded:
    """Replace every .zip in ``(name, data)`` uploads by its image members (``ArchiveMember``, read later),
    in archive order.

    ``data`` is bytes or an uploaded file. Members above ``max_member_bytes`` (uncompressed, as the archive
    declares and as actually read), members beyond ``max_uncompressed_bytes`` in total, and other unusable
    entries become messages; archives stop contributing once ``max_members`` images have been collected (the
    caller reports what is left over).
    """
    out = Expanded()
    budget = max_uncompressed_bytes
    for name, data in files:
        if not is_archive(name):
            out.files.append((name, data, name))
            continue
        size = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else int(data.size)
        if size > max_archive_bytes:
            out.errors.append(f"{name}: is {size / 2**20:.0f} MB; the limit for an archive of tiles is "
                              f"{max_archive_bytes / 2**20:.0f} MB")
            continue
        raw = data if isinstance(data, (bytes, bytearray, memoryview)) else data.getvalue()
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
            members = [m for m in archive.infolist() if not _ignored(m.filename)]
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            out.errors.append(f"{name}: not a readable .zip archive ({exc})")
            continue
        images = over_budget = 0
        for m in members:
            where = f"{name}/{m.filename}"
            if member_path(m.filename).suffix.lower() not in IMAGE_SUFFIXES:
                out.errors.append(f"{where}: not a tile image (.tif .png .jpg); skipped")
                continue
            if m.flag_bits & 0x1:
                out.errors.append(f"{where}: encrypted; PathReview does not open password-protected archives")
                continue
            if m.file_size > max_member_bytes:
                out.errors.append(f"{where}: is {m.file_size / 2**20:.1f} MB uncompressed; the limit for a tile is "
                                  f"{max_member_bytes / 2**20:.0f} MB")
                continue
            if len(out.files) >= max_members:
                out.files.append((member_path(m.filename).name, b"", where))  # counted as skipped downstream
                continue
            if m.file_size > budget:
                over_budget += 1
                continue
            budget -= m.file_size
            out.files.append((member_path(m.filename).name, ArchiveMember(archive, m, where, max_member_bytes),
                              where))
            images += 1
        if over_budget:
            out.errors.append(f"{name}: {over_budget} member(s) skipped: the tiles of one drop may take at most "
                              f"{max_uncompressed_bytes / 2**20:.0f} MB uncompressed together")
        if images == 0 and not over_budget and not any(e.startswith(f"{name}/") for e in out.errors):
            out.errors.append(f"{name}: the archive holds no tile images (.tif .png .jpg)")
    return out
