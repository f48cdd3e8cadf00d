"""Mounting mailfs for integration tests: a real FUSE mount of the built
binary ($MAILFS) against a harness server, unmounted on cleanup."""

import os
import subprocess
import tempfile
import time

MAILFS = os.environ.get('MAILFS') or os.path.join(
    os.path.dirname(__file__), '..', '..', 'build', 'mailfs')


def is_mounted(path):
    """True when path is a mount point (read from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo') as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


def write_password_file(directory, password):
    """A 0600 password file, as a careful user would make one."""
    path = os.path.join(directory, 'password')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(password + '\n')
    return path


class Mount:
    """One mailfs mount. `url` is the full mailbox URL; extra options go to
    -o. The password goes through a 0600 password file unless `env`
    provides MAILFS_PASSWORD. Use as a context manager or call umount()."""

    def __init__(self, url, password, cafile=None, options=(), env=None,
                 foreground=False, debug=False, timeout=20):
        self.tmp = tempfile.mkdtemp(prefix='mailfs-mnt-')
        self.path = os.path.join(self.tmp, 'mnt')
        os.mkdir(self.path)
        self.stderr_path = os.path.join(self.tmp, 'stderr')
        self.url = url
        self.password = password
        self.proc = None
        opts = list(options)
        if cafile:
            opts.append('cafile=' + cafile)
        if password is not None:
            opts.append('password_file=' +
                        write_password_file(self.tmp, password))
        self.args = [MAILFS]
        if debug:
            self.args.append('-d')
        elif foreground:
            self.args.append('-f')
        for o in opts:
            self.args += ['-o', o]
        self.args += [url, self.path]
        self.env = dict(os.environ)
        self.env.pop('MAILFS_PASSWORD', None)
        # Every mount starts with its own empty disk cache, so that
        # tests that count commands or bytes see a cold start; a test
        # that wants a cache to persist passes its own XDG_CACHE_HOME.
        self.env['XDG_CACHE_HOME'] = os.path.join(self.tmp, 'cache')
        if env:
            self.env.update(env)
        self.timeout = timeout
        self.foreground = foreground or debug

    def start(self):
        """Runs mailfs; returns self once the mount is up. In the default
        (daemon) mode mailfs itself returns only once it is mounted."""
        err = open(self.stderr_path, 'wb')
        if self.foreground:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=self.env)
            deadline = time.monotonic() + self.timeout
            while not is_mounted(self.path):
                if self.proc.poll() is not None:
                    raise RuntimeError('mailfs exited: ' + self.stderr())
                if time.monotonic() > deadline:
                    raise RuntimeError('mount did not appear')
                time.sleep(0.05)
        else:
            rc = subprocess.run(self.args, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, env=self.env,
                                timeout=self.timeout).returncode
            if rc != 0:
                raise RuntimeError('mailfs failed (%d): %s' %
                                   (rc, self.stderr()))
        err.close()
        return self

    def run(self):
        """Runs mailfs expecting it to fail; returns (exit status, stderr,
        seconds taken)."""
        t0 = time.monotonic()
        p = subprocess.run(self.args, stdin=subprocess.DEVNULL,
                           capture_output=True, env=self.env,
                           timeout=self.timeout)
        return p.returncode, p.stderr.decode(errors='replace'), \
            time.monotonic() - t0

    def stderr(self):
        with open(self.stderr_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def p(self, *parts):
        """A path inside the mount."""
        return os.path.join(self.path, *parts)

    def pid(self):
        """The pid of the mailfs process serving this mount."""
        out = subprocess.run(['pgrep', '-f', '-x', ' '.join(self.args)],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def status(self):
        """The mount's user.mail.status as a dict."""
        text = os.getxattr(self.path, 'user.mail.status').decode()
        return dict(l.split('=', 1) for l in text.splitlines())

    def requests(self):
        """The kernel's requests served so far, by kind (fuse_requests
        in the status): {kind: count}."""
        return {k: int(v) for k, v in
                (kv.split(':') for kv in
                 self.status().get('fuse_requests', '').split())}

    def wait_push(self, timeout=10):
        """Waits until push watches (the status's push is not off); True
        when it does. A change made before that may go unreported, as
        it would for any client."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status().get('push', 'off') != 'off':
                return True
            time.sleep(0.05)
        return False

    def umount(self):
        """Unmounts (lazily if busy) and waits for mailfs to exit."""
        if is_mounted(self.path):
            r = subprocess.run(['fusermount3', '-u', self.path],
                               capture_output=True)
            if r.returncode != 0:
                subprocess.run(['fusermount3', '-u', '-z', self.path],
                               capture_output=True)
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.monotonic() + 10
        while self.pid() and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.umount()


def delta(before, after):
    """What changed between two readings of Mount.requests()."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) != before.get(k, 0)}
