"""The FUSE floor: bench/fusefloor (the thinnest read-only FUSE file system,
built by `make bench` as build/fusefloor, or named by $FUSEFLOOR) mounted
over a local directory, so that a benchmark can tell what FUSE itself costs
on this machine from what mailfs adds."""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.environ.get('FUSEFLOOR',
                        os.path.join(os.path.dirname(HERE), 'build',
                                     'fusefloor'))


def usable():
    return (os.access(BINARY, os.X_OK) and
            shutil.which('fusermount3') is not None)


@contextlib.contextmanager
def mounted(source, tmp):
    """Mounts fusefloor over source at a new directory under tmp; yields
    (mount point, daemon pid)."""
    point = tempfile.mkdtemp(prefix='floor-', dir=tmp)
    subprocess.run([BINARY, source, point], check=True)
    try:
        pid = None
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline:
            out = subprocess.run(['pgrep', '-f', '%s %s %s' % (
                BINARY, source, point)], capture_output=True, text=True)
            pids = out.stdout.split()
            pid = int(pids[0]) if pids else None
            if pid is None:
                time.sleep(0.05)
        yield point, pid
    finally:
        subprocess.run(['fusermount3', '-u', point], check=False)
        with contextlib.suppress(OSError):
            os.rmdir(point)
