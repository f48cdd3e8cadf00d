"""The FUSE floor: bench/fusefloor (the fastest read-only FUSE file system
over a local directory, on libfuse's low-level API; built by `make bench`
as build/fusefloor, or named by $FUSEFLOOR) mounted over a local
directory, so that a benchmark can tell what FUSE itself costs on this
machine from what mailfs adds."""

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
XATTR = 'user.floor.requests'


def usable():
    return (os.access(BINARY, os.X_OK) and
            shutil.which('fusermount3') is not None)


def parse_requests(text):
    """{'READ': 200, ...} of a line 'READ:200 LOOKUP:3' (fusefloor's
    user.floor.requests, mailfs's fuse_requests)."""
    out = {}
    for word in text.split():
        kind, _, count = word.partition(':')
        if kind and count.isdigit():
            out[kind] = int(count)
    return out


def requests(point):
    """The requests fusefloor mounted at point has served, by kind (the
    GETXATTR that asks included)."""
    return parse_requests(os.getxattr(point, XATTR).decode())


@contextlib.contextmanager
def mounted(source, tmp, single_thread=False, mode=None):
    """Mounts fusefloor over source at a new directory under tmp, served
    by one thread (single_thread) or by up to 16 as mailfs is; mode
    'open' answers OPEN and RELEASE (-O: as a writable mailfs mount),
    'flush' answers FLUSH with no OPEN (-F: what no-open writes would
    cost); yields (mount point, daemon pid)."""
    point = tempfile.mkdtemp(prefix='floor-', dir=tmp)
    argv = [BINARY, '-f'] + (['-s'] if single_thread else []) + (
        {None: [], 'open': ['-O'], 'flush': ['-F']}[mode]) + [
        source, point]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(point):
            if proc.poll() is not None:
                raise RuntimeError('fusefloor exited (%d) before mounting '
                                   '%s' % (proc.returncode, point))
            if time.monotonic() > deadline:
                raise RuntimeError('fusefloor did not mount %s within 10 s'
                                   % point)
            time.sleep(0.01)
        yield point, proc.pid
    finally:
        subprocess.run(['fusermount3', '-u', point], check=False)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            os.rmdir(point)
