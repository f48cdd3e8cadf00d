"""POP3 mounts against the real Dovecot POP3 service: one flat directory
backed by a local store, cross-checked with Python's poplib."""

import errno
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.fakeserver import FakeServer
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount, is_mounted

USER = 'alice'


def wait_for(pred, seconds=20, step=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def uidl_of(path):
    return os.getxattr(path, 'user.mail.uidl').decode()


class Pop3Base(unittest.TestCase):
    """A server whose INBOX holds a mix of messages; `self.mail` maps
    UIDL -> bytes as poplib retrieves them (taken before mounting)."""

    messages = None
    rawlog = False

    def setUp(self):
        self.server = MailServer(rawlog=self.rawlog).start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        msgs = self.messages or [
            corpus.text_message(1), corpus.eightbit_message(2),
            corpus.attachment_message(300000, 3), corpus.dot_lines_message(4),
            corpus.empty_body_message(5),
            corpus.attachment_message(3 * 1024 * 1024, 6),
            corpus.text_message(7)]
        self.server.append_many(USER, 'INBOX', msgs)
        self.server.deliver_maildir(USER, 'INBOX', corpus.binary_message(8))
        self.mail = self.poplib_mail()
        self.store = os.path.join(self.server.tmpdir, 'store')

    def poplib_mail(self):
        """UIDL -> message bytes (CRLF, dot-unstuffed), via poplib."""
        p = self.server.pop3(USER)
        try:
            out = {}
            for line in p.uidl()[1]:
                num, uidl = line.decode().split()
                lines = p.retr(int(num))[1]
                out[uidl] = b''.join(l + b'\r\n' for l in lines)
            return out
        finally:
            p.quit()

    def server_uidls(self):
        p = self.server.pop3(USER)
        try:
            return {l.decode().split()[1] for l in p.uidl()[1]}
        finally:
            p.quit()

    def mount(self, *options, port=None, url=None, store=None):
        url = url or 'pop3s://%s@localhost:%d' % (
            USER, port or self.server.pop3s_port)
        m = Mount(url, self.server.users[USER], cafile=self.server.cafile,
                  options=['store=' + (store or self.store)] + list(options))
        self.addCleanup(m.umount)
        return m.start()

    def stored(self):
        d = os.path.join(self.store, 'cur')
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def check_files(self, m):
        """Every file of the mount has the bytes poplib got for its UIDL."""
        names = os.listdir(m.path)
        seen = {}
        for n in names:
            p = m.p(n)
            seen[uidl_of(p)] = n
            with open(p, 'rb') as f:
                got = f.read()
            self.assertEqual(got, self.mail[uidl_of(p)], n)
            st = os.stat(p)
            self.assertEqual(st.st_size, len(got))
            self.assertEqual(st.st_mode & 0o777, 0o444)
        self.assertEqual(set(seen), set(self.mail))
        return seen


class Pop3Test(Pop3Base):

    def test_kept_on_the_server_by_default(self):
        self.server.restart(rawlog=True)
        m = self.mount()
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        self.check_files(m)
        m.umount()
        cmds = [c.upper() for s in self.server.rawlog_sessions(USER, 'pop3')
                for c in s.commands]
        self.assertFalse([c for c in cmds if c.startswith('DELE')], cmds)
        self.assertEqual(self.server_uidls(), set(self.mail))

    def test_download_and_delete(self):
        m = self.mount('pop3_delete')
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        self.assertTrue(wait_for(lambda: not self.server_uidls()))
        self.check_files(m)
        # The store: 0700 folders, 0600 files.
        self.assertEqual(os.stat(self.store).st_mode & 0o777, 0o700)
        for n in self.stored():
            st = os.stat(os.path.join(self.store, 'cur', n))
            self.assertEqual(st.st_mode & 0o777, 0o600)
        # A remount shows the same without the server's help.
        m.umount()
        m2 = self.mount('pop3_delete')
        self.check_files(m2)

    def test_names_and_dates(self):
        m = self.mount('keep')
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        for n in os.listdir(m.path):
            self.assertTrue(n.endswith('.eml'))
            self.assertFalse(n.startswith('.'))
            # Date: headers of the corpus are in 2024.
            self.assertEqual(time.gmtime(os.stat(m.p(n)).st_mtime).tm_year,
                             2024, n)

    def test_starttls(self):
        m = self.mount('keep', url='pop3://%s@localhost:%d' % (
            USER, self.server.pop3_port))
        self.assertTrue(wait_for(lambda: len(os.listdir(m.path)) == len(
            self.mail)))
        self.check_files(m)

    def test_new_mail_appears(self):
        m = self.mount('keep', 'refresh=1')
        self.assertTrue(wait_for(lambda: len(os.listdir(m.path)) == len(
            self.mail)))
        self.server.append(USER, 'INBOX', corpus.text_message(42))
        self.mail = self.poplib_mail()
        self.assertTrue(wait_for(lambda: len(os.listdir(m.path)) == len(
            self.mail), seconds=10))
        self.check_files(m)

    def test_rm_with_pop3_delete(self):
        m = self.mount('pop3_delete', 'refresh=1')
        self.assertTrue(wait_for(lambda: not self.server_uidls()))
        name = sorted(os.listdir(m.path))[0]
        os.unlink(m.p(name))
        self.assertNotIn(name, os.listdir(m.path))
        self.assertNotIn(name, self.stored())
        m.umount()
        m2 = self.mount('pop3_delete')
        time.sleep(1)
        self.assertNotIn(name, os.listdir(m2.path))

    def test_rm_of_kept_mail_forgets_it_here_only(self):
        self.server.restart(rawlog=True)
        m = self.mount('keep', 'refresh=1')
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        name = sorted(os.listdir(m.path))[0]
        os.unlink(m.p(name))
        self.assertNotIn(name, os.listdir(m.path))
        self.assertNotIn(name, self.stored())
        time.sleep(2.5)  # sessions run (refresh=1): still no DELE
        m.umount()
        # Never downloaded again, never deleted on the server.
        self.server.clear_rawlog(USER)
        m2 = self.mount()
        time.sleep(1)
        self.assertNotIn(name, os.listdir(m2.path))
        m2.umount()
        self.assertEqual(self.server_uidls(), set(self.mail))
        cmds = [c.upper() for s in self.server.rawlog_sessions(USER, 'pop3')
                for c in s.commands]
        self.assertFalse([c for c in cmds if c.startswith(('DELE',
                                                            'RETR'))],
                         cmds)

    def test_refusals(self):
        m = self.mount('keep')
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        name = sorted(os.listdir(m.path))[0]
        attempts = [
            (lambda: os.mkdir(m.p('dir')), errno.EPERM),
            (lambda: os.rename(m.p(name), m.p('x.eml')), errno.EPERM),
            (lambda: open(m.p('new.eml'), 'wb'), errno.EACCES),
            (lambda: os.open(m.p(name), os.O_WRONLY), errno.EACCES),
            (lambda: os.truncate(m.p(name), 0), errno.EACCES),
        ]
        for op, want in attempts:
            with self.assertRaises(OSError) as cm:
                op()
            self.assertEqual(cm.exception.errno, want)
        self.assertEqual(len(self.stored()), len(self.mail))
        self.assertEqual(self.server_uidls(), set(self.mail))
        self.check_files(m)

    def test_offline(self):
        m = self.mount('keep')
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        m.umount()
        self.server.stop()
        m2 = self.mount('keep')
        self.assertIn('offline', m2.stderr())
        self.check_files(m2)

    def test_keep_never_downloads_twice(self):
        self.server.restart(rawlog=True)
        m = self.mount('keep')
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        m.umount()
        self.server.clear_rawlog(USER)
        m = self.mount('keep')
        self.check_files(m)
        time.sleep(1)
        m.umount()
        cmds = [c.upper() for s in self.server.rawlog_sessions(USER, 'pop3')
                for c in s.commands]
        self.assertTrue(any(c.startswith('UIDL') for c in cmds), cmds)
        self.assertFalse([c for c in cmds if c.startswith('RETR')], cmds)
        self.assertFalse([c for c in cmds if c.startswith('DELE')], cmds)
        self.assertEqual(self.server_uidls(), set(self.mail))

    def test_reading_before_download(self):
        # Slow link: listing shows LIST sizes at once; a read fetches.
        proxy = Proxy(self.server.pop3s_port, rtt_ms=100).start()
        self.addCleanup(proxy.stop)
        m = self.mount('keep', port=proxy.port)
        self.assertTrue(wait_for(lambda: len(os.listdir(m.path)) == len(
            self.mail)))
        self.check_files(m)

    def test_wrong_password_fails_fast(self):
        m = Mount('pop3s://%s@localhost:%d' % (USER, self.server.pop3s_port),
                  'wrong', cafile=self.server.cafile,
                  options=['store=' + self.store])
        self.addCleanup(m.umount)
        rc, err, _ = m.run()
        self.assertNotEqual(rc, 0)
        self.assertIn('failed', err)
        self.assertFalse(is_mounted(m.path))


class Pop3StoreDirTest(Pop3Base):
    """The local store is the user's mail: a directory someone else
    planted or can change is refused (the mount fails: the store is
    required), and one that a mailfs just unmounted is waited for."""

    messages = [corpus.text_message(i) for i in range(3)]

    def mounter(self, store=None, env=None):
        opts = ['store=' + store] if store else []
        m = Mount('pop3s://%s@localhost:%d' % (USER, self.server.pop3s_port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=opts, env=env)
        self.addCleanup(m.umount)
        return m

    def plant(self):
        """A directory elsewhere (0755, one file); returns (path, state)."""
        target = tempfile.mkdtemp(prefix='mailfs-planted-')
        self.addCleanup(shutil.rmtree, target, True)
        os.chmod(target, 0o755)
        with open(os.path.join(target, 'keep'), 'w') as f:
            f.write('not mailfs\n')
        return target, self.tree_state(target)

    @staticmethod
    def tree_state(path):
        out = {}
        for top, dirs, files in os.walk(path):
            for n in [''] + dirs + files:
                st = os.lstat(os.path.join(top, n))
                out[os.path.join(top, n)] = (st.st_mode, st.st_uid,
                                             st.st_size)
        return out

    def refused(self, m, *words):
        rc, err, _ = m.run()
        self.assertEqual(rc, 1, err)
        for w in words:
            self.assertIn(w, err)
        self.assertFalse(is_mounted(m.path))

    def test_store_that_is_a_symlink_is_refused(self):
        target, before = self.plant()
        os.symlink(target, self.store)
        self.refused(self.mounter(self.store), self.store, 'symbolic link')
        self.assertEqual(self.tree_state(target), before)

    def test_store_of_another_user_is_refused(self):
        os.mkdir(self.store, 0o700)
        os.chown(self.store, 65534, 65534)
        self.refused(self.mounter(self.store), self.store,
                     'owned by uid 65534')
        self.assertEqual(os.listdir(self.store), [])

    def test_default_store_planted_as_symlink_is_refused(self):
        """$XDG_DATA_HOME/mailfs/pop3/ACCOUNT replaced by a link."""
        data = tempfile.mkdtemp(prefix='mailfs-data-')
        self.addCleanup(shutil.rmtree, data, True)
        env = {'XDG_DATA_HOME': data}
        m = self.mounter(env=env).start()
        os.listdir(m.path)
        m.umount()
        top = os.path.join(data, 'mailfs', 'pop3')
        acct, = os.listdir(top)
        acct = os.path.join(top, acct)
        shutil.rmtree(acct)
        target, before = self.plant()
        os.symlink(target, acct)
        self.refused(self.mounter(env=env), acct, 'symbolic link')
        self.assertEqual(self.tree_state(target), before)

    def test_quick_remount_gets_the_store(self):
        """fusermount3 -u and at once a new mount of the store, five
        times: each one mounts (the store's lock is waited for while its
        holder exits)."""
        for i in range(5):
            m = self.mounter(self.store).start()
            self.assertTrue(wait_for(lambda: len(self.stored()) == len(
                self.mail)))
            self.check_files(m)
            subprocess.run(['fusermount3', '-u', m.path], check=True)


class Pop3SafetyTest(Pop3Base):
    messages = [corpus.text_message(i, size=20000) for i in range(120)]

    def test_dropped_before_quit_deletes_nothing(self):
        proxy = Proxy(self.server.pop3_port).start()
        self.addCleanup(proxy.stop)
        # Every QUIT is cut before it reaches the server.
        rule = proxy.cut_when('up', b'QUIT', once=False)
        m = self.mount('tls=none', 'pop3_delete',
                       url='pop3://%s@localhost:%d' % (USER, proxy.port))
        self.assertTrue(wait_for(lambda: len(self.stored()) == len(
            self.mail)))
        self.assertTrue(wait_for(lambda: rule.count >= 2))
        # No QUIT reached the server: nothing was deleted.
        self.assertEqual(self.server_uidls(), set(self.mail))
        m.umount()
        proxy.clear_rules()
        # The next session deletes them, downloading nothing again.
        m = self.mount('tls=none', 'pop3_delete',
                       url='pop3://%s@localhost:%d' % (USER, proxy.port))
        self.assertTrue(wait_for(lambda: not self.server_uidls()))
        self.check_files(m)

    def test_sigkill_during_downloads(self):
        # Slow enough that kills land in the middle of a session, which
        # downloads up to 16 messages a round trip.
        proxy = Proxy(self.server.pop3s_port, rtt_ms=100).start()
        self.addCleanup(proxy.stop)
        rnd = random.Random(7)
        rounds = 0
        partial = 0
        while self.server_uidls() and rounds < 10:
            rounds += 1
            m = Mount('pop3s://%s@localhost:%d' % (USER, proxy.port),
                      self.server.users[USER], cafile=self.server.cafile,
                      options=['store=' + self.store, 'pop3_delete'],
                      foreground=True)
            m.start()
            time.sleep(rnd.uniform(0.1, 1.5))
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait()
            subprocess.run(['fusermount3', '-u', '-z', m.path])
            # Every message is on the server or in the store, or both.
            on_server = self.server_uidls()
            stored = set()
            for n in self.stored():
                with open(os.path.join(self.store, 'cur', n), 'rb') as f:
                    data = f.read()
                uidl = [u for u, raw in self.mail.items() if raw == data]
                self.assertEqual(len(uidl), 1, n)
                stored.add(uidl[0])
            self.assertEqual(on_server | stored, set(self.mail))
            self.assertEqual(len(self.stored()), len(stored))
            partial += 0 < len(stored) < len(self.mail)
        # A last mount that is left to finish.
        m = self.mount('pop3_delete')
        self.assertTrue(wait_for(lambda: not self.server_uidls(), 60))
        self.assertGreater(rounds, 1)
        self.assertGreater(partial, 0)  # some kills hit mid-download
        self.check_files(m)


class Pop3FirstListingTest(Pop3Base):
    messages = [corpus.text_message(i) for i in range(120)]

    def test_fresh_store_lists_everything_at_once(self):
        # The first listing of a mount waits for the server's LIST: a
        # fresh store used to list nothing for about 0.35 s.
        for round in range(3):
            store = os.path.join(self.server.tmpdir, 'store%d' % round)
            m = self.mount('keep', store=store)
            self.assertEqual(len(os.listdir(m.path)), len(self.mail), round)
            m.umount()


class Pop3HostileServerTest(unittest.TestCase):
    """Bounds against a scripted server: endless message, overlong line,
    bogus LIST. The mount stays up and bounded; reads fail with EIO."""

    def serve(self, behaviour, timeout=3):
        def handler(conn):
            conn.send(b'+OK fake\r\n')
            while True:
                try:
                    line = conn.recv_line(timeout=30)
                except TimeoutError:
                    return
                if not line:
                    return
                cmd = line.strip().upper()
                if cmd.startswith(b'CAPA'):
                    conn.send(b'+OK\r\nUIDL\r\nUSER\r\n.\r\n')
                elif cmd.startswith((b'USER', b'PASS')):
                    conn.send(b'+OK\r\n')
                elif cmd.startswith(b'UIDL'):
                    conn.send(b'+OK\r\n1 abc\r\n.\r\n')
                elif cmd.startswith(b'LIST'):
                    conn.send(behaviour.get('list',
                                            b'+OK\r\n1 100\r\n.\r\n'))
                elif cmd.startswith(b'RETR'):
                    behaviour['retr'](conn)
                elif cmd.startswith(b'QUIT'):
                    conn.send(b'+OK\r\n')
                    return
                else:
                    conn.send(b'+OK\r\n')
        fake = FakeServer(handler)
        fake.start()
        self.addCleanup(fake.stop)
        store = tempfile.mkdtemp(prefix='mailfs-p3-')
        self.addCleanup(shutil.rmtree, store, True)
        m = Mount('pop3://u@127.0.0.1:%d' % fake.port, 'pw',
                  options=['tls=none', 'timeout=%d' % timeout, 'refresh=1',
                           'store=' + store + '/s'])
        self.addCleanup(m.umount)
        return m.start()

    def rss_kb(self, m):
        with open('/proc/%d/status' % m.pid()) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])

    def test_endless_message(self):
        def endless(conn):
            conn.send(b'+OK\r\n')
            for _ in range(2000):
                if not conn.send(b'x' * 8190 + b'\r\n'):
                    return
        m = self.serve({'retr': endless})
        self.assertTrue(wait_for(lambda: os.listdir(m.path)))
        with self.assertRaises(OSError) as cm:
            with open(m.p(os.listdir(m.path)[0]), 'rb') as f:
                f.read()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(self.rss_kb(m), 64 * 1024)

    def test_overlong_line(self):
        def long_line(conn):
            conn.send(b'+OK\r\n' + b'y' * (1024 * 1024))
        m = self.serve({'retr': long_line})
        self.assertTrue(wait_for(lambda: os.listdir(m.path)))
        with self.assertRaises(OSError) as cm:
            with open(m.p(os.listdir(m.path)[0]), 'rb') as f:
                f.read()
        self.assertEqual(cm.exception.errno, errno.EIO)

    def test_list_never_answered(self):
        # A fresh store has nothing to show: until the server's LIST
        # arrives, a listing fails with EIO within the timeout (2 s),
        # rather than showing an empty maildrop or hanging.
        m = self.serve({'list': b''}, timeout=2)
        for _ in range(2):
            t = time.monotonic()
            r = subprocess.run(['ls', m.path], capture_output=True,
                               timeout=15)
            took = time.monotonic() - t
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn(b'Input/output error', r.stderr)
            self.assertLess(took, 4.5)
        self.assertTrue(is_mounted(m.path))

    def test_bogus_list(self):
        m = self.serve({'list': b'+OK\r\n1 99999999999999\r\n.\r\n',
                        'retr': lambda conn: conn.send(b'-ERR no\r\n')})
        # The bogus listing is refused whole: nothing shows, and a fresh
        # store has nothing else to show.
        with self.assertRaises(OSError) as cm:
            os.listdir(m.path)
        self.assertEqual(cm.exception.errno, errno.EIO)


if __name__ == '__main__':
    unittest.main()
