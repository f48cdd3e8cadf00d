"""Building, installing and running mailfs the way a user does.

- The README's commands on a bare machine, simulated: the dependency
  queries (pkg-config) fail until the install step (make deps) has run, as
  they do on a fresh Debian 12 before apt-get installed libfuse3-dev.
- make install / uninstall and the systemd user unit mailfs@.service.
- make deb, the package installed with dpkg, and mounts through mount(8):
  `mount -t fuse.mailfs` and an fstab line (mount.fuse3 runs the mailfs
  it finds on mount's own PATH, hence the installed package).
- notmuch indexing a mount with its database outside it.
"""

import base64
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import (MAILFS, Mount, is_mounted,
                                     write_password_file)

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), '..', '..'))
USER = 'alice'


class BareMachine:
    """A pkg-config that answers only once `installed` exists, and an
    install step that creates it and logs that it ran."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='mailfs-bare-')
        self.installed = os.path.join(self.dir, 'installed')
        self.log = os.path.join(self.dir, 'log')
        self.pkg_config = os.path.join(self.dir, 'pkg-config')
        real = shutil.which('pkg-config')
        with open(self.pkg_config, 'w') as f:
            f.write('#!/bin/sh\n'
                    f'echo "pkg-config $*" >> {self.log}\n'
                    f'[ -e {self.installed} ] || exit 1\n'
                    f'exec {real} "$@"\n')
        os.chmod(self.pkg_config, 0o755)
        self.deps = os.path.join(self.dir, 'deps')
        with open(self.deps, 'w') as f:
            f.write('#!/bin/sh\n'
                    f'echo deps >> {self.log}\n'
                    f'touch {self.installed}\n')
        os.chmod(self.deps, 0o755)
        self.demo = os.path.join(self.dir, 'demo')
        with open(self.demo, 'w') as f:
            # Stands in for the server start only: it proves the binary
            # was built and runs.
            f.write('#!/bin/sh\n'
                    f'"{self.dir}/build/mailfs" --version >> {self.log}\n')
        os.chmod(self.demo, 0o755)

    def make(self, *targets):
        return subprocess.run(
            ['make', '-C', REPO, 'B=' + os.path.join(self.dir, 'build'),
             'PKG_CONFIG=' + self.pkg_config, 'DEPS=' + self.deps,
             'DEMO=' + self.demo] + list(targets),
            capture_output=True, text=True, timeout=600)

    def logged(self):
        with open(self.log) as f:
            return f.read().splitlines()


class TestBareMachine(unittest.TestCase):
    def setUp(self):
        self.bare = BareMachine()
        self.addCleanup(shutil.rmtree, self.bare.dir, True)

    def test_make_demo_builds_in_one_go_on_a_bare_machine(self):
        r = self.bare.make('demo')
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
        log = self.bare.logged()
        self.assertIn('deps', log)
        # Every query that the build used ran after the install step.
        first_deps = log.index('deps')
        self.assertFalse(any(line.startswith('pkg-config')
                             for line in log[:first_deps]), log)
        self.assertTrue(any(line.startswith('mailfs ') for line in log),
                        log)

    def test_without_the_install_step_the_build_fails(self):
        # The simulation is real: with no deps the headers are not found.
        r = subprocess.run(
            ['make', '-C', REPO,
             'B=' + os.path.join(self.bare.dir, 'build'),
             'PKG_CONFIG=' + self.bare.pkg_config,
             os.path.join(self.bare.dir, 'build', 'obj', 'fsnode.o')],
            capture_output=True, text=True, timeout=600)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('fuse.h', r.stderr)


def makefile_version():
    with open(os.path.join(REPO, 'Makefile')) as f:
        return re.search(r'^VERSION := (\S+)$', f.read(), re.M).group(1)


def make(*args, timeout=300):
    return subprocess.run(['make', '-C', REPO] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def tree_modes(root):
    """{path relative to root: permission bits} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = os.stat(p).st_mode & 0o7777
    return out


def unit_settings(path):
    """The Key=value lines of a unit file, as {key: [values]}."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and line[0] not in '#;[' and '=' in line:
                key, value = line.split('=', 1)
                out.setdefault(key, []).append(value)
    return out


def verify_unit(unit, instance='work', man=True):
    """systemd-analyze's verdict on a user unit template, checked as the
    instance mailfs@INSTANCE.service: (exit status, its messages)."""
    tmp = tempfile.mkdtemp(prefix='mailfs-unit-')
    try:
        runtime = os.path.join(tmp, 'runtime')
        os.mkdir(runtime, 0o700)
        copy = os.path.join(tmp, 'mailfs@%s.service' % instance)
        shutil.copy(unit, copy)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
        args = ['systemd-analyze', '--user', 'verify']
        if not man:
            args.append('--man=no')
        r = subprocess.run(args + [copy], capture_output=True, text=True,
                           env=env, cwd=tmp, timeout=60)
        return r.returncode, (r.stdout + r.stderr).strip()
    finally:
        shutil.rmtree(tmp, True)


def mailfs_pids(mountpoint):
    """Pids of processes whose command line has mountpoint as an argument
    (the mailfs serving it)."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if os.fsencode(mountpoint) in argv:
            pids.append(int(pid))
    return pids


def unmount(mountpoint, command=('fusermount3', '-u')):
    """Unmounts with command (lazily with fusermount3 if that fails),
    then waits for mailfs to exit."""
    if is_mounted(mountpoint):
        if subprocess.run(list(command) + [mountpoint],
                          capture_output=True).returncode != 0:
            subprocess.run(['fusermount3', '-u', '-z', mountpoint],
                           capture_output=True)
    deadline = time.monotonic() + 10
    while mailfs_pids(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_mailfs(mountpoint):
    """Ends a mailfs that a failed test left serving mountpoint (in a
    namespace that only that mailfs keeps alive)."""
    for pid in mailfs_pids(mountpoint):
        os.kill(pid, signal.SIGTERM)


def run_with_fstab(d, fstab, last, env, bin_dir=None):
    """Runs the shell line `last` (which becomes a user: setpriv, su) in a
    private mount namespace where fstab is /etc/fstab, a tmpfs is
    /run/mount (mount(8)'s record of user mounts) and /dev/fuse is open
    to all (a container's may be 0600, unlike a normal system's), with
    bin_dir, if given, over /usr/local/bin: where mount.fuse3 finds
    mailfs (mount(8) runs helpers with a PATH of its own). The machine's
    files stay as they are. d is a directory of the caller's, readable by
    all; returns the CompletedProcess."""
    with open(os.path.join(d, 'fstab'), 'w') as f:
        f.write(fstab)
    os.makedirs(os.path.join(d, 'dev'), exist_ok=True)
    rdev = os.stat('/dev/fuse').st_rdev
    script = ('set -e\n'
              'mount -t tmpfs none "$D/dev"\n'
              'mknod -m 666 "$D/dev/fuse" c %d %d\n'
              'mount --bind "$D/dev/fuse" /dev/fuse\n'
              'mount --bind "$D/fstab" /etc/fstab\n'
              'mount -t tmpfs none /run/mount\n' %
              (os.major(rdev), os.minor(rdev)))
    if bin_dir:
        script += 'mount --bind "%s" /usr/local/bin\n' % bin_dir
    return subprocess.run(['unshare', '-m', 'sh', '-c', script + last],
                          env=dict(os.environ, D=d, **env),
                          capture_output=True, text=True, timeout=90)


# One server for the classes below, with a small mailbox: text messages
# (corpus.has_invoice() tells which mention "invoice") in two folders, and
# one whose text is base64-encoded, so that only a decoding indexer finds
# its words.
_SERVER = None
INBOX_MESSAGES = range(0, 30)
LISTS_MESSAGES = range(30, 40)
INVOICES = sum(1 for i in list(INBOX_MESSAGES) + list(LISTS_MESSAGES)
               if corpus.has_invoice(i))
ENCODED_WORD = 'quokka'


def encoded_message():
    text = ('The yearly %s census is attached, as promised.\r\n' %
            ENCODED_WORD).encode()
    return ('From: Carol Martin <carol.martin@example.org>\r\n'
            'To: Alice Example <alice@example.com>\r\n'
            'Subject: Census\r\n'
            'Date: Mon, 03 Jun 2024 10:00:00 +0000\r\n'
            'Message-ID: <census.1@mailfs.test>\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=utf-8\r\n'
            'Content-Transfer-Encoding: base64\r\n'
            '\r\n').encode() + base64.encodebytes(text).replace(
                b'\n', b'\r\n')


def populate(s, user):
    s.append_many(user, 'INBOX', [corpus.text_message(i)
                                  for i in INBOX_MESSAGES])
    s.append(user, 'INBOX', encoded_message())
    s.create_folder(user, 'Lists')
    s.append_many(user, 'Lists', [corpus.text_message(i)
                                  for i in LISTS_MESSAGES])


def server():
    """The server, alice's mailbox filled; bob's is left to one test."""
    global _SERVER
    if _SERVER is None:
        s = MailServer().start()
        try:
            populate(s, USER)
        except Exception:
            s.stop()
            s.cleanup()
            raise
        _SERVER = s
    return _SERVER


def tearDownModule():
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER.cleanup()
        _SERVER = None


def url():
    return 'imaps://%s@localhost:%d' % (USER, server().imaps_port)


class TestInstall(unittest.TestCase):
    """make install / make uninstall, and the user unit they install."""

    EXPECTED = {'usr/bin/mailfs': 0o755,
                'usr/share/man/man1/mailfs.1': 0o644,
                'usr/lib/systemd/user/mailfs@.service': 0o644}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='mailfs-install-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    @staticmethod
    def make(*args):
        # The build directory of the binary under test.
        return make('B=' + os.path.dirname(os.path.abspath(MAILFS)), *args)

    def test_install_into_destdir_and_uninstall(self):
        dest = os.path.join(self.tmp, 'dest')
        r = self.make('install', 'DESTDIR=' + dest, 'PREFIX=/usr')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(tree_modes(dest), self.EXPECTED)
        with open(os.path.join(dest, 'usr/bin/mailfs'), 'rb') as f, \
                open(MAILFS, 'rb') as g:
            self.assertTrue(f.read() == g.read(), 'not the built binary')
        unit = os.path.join(dest, 'usr/lib/systemd/user/mailfs@.service')
        with open(unit) as f:
            self.assertNotIn('@BINDIR@', f.read())
        kv = unit_settings(unit)
        # The binary where it is installed, not where it was staged.
        self.assertEqual(kv['ExecStart'], ['/usr/bin/mailfs -f %i'])
        self.assertEqual(kv['Type'], ['notify'])
        self.assertEqual(kv['Restart'], ['on-failure'])
        self.assertIn('RestartSec', kv)
        self.assertEqual(kv['WantedBy'], ['default.target'])

        r = self.make('uninstall', 'DESTDIR=' + dest, 'PREFIX=/usr')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(tree_modes(dest), {})

    @unittest.skipUnless(shutil.which('systemd-analyze'),
                         'systemd-analyze is not installed')
    def test_installed_unit_passes_systemd_analyze_verify(self):
        # A real prefix (no DESTDIR), so that verify finds ExecStart's
        # binary; the man page is not on man's path there.
        prefix = os.path.join(self.tmp, 'prefix')
        r = self.make('install', 'PREFIX=' + prefix)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        unit = os.path.join(prefix, 'lib/systemd/user/mailfs@.service')
        self.assertEqual(unit_settings(unit)['ExecStart'],
                         [prefix + '/bin/mailfs -f %i'])
        rc, out = verify_unit(unit, man=False)
        self.assertEqual((rc, out), (0, ''))
        # verify does complain about a unit it cannot use.
        with open(unit) as f:
            text = f.read()
        with open(unit, 'w') as f:
            f.write(text.replace(prefix + '/bin/mailfs',
                                 prefix + '/nothing-here'))
        rc, out = verify_unit(unit, man=False)
        self.assertNotEqual(rc, 0)
        self.assertIn('nothing-here', out)


class TestStop(unittest.TestCase):
    """The unit stops mailfs with SIGTERM (systemctl stop): mailfs in the
    foreground must then unmount and exit with status 0, or systemd
    would count the stop as a failure."""

    def test_sigterm_unmounts_and_exits_cleanly(self):
        s = server()
        m = Mount(url(), s.users[USER], cafile=s.cafile, foreground=True)
        self.addCleanup(m.umount)
        m.start()
        self.assertIn('INBOX', os.listdir(m.path))
        # The kernel sends RELEASEDIR for the closed directory
        # asynchronously; a SIGTERM before it arrives ends the session
        # with libfuse's handle still open, which LeakSanitizer (make
        # asan-check) reports at exit.
        time.sleep(0.5)
        m.proc.send_signal(signal.SIGTERM)
        self.assertEqual(m.proc.wait(10), 0, m.stderr())
        self.assertFalse(is_mounted(m.path))


def package_installed():
    r = subprocess.run(['dpkg-query', '-W', '-f=${Status}', 'mailfs'],
                       capture_output=True, text=True)
    return r.returncode == 0 and 'installed' in r.stdout.split()


@unittest.skipUnless(os.geteuid() == 0 and shutil.which('dpkg-buildpackage')
                     and shutil.which('dh'),
                     'needs root, dpkg-dev and debhelper')
class TestDebianPackage(unittest.TestCase):
    """make deb, dpkg -i, then mounts through mount(8) with the installed
    /usr/bin/mailfs; dpkg -r afterwards."""

    @classmethod
    def setUpClass(cls):
        if package_installed() or os.path.lexists('/usr/bin/mailfs'):
            raise unittest.SkipTest('a mailfs is installed already; '
                                    'not replacing it')
        cls.tmp = tempfile.mkdtemp(prefix='mailfs-deb-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        build = os.path.join(cls.tmp, 'build')
        t0 = time.monotonic()
        r = make('deb', 'B=' + build, timeout=600)
        cls.deb_seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise AssertionError('make deb failed:\n' + r.stdout[-3000:] +
                                 r.stderr[-3000:])
        cls.version = makefile_version()
        arch = subprocess.run(['dpkg', '--print-architecture'],
                              capture_output=True, text=True).stdout.strip()
        cls.deb = os.path.join(build, 'mailfs_%s_%s.deb' % (cls.version,
                                                             arch))
        if not os.path.exists(cls.deb):
            raise AssertionError('no %s after make deb:\n%s' %
                                 (cls.deb, r.stdout[-2000:]))
        cls.addClassCleanup(cls.remove_package)
        r = subprocess.run(['dpkg', '-i', cls.deb], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError('dpkg -i failed: ' + r.stdout + r.stderr)
        s = server()
        cls.cafile = s.cafile
        cls.password_file = write_password_file(cls.tmp, s.users[USER])

    @classmethod
    def remove_package(cls):
        subprocess.run(['dpkg', '-r', 'mailfs'], capture_output=True,
                       timeout=120)

    def mountpoint(self):
        d = tempfile.mkdtemp(prefix='mailfs-mnt-', dir=self.tmp)
        path = os.path.join(d, 'mnt')
        os.mkdir(path)
        self.addCleanup(unmount, path)
        return path

    def check_mount(self, path):
        """The mount at path is served by the installed /usr/bin/mailfs
        and shows the account."""
        self.assertTrue(is_mounted(path))
        pids = mailfs_pids(path)
        self.assertEqual(len(pids), 1, pids)
        self.assertEqual(os.readlink('/proc/%d/exe' % pids[0]),
                         '/usr/bin/mailfs')
        self.assertEqual(sorted(os.listdir(path)),
                         ['INBOX', 'Lists', 'Trash'])
        hits = subprocess.run(['grep', '-rl', 'invoice', path],
                              capture_output=True, text=True).stdout.split()
        self.assertEqual(len(hits), INVOICES, hits)

    def test_package_holds_the_binary_the_man_page_and_the_unit(self):
        listing = subprocess.run(['dpkg-deb', '-c', self.deb],
                                 capture_output=True, text=True,
                                 check=True).stdout
        files = {line.split()[-1]: line.split()[0]
                 for line in listing.splitlines()
                 if not line.startswith('d')}
        self.assertEqual(files.get('./usr/bin/mailfs'), '-rwxr-xr-x')
        self.assertEqual(files.get('./usr/share/man/man1/mailfs.1.gz'),
                         '-rw-r--r--')
        self.assertEqual(files.get('./usr/lib/systemd/user/mailfs@.service'),
                         '-rw-r--r--')

        def field(name):
            return subprocess.run(['dpkg-deb', '-f', self.deb, name],
                                  capture_output=True, text=True,
                                  check=True).stdout.strip()
        self.assertEqual(field('Version'), self.version)
        depends = [d.strip().split()[0] for d in field('Depends').split(',')]
        for dep in ('fuse3', 'libfuse3-3', 'libssl3', 'zlib1g', 'libc6'):
            self.assertIn(dep, depends)
        # Installed, it runs.
        r = subprocess.run(['/usr/bin/mailfs', '--version'],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), 'mailfs ' + self.version)
        self.assertEqual(unit_settings(
            '/usr/lib/systemd/user/mailfs@.service')['ExecStart'],
            ['/usr/bin/mailfs -f %i'])
        print('\n  make deb took %.1f s' % self.deb_seconds, end=' ',
              flush=True)

    @unittest.skipUnless(shutil.which('systemd-analyze'),
                         'systemd-analyze is not installed')
    def test_installed_unit_passes_systemd_analyze_verify(self):
        # Installed, even the man: link of Documentation= resolves.
        rc, out = verify_unit('/usr/lib/systemd/user/mailfs@.service',
                              man=bool(shutil.which('man')))
        self.assertEqual((rc, out), (0, ''))

    def test_mount_t_fuse_mailfs(self):
        path = self.mountpoint()
        r = subprocess.run(
            ['mount', '-t', 'fuse.mailfs', url(), path, '-o',
             'cafile=%s,password_file=%s' % (self.cafile,
                                              self.password_file)],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_mount(path)
        unmount(path)
        self.assertFalse(is_mounted(path))
        self.assertEqual(mailfs_pids(path), [])

    def fstab_mount(self, options):
        """Mounts through a temporary fstab holding one line; returns
        the mount point."""
        path = self.mountpoint()
        fstab = os.path.join(os.path.dirname(path), 'fstab')
        with open(fstab, 'w') as f:
            f.write('%s %s fuse.mailfs %s 0 0\n' % (url(), path, options))
        r = subprocess.run(['mount', '--fstab', fstab, path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return path

    def test_fstab_line(self):
        # The README's line: mount(8)'s own options (noauto, user,
        # _netdev) are not passed on to mailfs. umount(8), not
        # fusermount3, so that mount's record of the `user` mount
        # (/run/mount/utab) goes too.
        path = self.fstab_mount(
            'noauto,user,_netdev,cafile=%s,password_file=%s' %
            (self.cafile, self.password_file))
        self.check_mount(path)
        unmount(path, ['umount'])
        self.assertFalse(is_mounted(path))
        self.assertEqual(mailfs_pids(path), [])

    @unittest.skipUnless(shutil.which('unshare') and shutil.which('setpriv'),
                         'needs unshare and setpriv (util-linux)')
    def test_fstab_user_mount_by_the_user(self):
        # The README's line as its user sees it: with `user`, someone
        # other than root mounts and unmounts the entry with plain
        # `mount DIR` / `umount DIR` (mount(8) is setuid; mailfs then
        # runs as that user and mounts through fusermount3). That needs
        # the line in /etc/fstab itself, so this runs in a private mount
        # namespace where a temporary file is bound over /etc/fstab (and a
        # tmpfs over /run/mount, mount's record of user mounts): see
        # run_with_fstab().
        nobody = pwd.getpwnam('nobody')
        d = tempfile.mkdtemp(prefix='mailfs-user-')
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        mnt = os.path.join(d, 'mnt')
        os.mkdir(mnt)
        self.addCleanup(kill_mailfs, mnt)
        pw = os.path.join(d, 'password')
        shutil.copy(self.password_file, pw)
        ca = os.path.join(d, 'ca.pem')
        shutil.copy(self.cafile, ca)
        os.chmod(ca, 0o644)
        for p in (mnt, pw):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        fstab = ('%s %s fuse.mailfs noauto,user,_netdev,cafile=%s,'
                 'password_file=%s 0 0\n' % (url(), mnt, ca, pw))
        as_user = ('set -e; mount "$D/mnt"; echo "user: $(id -un)"; '
                   'echo "owner: $(stat -c %U "$D/mnt")"; ls "$D/mnt"; '
                   'umount "$D/mnt"; echo unmounted')
        r = run_with_fstab(
            d, fstab, 'exec setpriv --reuid=%d --regid=%d --clear-groups '
            'sh -c "$AS_USER"\n' % (nobody.pw_uid, nobody.pw_gid),
            {'AS_USER': as_user})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.split(),
                         ['user:', 'nobody', 'owner:', 'nobody',
                          'INBOX', 'Lists', 'Trash', 'unmounted'],
                         r.stdout + r.stderr)

    def test_fstab_password_command_with_spaces_written_040(self):
        # fstab writes a space as \040; mount decodes it and mount.fuse3
        # quotes it for the shell, so such a command arrives whole (a
        # comma cannot be written: it always splits the options).
        path = self.fstab_mount(
            'noauto,cafile=%s,password_command=cat\\040"%s"' %
            (self.cafile, self.password_file))
        self.check_mount(path)


# A plain user with a home of its own, for mounts by a user.
HOME_USER = 'mailfsu'


def home_user():
    """HOME_USER's passwd entry; the user is made (useradd -m) the first
    time."""
    try:
        return pwd.getpwnam(HOME_USER)
    except KeyError:
        subprocess.run(['useradd', '-m', '-s', '/bin/sh', HOME_USER],
                       check=True, capture_output=True, timeout=60)
        return pwd.getpwnam(HOME_USER)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which('unshare') and
                     shutil.which('su') and shutil.which('useradd') and
                     os.path.exists('/sbin/mount.fuse3'),
                     'needs root, unshare, su, useradd and mount.fuse3')
class TestUserMountHome(unittest.TestCase):
    """A `user` fstab line mounted by its user with plain `mount ~/mail`
    (su USER -c): mount(8), setuid, runs mailfs as the user but with
    HOME=/root (and whatever XDG variables the user had). The disk cache
    (IMAP) and the local store (POP3) must go under the user's own home:
    they went under /root, where the user may make nothing, so IMAP
    mounted without a disk cache and POP3 did not mount at all. The built
    mailfs is what mount(8) runs: a copy bound over /usr/local/bin in the
    test's private mount namespace (run_with_fstab)."""

    @classmethod
    def setUpClass(cls):
        cls.user = home_user()
        cls.tmp = tempfile.mkdtemp(prefix='mailfs-uhome-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        os.chmod(cls.tmp, 0o755)
        cls.bin_dir = os.path.join(cls.tmp, 'bin')
        os.mkdir(cls.bin_dir)
        shutil.copy(MAILFS, os.path.join(cls.bin_dir, 'mailfs'))
        os.chmod(os.path.join(cls.bin_dir, 'mailfs'), 0o755)
        s = server()
        cls.ca = os.path.join(cls.tmp, 'ca.pem')
        shutil.copy(s.cafile, cls.ca)
        os.chmod(cls.ca, 0o644)
        cls.password_file = write_password_file(cls.tmp, s.users[USER])
        os.chown(cls.password_file, cls.user.pw_uid, cls.user.pw_gid)
        cls.mnt = os.path.join(cls.user.pw_dir, 'mail')
        if not os.path.isdir(cls.mnt):
            os.mkdir(cls.mnt)
            cls.addClassCleanup(os.rmdir, cls.mnt)
        os.chown(cls.mnt, cls.user.pw_uid, cls.user.pw_gid)

    def setUp(self):
        self.addCleanup(kill_mailfs, self.mnt)

    def account_dirs(self, parent, port):
        """The directories under the user's home/parent named after the
        account on port (made by mailfs: removed after the test)."""
        base = os.path.join(self.user.pw_dir, parent)
        found = [os.path.join(base, n) for n in
                 (os.listdir(base) if os.path.isdir(base) else [])
                 if n.startswith(USER + '@') and n.endswith(':%d' % port)]
        for d in found:
            self.addCleanup(shutil.rmtree, d, True)
        return found

    def mount_as_user(self, url, env, then):
        """mount ~/mail as the user with url's fstab line, after the shell
        commands env and before then; unmounts; returns (the lines that
        `then` printed, stderr) once mailfs has exited."""
        fstab = ('%s %s fuse.mailfs noauto,user,cafile=%s,password_file=%s '
                 '0 0\n' % (url, self.mnt, self.ca, self.password_file))
        as_user = ('set -e; cd; %s; mount "$MNT"; '
                   'echo "exe: $(readlink /proc/$(pgrep -n -u "$(id -u)" '
                   '-x mailfs)/exe)"; %s; umount "$MNT"; echo unmounted' %
                   (env, then))
        r = run_with_fstab(self.tmp, fstab,
                           'exec su %s -c "$AS_USER"\n' % HOME_USER,
                           {'AS_USER': as_user, 'MNT': self.mnt},
                           bin_dir=self.bin_dir)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        deadline = time.monotonic() + 10
        while mailfs_pids(self.mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], 'exe: /usr/local/bin/mailfs', r.stdout)
        self.assertEqual(lines[-1], 'unmounted', r.stdout + r.stderr)
        return lines[1:-1], r.stderr

    def assert_users(self, path):
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid),
                         (self.user.pw_uid, self.user.pw_gid), path)
        self.assertTrue(os.listdir(path), path + ' is empty')

    def test_imap_disk_cache_in_the_users_home(self):
        port = server().imaps_port
        lines, err = self.mount_as_user(
            url(), 'unset XDG_CACHE_HOME XDG_DATA_HOME XDG_CONFIG_HOME',
            'ls "$MNT"; f=$(ls "$MNT/INBOX" | head -n 1); '
            'grep -m 1 "^Subject:" "$MNT/INBOX/$f"')
        self.assertEqual(lines[:3], ['INBOX', 'Lists', 'Trash'], lines)
        self.assertTrue(lines[3].startswith('Subject: '), lines)
        self.assertNotIn('disk cache', err)
        cache, = self.account_dirs('.cache/mailfs', port)
        self.assert_users(cache)
        self.assertEqual(self.account_dirs('.local/share/mailfs/pop3', port),
                         [])

    def test_pop3_store_in_the_users_home_not_roots_xdg(self):
        # XDG variables into root's directories (su keeps them) are not
        # the user's either.
        port = server().pop3s_port
        pop3 = 'pop3s://%s@localhost:%d' % (USER, port)
        lines, err = self.mount_as_user(
            pop3, 'export XDG_DATA_HOME=/root/.local/share '
            'XDG_CACHE_HOME=/root/.cache',
            'ls "$MNT" | wc -l; f=$(ls "$MNT" | head -n 1); '
            'grep -m 1 "^Subject:" "$MNT/$f"')
        self.assertEqual(int(lines[0]), len(INBOX_MESSAGES) + 1, lines)
        self.assertTrue(lines[1].startswith('Subject: '), lines)
        store, = self.account_dirs('.local/share/mailfs/pop3', port)
        self.assert_users(store)


@unittest.skipUnless(shutil.which('notmuch'), 'notmuch is not installed')
class TestNotmuch(unittest.TestCase):
    """notmuch indexes a mount whose database lives outside it (bob's
    mailbox: this test adds mail to it)."""

    def test_notmuch_indexes_the_mount_with_its_database_elsewhere(self):
        s = server()
        populate(s, 'bob')
        m = Mount(url().replace(USER + '@', 'bob@'), s.users['bob'],
                  cafile=s.cafile, options=['refresh=1'])
        self.addCleanup(m.umount)
        m.start()
        home = tempfile.mkdtemp(prefix='mailfs-notmuch-')
        self.addCleanup(shutil.rmtree, home, True)
        db = os.path.join(home, 'db')
        os.mkdir(db)
        config = os.path.join(home, 'notmuch-config')
        with open(config, 'w') as f:
            f.write('[database]\npath=%s\nmail_root=%s\n'
                    '[user]\nname=Bob\nprimary_email=bob@example.com\n'
                    '[new]\ntags=new\n' % (db, m.path))
        env = dict(os.environ, HOME=home, NOTMUCH_CONFIG=config,
                   XDG_CONFIG_HOME=os.path.join(home, '.config'),
                   XDG_DATA_HOME=os.path.join(home, '.local', 'share'))

        def notmuch(*args):
            r = subprocess.run(['notmuch'] + list(args), env=env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            return r.stdout

        notmuch('new')
        total = len(INBOX_MESSAGES) + 1 + len(LISTS_MESSAGES)
        self.assertEqual(notmuch('count', '*').strip(), str(total))
        files = notmuch('search', '--output=files', 'invoice').split()
        self.assertEqual(len(files), INVOICES, files)
        self.assertTrue(all(f.startswith(m.path + '/') for f in files))
        # The index holds decoded text: the base64 message's word is found,
        # which grep over the raw files cannot do.
        found = notmuch('search', '--output=files', ENCODED_WORD).split()
        self.assertEqual(len(found), 1, found)
        self.assertTrue(found[0].startswith(m.p('INBOX') + '/'))
        self.assertEqual(subprocess.run(
            ['grep', '-rli', ENCODED_WORD, m.path],
            capture_output=True).stdout, b'')
        # The database is outside the mount, and nothing was created on
        # the server.
        self.assertTrue(os.listdir(db))
        self.assertEqual(sorted(os.listdir(m.path)),
                         ['INBOX', 'Lists', 'Trash'])
        self.assertEqual(sorted(s.list_folders('bob')),
                         ['INBOX', 'Lists', 'Trash'])

        # Mail that arrives with an old date (moved in, or restored):
        # the folder's mtime is when mailfs saw its content change, not
        # its newest message's date, so a plain `notmuch new` (which
        # skips folders whose mtime did not move) finds it, reading only
        # that message.
        before = os.stat(m.p('INBOX')).st_mtime
        time.sleep(1.1)  # a later second than notmuch's run
        late = corpus.text_message(99, subject='Late numbat sighting')
        s.append('bob', 'INBOX', late, date=time.time() - 400 * 86400)
        deadline = time.monotonic() + 5
        while (os.stat(m.p('INBOX')).st_mtime <= before and
               time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertGreater(os.stat(m.p('INBOX')).st_mtime, before)
        out = notmuch('new')
        self.assertIn('Added 1 new message', out)
        self.assertEqual(notmuch('count', 'numbat').strip(), '1')


if __name__ == '__main__':
    unittest.main()
