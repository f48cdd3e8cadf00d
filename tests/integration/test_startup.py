"""Starting mailfs the way people start sshfs: the mount is named after its
account, start-up refusals are one line on stderr with exit status 1 and
nothing mounted, and those that need no connection send nothing to the
server. Named accounts come from ~/.config/mailfs/config."""

import errno
import hashlib
import imaplib
import os
import pty
import re
import select
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import MAILFS, Mount, is_mounted

USER = 'alice'


class Listener:
    """A TCP port that accepts nothing but counts who tried to connect."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
                c.close()
                n += 1
            except BlockingIOError:
                return n

    def close(self):
        self.sock.close()


class StartupTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.append(USER, 'INBOX', corpus.text_message(1))
        cls.url = 'imaps://%s@localhost:%d' % (USER, cls.server.imaps_port)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='mailfs-start-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.listener = Listener()
        self.addCleanup(self.listener.close)

    def mount(self, url=None, options=(), **kw):
        m = Mount(url or self.url, self.server.users[USER],
                  cafile=self.server.cafile, options=options, **kw)
        self.addCleanup(m.umount)
        return m

    def refused(self, m, *words):
        """m fails at start-up with one line holding words, exit 1,
        nothing mounted; returns that line."""
        rc, err, _ = m.run()
        self.assertEqual(rc, 1, err)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        for w in words:
            self.assertIn(w, lines[0])
        self.assertFalse(is_mounted(m.path))
        return lines[0]

    def test_mailfs_password_never_reaches_children(self):
        pw = os.path.join(self.tmp, 'pw')
        with open(pw, 'w') as f:
            f.write(self.server.users[USER] + '\n')
        os.chmod(pw, 0o600)
        cmd = ('if [ -n "$MAILFS_PASSWORD" ]; then echo LEAKED; '
               'else cat %s; fi' % pw)
        m = Mount(self.url, None, cafile=self.server.cafile,
                  options=['password_command=' + cmd],
                  env={'MAILFS_PASSWORD': 'not-this-one'})
        self.addCleanup(m.umount)
        m.start()
        self.assertIn('INBOX', os.listdir(m.path))

    def test_findmnt_names_the_account(self):
        m = self.mount().start()
        out = subprocess.run(['findmnt', '-n', '-t', 'fuse.mailfs', '-o',
                              'SOURCE,FSTYPE,TARGET', m.path],
                             capture_output=True, text=True).stdout.split()
        self.assertEqual(out, [self.url, 'fuse.mailfs', m.path])

    def test_url_with_password_refused_never_echoed(self):
        url = 'imaps://%s:s3cr3t-pw@127.0.0.1:%d' % (USER,
                                                     self.listener.port)
        line = self.refused(self.mount(url=url), 'password')
        self.assertNotIn('s3cr3t', line)
        self.assertEqual(self.listener.connections(), 0)

    def test_options_checked_before_connecting(self):
        url = 'imaps://%s@127.0.0.1:%d' % (USER, self.listener.port)
        for opts in (['bogus_option'], ['timeout=abc'], ['connections=x'],
                     ['delete=never']):
            self.refused(self.mount(url=url, options=opts))
        self.assertEqual(self.listener.connections(), 0)
        # What mount(8) passes through mount.fuse3 is accepted.
        m = self.mount(options=['rw', 'nosuid', 'nodev', 'noatime'])
        m.start()
        self.assertIn('INBOX', os.listdir(m.path))

    def test_mistyped_option_names_the_closest(self):
        # libfuse alone said "fuse: unknown option(s): `-o conections=4'".
        url = 'imaps://%s@127.0.0.1:%d' % (USER, self.listener.port)
        line = self.refused(self.mount(url=url, options=['conections=4']))
        self.assertEqual(line, "mailfs: unknown option 'conections' "
                               "(did you mean 'connections'?)")
        line = self.refused(self.mount(url=url, options=['noatime',
                                                         'alow_other']))
        self.assertEqual(line, "mailfs: unknown option 'alow_other' "
                               "(did you mean 'allow_other'?)")
        self.assertEqual(self.listener.connections(), 0)

    def test_non_empty_mount_point(self):
        url = 'imaps://%s@127.0.0.1:%d' % (USER, self.listener.port)
        m = self.mount(url=url)
        with open(os.path.join(m.path, 'precious'), 'w') as f:
            f.write('x')
        self.refused(m, 'not empty', 'nonempty')
        self.assertEqual(self.listener.connections(), 0)
        m2 = self.mount(options=['nonempty'])
        with open(os.path.join(m2.path, 'precious'), 'w') as f:
            f.write('x')
        m2.start()
        self.assertIn('INBOX', os.listdir(m2.path))

    def test_busy_mount_point(self):
        m = self.mount().start()
        again = Mount(self.url, self.server.users[USER],
                      cafile=self.server.cafile)
        self.addCleanup(shutil.rmtree, again.tmp, True)
        again.path = m.path
        again.args[-1] = m.path
        rc, err, _ = again.run()
        self.assertEqual(rc, 1, err)
        self.assertIn('already a mount point', err)
        # The first mount still serves.
        self.assertIn('INBOX', os.listdir(m.path))
        # nonempty never skips the busy check.
        again.args[-1:-1] = ['-o', 'nonempty']
        rc, err, _ = again.run()
        self.assertEqual(rc, 1, err)
        self.assertIn('already a mount point', err)


def pid_dies(pid, seconds=2):
    """True when process pid is gone (or a zombie) within seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/stat' % pid) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ('Z', 'X'):
            return True
        time.sleep(0.02)
    return False


class PasswordCommandTest(unittest.TestCase):
    """password_command is bounded by -o timeout, as oauth2_command is:
    mailfs takes its first line without waiting for the command to end,
    and kills (its process group) a command that prints nothing in time.
    It had no bound: `echo pw; sleep 20` held start-up 20 s, and one that
    kept its stdout open held it for ever."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.append(USER, 'INBOX', corpus.text_message(1))
        cls.url = 'imaps://%s@localhost:%d' % (USER, cls.server.imaps_port)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='mailfs-pwcmd-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pidfile = os.path.join(self.tmp, 'pid')
        self.pwfile = os.path.join(self.tmp, 'pw')
        with open(self.pwfile, 'w') as f:
            f.write(self.server.users[USER] + '\n')
        os.chmod(self.pwfile, 0o600)

    def mount(self, cmd, *options, foreground=False):
        # Mount's own 15 s bound ends the test (killing mailfs) where the
        # old mailfs waited for the command's 30 s.
        m = Mount(self.url, None, cafile=self.server.cafile,
                  options=['password_command=' + cmd] + list(options),
                  foreground=foreground, timeout=15)
        self.addCleanup(m.umount)
        return m

    def lingerer(self):
        with open(self.pidfile) as f:
            return int(f.read())

    def test_line_then_stdout_held_open(self):
        # The password comes at once; the command then sleeps 30 s with
        # its stdout open.
        m = self.mount('cat %s; echo $$ > %s; exec sleep 30' %
                       (self.pwfile, self.pidfile), 'timeout=10')
        t0 = time.monotonic()
        m.start()
        took = time.monotonic() - t0
        self.assertLess(took, 5, m.stderr())
        self.assertIn('INBOX', os.listdir(m.path))
        # What it left running was killed, not waited for.
        self.assertTrue(pid_dies(self.lingerer()))

    def test_nothing_printed_fails_at_the_timeout(self):
        m = self.mount('echo $$ > %s; exec sleep 30' % self.pidfile,
                       'timeout=2')
        rc, err, secs = m.run()
        self.assertEqual(rc, 1, err)
        self.assertEqual(err.strip(), 'mailfs: password_command printed no '
                         'password within 2 s (-o timeout)')
        self.assertGreaterEqual(secs, 2)
        self.assertLess(secs, 2 + 2)
        self.assertFalse(is_mounted(m.path))
        self.assertTrue(pid_dies(self.lingerer()))

    @staticmethod
    def read_until(fd, want, seconds):
        """What the terminal's master fd shows until want appears."""
        out = b''
        deadline = time.monotonic() + seconds
        while want not in out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError('no %r on the terminal: %r' %
                                     (want, out))
            try:
                out += os.read(fd, 4096)
            except OSError:
                raise AssertionError('terminal closed: %r' % out)
        return out

    def test_command_may_ask_on_the_terminal(self):
        # The command's process group (killed whole at the timeout) is
        # the terminal's foreground while it runs: a prompt of its own
        # works as it did when the command ran in mailfs's group (in a
        # background group, reading the terminal stops it: SIGTTIN).
        m = self.mount('printf "code? " >/dev/tty; read -r c </dev/tty; '
                       'echo "$c"', 'timeout=10', foreground=True)
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(m.args[0], m.args, m.env)
            finally:
                os._exit(127)
        try:
            self.read_until(fd, b'code? ', 10)
            os.write(fd, self.server.users[USER].encode() + b'\n')
            deadline = time.monotonic() + 10
            while not is_mounted(m.path):
                self.assertEqual(os.waitpid(pid, os.WNOHANG), (0, 0),
                                 'mailfs exited')
                self.assertLess(time.monotonic(), deadline, 'not mounted')
                time.sleep(0.05)
            # mailfs took the terminal back.
            self.assertEqual(os.tcgetpgrp(fd), pid)
            self.assertIn('INBOX', os.listdir(m.path))
            m.umount()
            deadline = time.monotonic() + 10
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                self.assertLess(time.monotonic(), deadline, 'no exit')
                time.sleep(0.05)
            pid = None
        finally:
            if pid:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            os.close(fd)


class OtherUsersTest(unittest.TestCase):
    """-o allow_other shows the mount to other users, who may neither
    read nor change anything: mailfs acts as the owner on the server."""

    def setUp(self):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.server.append(USER, 'INBOX', corpus.text_message(1))
        self.m = Mount('imaps://%s@localhost:%d' % (USER,
                                                    self.server.imaps_port),
                       self.server.users[USER], cafile=self.server.cafile,
                       options=['allow_other', 'delete=expunge'])
        self.addCleanup(self.m.umount)
        # Let other users reach the mount point itself.
        os.chmod(self.m.tmp, 0o755)
        self.m.start()

    def as_nobody(self, *cmd):
        return subprocess.run(['runuser', '-u', 'nobody', '--'] + list(cmd),
                              capture_output=True, text=True)

    def test_other_users_get_eacces(self):
        name, = os.listdir(self.m.p('INBOX'))
        msg = self.m.p('INBOX', name)
        # nobody reaches the directory holding the mount point...
        self.assertEqual(self.as_nobody('ls', '-d', self.m.tmp).returncode,
                         0)
        # ...but mailfs refuses every request of theirs.
        for cmd in (['cat', msg], ['ls', self.m.p('INBOX')],
                    ['rm', '-f', msg], ['mkdir', self.m.p('Pwned')],
                    ['getfattr', '-n', 'user.mail.flags', msg],
                    ['setfattr', '-n', 'user.mail.flags', '-v', '\\Seen',
                     msg]):
            r = self.as_nobody(*cmd)
            self.assertNotEqual(r.returncode, 0, cmd)
            self.assertIn('ermission denied', r.stderr, cmd)
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 1)
        self.assertNotIn('Pwned', self.server.list_folders(USER))
        self.assertEqual(self.server.flags(USER, 'INBOX')[1] - {'\\Recent'},
                         set())
        # The owner (root here) still reads.
        with open(msg, 'rb') as f:
            self.assertEqual(f.read(), self.server.fetch_all(USER,
                                                             'INBOX')[1])


class ProxiedBase(unittest.TestCase):
    """One message on a server reached through a fault proxy, mounted
    with one connection; the listing is read, then every connection is
    dropped, so that the next request must reconnect."""

    def mount_then_drop(self, *options):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.server.append(USER, 'INBOX', corpus.text_message(1))
        self.proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(self.proxy.stop)
        self.m = Mount('imaps://%s@localhost:%d' % (USER, self.proxy.port),
                       self.server.users[USER], cafile=self.server.cafile,
                       options=['connections=1'] + list(options))
        self.addCleanup(self.m.umount)
        self.m.start()
        self.name, = os.listdir(self.m.p('INBOX'))
        self.proxy.drop_all()

    def read(self):
        with open(self.m.p('INBOX', self.name), 'rb') as f:
            return f.read()

    def works_again(self):
        """After the one-second pause that follows a failed connection
        attempt, the mount serves again."""
        time.sleep(1.1)
        self.assertEqual(self.read(),
                         self.server.fetch_all(USER, 'INBOX')[1])


class HonestErrnoTest(ProxiedBase):
    """A network failure is EIO, never EACCES (which means a refused
    login or certificate)."""

    def test_reset_during_tls_on_reconnect_is_eio(self):
        self.mount_then_drop('refresh=0', 'timeout=5')
        # Every new connection is reset in its TLS handshake (the
        # ClientHello starts with 0x16 0x03).
        self.proxy.cut_when('up', b'\x16\x03', once=False, reset=True)
        for op in (lambda: os.mkdir(self.m.p('New')), self.read):
            with self.assertRaises(OSError) as cm:
                op()
            self.assertEqual(cm.exception.errno, errno.EIO)
        self.proxy.clear_rules()
        self.works_again()


class DeadlineTest(ProxiedBase):
    """One deadline per FUSE request: however many steps a request takes
    (a reconnect: TCP, TLS, greeting, login, SELECT, FETCH), it returns
    within -o timeout plus about a second."""

    def test_slow_reconnect_is_bounded_by_one_timeout(self):
        self.mount_then_drop('timeout=2', 'refresh=3600')
        # Each round trip now takes 1.5 s, within the 2 s bound of each
        # wait; a reconnect and a fetch take far more round trips.
        self.proxy.set_rtt(1500)
        t0 = time.monotonic()
        with self.assertRaises(OSError) as cm:
            self.read()
        took = time.monotonic() - t0
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(took, 2 + 1.2)
        self.proxy.set_rtt(0)
        self.works_again()


class ErrorHintTest(unittest.TestCase):
    """Errors that say what to do rather than leave users guessing."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)

    def fails(self, url, *words, options=()):
        m = Mount(url, self.server.users[USER], cafile=self.server.cafile,
                  options=list(options) + ['timeout=3'])
        self.addCleanup(m.umount)
        rc, err, secs = m.run()
        self.assertEqual(rc, 1, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for w in words:
            self.assertIn(w, err)
        self.assertFalse(is_mounted(m.path))
        return err, secs

    def test_untrusted_certificate_shows_fingerprint(self):
        port = self.server.imaps_port
        der = ssl.PEM_cert_to_DER_cert(
            ssl.get_server_certificate(('127.0.0.1', port)))
        fp = ':'.join('%02X' % b for b in hashlib.sha256(der).digest())
        m = Mount('imaps://%s@localhost:%d' % (USER, port),
                  self.server.users[USER], cafile=self.server.other_cafile)
        self.addCleanup(m.umount)
        rc, err, _ = m.run()
        self.assertEqual(rc, 1, err)
        self.assertIn('SHA-256 fingerprint ' + fp, err)
        self.assertIn('-o cafile=', err)

    def test_wrong_protocol_or_tls_on_a_port(self):
        s = self.server
        self.fails('imaps://%s@localhost:%d' % (USER, s.pop3s_port),
                   'speaks POP3', 'pop3s://')
        self.fails('pop3s://%s@localhost:%d' % (USER, s.imaps_port),
                   'speaks IMAP', 'imaps://')
        self.fails('imaps://%s@localhost:%d' % (USER, s.imap_port),
                   'speaks plaintext')
        err, secs = self.fails('imap://%s@localhost:%d' % (USER,
                                                           s.imaps_port),
                               'TLS port', 'imaps://')
        self.assertLess(secs, 10)


class NamedAccountTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.append(USER, 'INBOX', corpus.text_message(1))

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix='mailfs-home-')
        self.addCleanup(shutil.rmtree, self.home, True)
        self.mnt = os.path.join(self.home, 'mail')
        os.mkdir(self.mnt)
        self.addCleanup(subprocess.run, ['fusermount3', '-u', '-z', self.mnt],
                        capture_output=True)
        self.pw = os.path.join(self.home, 'pw')
        with open(self.pw, 'w') as f:
            f.write(self.server.users[USER] + '\n')
        os.chmod(self.pw, 0o600)
        self.config = os.path.join(self.home, 'cfg', 'mailfs', 'config')
        os.makedirs(os.path.dirname(self.config))

    def write(self, text, mode=0o600):
        with open(self.config, 'w') as f:
            f.write(text)
        os.chmod(self.config, mode)

    def account(self, extra=''):
        return ('# my accounts\n'
                '[other]\nurl = imaps://bob@nowhere.invalid\n\n'
                '[work]\n'
                'url = imaps://%s@localhost:%d\n'
                'mountpoint = ~/mail\n'
                'cafile = %s\n'
                'password_file = %s\n'
                'connections = 2\n'
                'ro = true\n'
                'insecure = false\n%s' % (USER, self.server.imaps_port,
                                          self.server.cafile, self.pw,
                                          extra))

    def run_mailfs(self, *args):
        env = dict(os.environ, HOME=self.home,
                   XDG_CONFIG_HOME=os.path.join(self.home, 'cfg'))
        env.pop('MAILFS_PASSWORD', None)
        return subprocess.run([MAILFS] + list(args), capture_output=True,
                              text=True, env=env, timeout=30)

    def test_named_account_mounts(self):
        self.write(self.account())
        r = self.run_mailfs('work')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(is_mounted(self.mnt))
        self.assertIn('INBOX', os.listdir(self.mnt))
        # ro = true took effect.
        with self.assertRaises(OSError):
            os.mkdir(os.path.join(self.mnt, 'New'))
        subprocess.run(['fusermount3', '-u', self.mnt], check=True)

    def test_command_line_wins(self):
        self.write(self.account('timeout = 5\n'))
        other = os.path.join(self.home, 'elsewhere')
        os.mkdir(other)
        self.addCleanup(subprocess.run, ['fusermount3', '-u', '-z', other],
                        capture_output=True)
        r = self.run_mailfs('-o', 'timeout=7', 'work', other)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(is_mounted(other))
        self.assertFalse(is_mounted(self.mnt))

    def test_bad_line_names_file_and_line(self):
        self.write(self.account('colour = blue\n'))
        r = self.run_mailfs('work')
        self.assertEqual(r.returncode, 1)
        self.assertIn('%s:13: unknown option' % self.config, r.stderr)
        self.write(self.account('password = hunter2\n'))
        r = self.run_mailfs('work')
        self.assertEqual(r.returncode, 1)
        self.assertIn(':13: there is no password key', r.stderr)
        self.assertNotIn('hunter2', r.stderr)
        self.write('[work\n')
        r = self.run_mailfs('work')
        self.assertIn(':1: expected [NAME]', r.stderr)
        self.write(self.account())
        r = self.run_mailfs('nosuch')
        self.assertEqual(r.returncode, 1)
        self.assertIn('no account [nosuch]', r.stderr)
        self.assertFalse(is_mounted(self.mnt))

    def test_unsafe_file_refused(self):
        self.write(self.account(), mode=0o620)
        r = self.run_mailfs('work')
        self.assertEqual(r.returncode, 1)
        self.assertIn('may write it', r.stderr)
        # Readable by others while it names a password option.
        self.write(self.account(), mode=0o644)
        r = self.run_mailfs('work')
        self.assertEqual(r.returncode, 1)
        self.assertIn('password option', r.stderr)
        self.assertFalse(is_mounted(self.mnt))


class Pop3StoreTest(unittest.TestCase):
    """Where a POP3 account's local store lives, and an unreachable host."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.append(USER, 'INBOX', corpus.text_message(1))

    def setUp(self):
        self.data = tempfile.mkdtemp(prefix='mailfs-data-')
        self.addCleanup(shutil.rmtree, self.data, True)

    def mount(self, url):
        m = Mount(url, self.server.users[USER], cafile=self.server.cafile,
                  env={'XDG_DATA_HOME': self.data})
        self.addCleanup(m.umount)
        return m

    def test_store_name_holds_a_non_default_port(self):
        port = self.server.pop3s_port
        m = self.mount('pop3s://%s@localhost:%d' % (USER, port)).start()
        os.listdir(m.path)
        self.assertEqual(os.listdir(os.path.join(self.data, 'mailfs',
                                                 'pop3')),
                         ['%s@localhost:%d' % (USER, port)])
        m.umount()
        # A store made before ports were part of the name is used.
        shutil.move(os.path.join(self.data, 'mailfs', 'pop3',
                                 '%s@localhost:%d' % (USER, port)),
                    os.path.join(self.data, 'mailfs', 'pop3',
                                 '%s@localhost' % USER))
        m2 = self.mount('pop3s://%s@localhost:%d' % (USER, port)).start()
        self.assertIn('made before store names held the port', m2.stderr())
        self.assertEqual(os.listdir(os.path.join(self.data, 'mailfs',
                                                 'pop3')),
                         ['%s@localhost' % USER])

    def test_unreachable_host_without_store_fails(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there: connection refused
        m = self.mount('pop3s://%s@127.0.0.1:%d' % (USER, port))
        rc, err, _ = m.run()
        self.assertEqual(rc, 1, err)
        self.assertIn('no local store', err)
        self.assertFalse(is_mounted(m.path))
        self.assertFalse(os.path.exists(os.path.join(self.data, 'mailfs',
                                                     'pop3')))


if __name__ == '__main__':
    unittest.main()


QUOTA_CONF = '''
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = count:User quota
  quota_rule = *:storage=10M
  quota_vsizes = yes
}
'''


class StatusTest(unittest.TestCase):
    """The status attribute, df with the quota, and the log."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(extra_conf=QUOTA_CONF).start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.raw = corpus.text_message(1, size=3000)
        cls.server.append(USER, 'INBOX', cls.raw)
        cls.url = 'imaps://%s@localhost:%d' % (USER, cls.server.imaps_port)

    def mount(self, **kw):
        m = Mount(self.url, self.server.users[USER],
                  cafile=self.server.cafile, **kw)
        self.addCleanup(m.umount)
        return m.start()

    def status(self, m):
        text = os.getxattr(m.path, 'user.mail.status').decode()
        return dict(l.split('=', 1) for l in text.splitlines())

    def test_status_attribute(self):
        m = self.mount()
        st = self.status(m)
        self.assertEqual(sorted(st), sorted([
            'account', 'state', 'connections_open', 'connections_busy',
            'bytes_fetched', 'messages_fetched', 'messages_prefetched',
            'messages_pushed',
            'cache_bytes', 'cache_limit', 'cache_hits', 'cache_misses',
            'fuse_nodes', 'fuse_requests', 'push',
            'last_error', 'last_error_time',
            # the disk cache's, on by default for IMAP
            'mode', 'disk_cache_bytes', 'disk_cache_limit',
            'disk_cache_hits', 'disk_cache_misses', 'disk_cache_discarded',
            'disk_cache_writing',
            # the journal of changes made offline (#21)
            'pending_changes', 'failed_changes']))
        self.assertEqual(st['pending_changes'], '0')
        self.assertEqual(st['failed_changes'], '0')
        self.assertEqual(st['account'], self.url)
        self.assertEqual(st['mode'], 'online')
        self.assertEqual(st['state'], 'online')
        # At rest once the pool's spare session is open.
        deadline = time.monotonic() + 10
        while (self.status(m)['connections_busy'] != '0' and
               time.monotonic() < deadline):
            time.sleep(0.05)
        st = self.status(m)
        self.assertEqual(st['connections_busy'], '0')
        before = int(st['bytes_fetched'])
        name, = os.listdir(m.p('INBOX'))
        with open(m.p('INBOX', name), 'rb') as f:
            self.assertEqual(f.read(), self.raw)
        st = self.status(m)
        self.assertGreaterEqual(int(st['bytes_fetched']) - before,
                                len(self.raw))
        self.assertGreaterEqual(int(st['messages_fetched']), 1)
        self.assertGreaterEqual(int(st['cache_bytes']), len(self.raw))
        self.assertEqual(st['last_error'], '')
        # Not listed, so rsync -X and cp -a never copy it.
        self.assertNotIn('user.mail.status', os.listxattr(m.path))
        # A failure shows with its time.
        with self.assertRaises(OSError):
            os.mkdir(m.p('INBOX', name, 'x'))
        subprocess.run(['setfattr', '-n', 'user.mail.flags', '-v',
                        '\\Bogus', m.p('INBOX', name)], capture_output=True)
        os.rename(m.p('INBOX', name), m.p('INBOX', name))  # no-op
        self.server.stop()
        try:
            os.mkdir(m.p('Unreachable'))
        except OSError:
            pass
        st = self.status(m)
        self.server.start()
        self.assertNotEqual(st['last_error'], '')
        self.assertRegex(st['last_error_time'],
                         r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        self.assertEqual(st['state'], 'offline')

    def test_df_shows_the_quota(self):
        m = self.mount()
        v = os.statvfs(m.path)
        self.assertEqual(v.f_blocks * v.f_frsize, 10 * 1024 * 1024)
        used = (v.f_blocks - v.f_bfree) * v.f_frsize
        self.assertGreater(used, 0)
        self.assertLessEqual(used, 64 * 1024)
        out = subprocess.run(['df', '-k', m.path], capture_output=True,
                             text=True).stdout.splitlines()[-1].split()
        self.assertEqual(out[0], self.url)
        self.assertEqual(out[1], '10240')

    def test_foreground_log_has_timestamps_and_trace_names_connections(self):
        m = self.mount(debug=True, options=['connections=2'])
        os.listdir(m.p('INBOX'))
        m.umount()
        lines = m.stderr().splitlines()
        trace = [l for l in lines if ' C: ' in l]
        self.assertTrue(trace)
        for l in trace:
            self.assertRegex(l, r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} '
                                r'mailfs: \[#\d+\] C: ')


class FolderListAtMountTest(unittest.TestCase):
    """The folder list is asked for as the mount starts, so that the first
    lookup finds it instead of waiting a round trip for it; a folder made
    by another client after that is still found by its name."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.append(USER, 'Work', corpus.text_message(1))

    def mount(self, options=()):
        self.server.clear_rawlog(USER)
        m = Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=list(options))
        self.addCleanup(m.umount)
        m.start()
        # Nothing is asked of the mount: the LIST comes by itself.
        deadline = time.monotonic() + 20
        while not self.lists():
            self.assertLess(time.monotonic(), deadline,
                            'no LIST at mount\n' + m.stderr())
            time.sleep(0.05)
        return m

    def lists(self):
        return [c for s in self.server.rawlog_sessions(USER)
                for c in s.commands if c.upper().startswith('LIST')]

    def test_first_lookup_finds_the_list_made_at_mount(self):
        m = self.mount()
        time.sleep(0.5)  # Dovecot writes the rest of its rawlog
        self.server.clear_rawlog(USER)
        names = os.listdir(m.p('Work'))
        self.assertEqual(len(names), 1)
        with open(m.p('Work', names[0]), 'rb') as f:
            self.assertTrue(f.read())
        self.assertEqual(self.lists(), [])

    def test_list_comes_with_the_login(self):
        """Dovecot: the LIST goes in the same write as the login, so the
        mount has the folder list when it returns. Through a proxy of
        300 ms per round trip, stalled as soon as the mount is up, the
        top of the mount still lists every folder (a LIST asked for
        after the login would still be on its way, and the listing would
        fail after -o timeout=2)."""
        with imaplib.IMAP4_SSL('localhost', self.server.imaps_port,
                               ssl_context=self.server.ssl_context()) as c:
            c.login(USER, self.server.users[USER])
            typ, lines = c.list()
        self.assertEqual(typ, 'OK')
        top = set()
        for line in lines:
            m_ = re.match(r'\((.*?)\) "(.)" "?([^"]*)"?$', line.decode())
            top.add(m_.group(3).split(m_.group(2))[0])
        proxy = Proxy(self.server.imaps_port, rtt_ms=300).start()
        self.addCleanup(proxy.stop)
        self.server.clear_rawlog(USER)
        m = Mount('imaps://%s@localhost:%d' % (USER, proxy.port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=['timeout=2'])
        self.addCleanup(m.umount)
        m.start()
        proxy.stall()
        self.addCleanup(proxy.unstall)
        names = sorted(os.listdir(m.path))
        self.assertIn('Work', top)
        self.assertEqual(sorted(top - set(names)), [])
        proxy.unstall()
        time.sleep(0.5)  # Dovecot writes the rest of its rawlog
        self.assertEqual(len(self.lists()), 1, self.lists())

    def test_folder_made_after_the_list_is_found_by_name(self):
        m = self.mount(['refresh=3600'])
        self.server.append(USER, 'Later', corpus.text_message(2))
        self.assertEqual(len(os.listdir(m.p('Later'))), 1)
        # A name no folder has lists the folders again, but not at each
        # lookup: at most once a second.
        self.server.clear_rawlog(USER)
        for _ in range(5):
            self.assertFalse(os.path.exists(m.p('Nowhere')))
        self.assertLess(len(self.lists()), 5, self.lists())
