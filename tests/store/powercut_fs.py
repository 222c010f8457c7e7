"""A file system that forgets everything not fsynced when the power goes (FUSE, for tests).

    python tests/store/powercut_fs.py BACKING MOUNTPOINT

Mounts BACKING at MOUNTPOINT. File contents written through the mount live only in this
process's memory, like a page cache, until the writer calls ``fsync``/``fdatasync`` on the
file: then the dirty blocks and the file's size are written to BACKING and fsynced there. Kill
this process with SIGKILL and everything unsynced is gone, exactly what a power cut does to a
page cache; BACKING then holds what a disk would hold after the cut.

Names (create, unlink, rename, mkdir) are applied to BACKING at once, as a journaling file
system commits its metadata ahead of the data (ext4's data=ordered keeps metadata safe and
loses unsynced contents). So a file may survive a cut with contents older than its name, or
empty: the case that unsynced data loss is about. LazyFS (the research tool that does this) is
not packaged for Debian or PyPI; device-mapper's dm-flakey needs a kernel driver this machine
lacks. This is the strongest substitute that runs here, built on mfusepy and the kernel's FUSE.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from dataclasses import dataclass, field

import mfusepy as fuse

BLOCK = 4096


@dataclass
class Dirty:
    """Unsynced contents of one file: changed blocks over the backing file, and its size."""

    size: int
    blocks: dict[int, bytearray] = field(default_factory=dict)


class PowerCutFS(fuse.Operations):
    """Pass-through for names, a volatile cache for contents."""

    use_ns = True

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.dirty: dict[str, Dirty] = {}
        self._guard = threading.RLock()

    # ---- paths ----------------------------------------------------------------------------

    def _real(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _backing_size(self, path: str) -> int:
        try:
            return os.stat(self._real(path)).st_size
        except FileNotFoundError:
            return 0

    # ---- metadata: passed through ---------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        try:
            st = os.lstat(self._real(path))
        except OSError as exc:
            raise fuse.FuseOSError(exc.errno) from exc
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid",
                                             "st_size", "st_atime_ns", "st_mtime_ns",
                                             "st_ctime_ns")}
        with self._guard:
            found = self.dirty.get(path)
            if found is not None:
                attrs["st_size"] = found.size
        attrs["st_atime"], attrs["st_mtime"], attrs["st_ctime"] = (
            attrs.pop("st_atime_ns"), attrs.pop("st_mtime_ns"), attrs.pop("st_ctime_ns"))
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise fuse.FuseOSError(errno.EACCES)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self._real(path), ns=times)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def unlink(self, path: str) -> int:
        with self._guard:
            os.unlink(self._real(path))
            self.dirty.pop(path, None)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self._guard:
            os.rename(self._real(old), self._real(new))
            moved = self.dirty.pop(old, None)
            self.dirty.pop(new, None)
            if moved is not None:
                self.dirty[new] = moved
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                            "f_favail", "f_ffree", "f_files", "f_flag",
                                            "f_frsize", "f_namemax")}

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        fd = os.open(self._real(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return 0

    # ---- contents: cached until fsync -----------------------------------------------------

    def create(self, path: str, mode: int, fi: object = None) -> int:
        fd = os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.close(fd)
        with self._guard:
            self.dirty.pop(path, None)
        return 0

    def open(self, path: str, flags: int) -> int:
        if flags & os.O_TRUNC:
            self.truncate(path, 0)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self._guard:
            found = self.dirty.get(path)
            end = min(offset + size, found.size if found else self._backing_size(path))
            if end <= offset:
                return b""
            if found is None:
                return self._pread(path, offset, end - offset)
            out = bytearray()
            pos = offset
            while pos < end:
                index, inner = divmod(pos, BLOCK)
                take = min(BLOCK - inner, end - pos)
                block = found.blocks.get(index)
                if block is None:
                    chunk = self._pread(path, pos, take).ljust(take, b"\0")
                else:
                    chunk = bytes(block[inner:inner + take])
                out += chunk
                pos += take
            return bytes(out)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self._guard:
            found = self.dirty.get(path)
            if found is None:
                found = self.dirty[path] = Dirty(self._backing_size(path))
            pos, view = offset, memoryview(data)
            while view:
                index, inner = divmod(pos, BLOCK)
                take = min(BLOCK - inner, len(view))
                block = found.blocks.get(index)
                if block is None:
                    start = index * BLOCK
                    known = self._pread(path, start, BLOCK) if start < self._backing_size(path) \
                        else b""
                    block = found.blocks[index] = bytearray(known.ljust(BLOCK, b"\0"))
                block[inner:inner + take] = view[:take]
                view = view[take:]
                pos += take
            found.size = max(found.size, offset + len(data))
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self._guard:
            found = self.dirty.get(path)
            if found is None:
                found = self.dirty[path] = Dirty(self._backing_size(path))
            if length < found.size:
                for index in [i for i in found.blocks if i * BLOCK >= length]:
                    del found.blocks[index]
                index, inner = divmod(length, BLOCK)
                if inner:
                    block = found.blocks.get(index)
                    if block is None:
                        known = self._pread(path, index * BLOCK, BLOCK)
                        block = found.blocks[index] = bytearray(known.ljust(BLOCK, b"\0"))
                    block[inner:] = b"\0" * (BLOCK - inner)
            found.size = length
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self._guard:
            found = self.dirty.pop(path, None)
            if found is None:
                return 0
            fd = os.open(self._real(path), os.O_WRONLY)
            try:
                for index, block in sorted(found.blocks.items()):
                    start = index * BLOCK
                    if start < found.size:
                        os.pwrite(fd, bytes(block[:found.size - start]), start)
                os.ftruncate(fd, found.size)
                os.fsync(fd)
            finally:
                os.close(fd)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0  # close() is not fsync(): the contents stay in the cache

    def release(self, path: str, fh: int) -> int:
        return 0

    def _pread(self, path: str, offset: int, size: int) -> bytes:
        try:
            fd = os.open(self._real(path), os.O_RDONLY)
        except FileNotFoundError:
            return b""
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)


def main() -> None:
    backing, mountpoint = sys.argv[1], sys.argv[2]
    # Without writeback caching (FUSE's default) every write() reaches this process at once;
    # the kernel's page cache only serves reads, and dies with the mount.
    fuse.FUSE(PowerCutFS(backing), mountpoint, foreground=True, nothreads=True,
              attr_timeout=0, entry_timeout=0)


if __name__ == "__main__":
    main()
