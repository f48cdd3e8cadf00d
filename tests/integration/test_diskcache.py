"""The persistent disk cache and offline mode, against a real Dovecot:
remounts that cost one resync round trip and no FETCH for bodies read
before, damage to the cache that is detected and refetched, SIGKILL in
the middle of a read, offline mounts (server refused by a proxy), and
-o prefetch. Every byte is compared with what Python's imaplib fetches."""

import errno
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount, is_mounted

USER = 'alice'
FOLDER = 'Box'
N_SMALL = 30
BIG = 700 * 1024  # six 128 KiB chunks


def imaplib_bodies(server, folder):
    """{uid: bytes} of every message, fetched with Python's imaplib."""
    m = server.imap(USER)
    try:
        typ, _ = m.select('"%s"' % folder, readonly=True)
        assert typ == 'OK'
        typ, data = m.uid('FETCH', '1:*', '(UID BODY.PEEK[])')
        assert typ == 'OK'
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            uid = int(head.split('UID ')[1].split()[0])
            out[uid] = item[1]
        return out
    finally:
        m.logout()


def fetch_commands(sessions):
    """Client FETCH commands (any) of rawlog sessions."""
    return [c for s in sessions for c in s.commands if 'FETCH' in c.upper()]


def body_fetches(sessions):
    return [c for c in fetch_commands(sessions)
            if 'BODY.PEEK[]' in c.upper() or 'BODY[]' in c.upper()]


class StatusAgreesTest(unittest.TestCase):
    """user.mail.status shows one state: `state` and `mode` (the disk
    cache's) agree at every reading, also right after the server died.
    They used to disagree (state=offline, mode=online) for the second the
    disk cache takes to confirm a loss."""

    def test_state_and_mode_agree_after_the_server_is_killed(self):
        server = MailServer(pop3=False).start()
        self.addCleanup(server.cleanup)
        self.addCleanup(server.stop)
        server.append_many(USER, 'INBOX', [corpus.text_message(i)
                                           for i in range(3)])
        m = Mount('imaps://%s@localhost:%d' % (USER, server.imaps_port),
                  server.users[USER], cafile=server.cafile)
        self.addCleanup(m.umount)
        m.start()
        os.listdir(m.p('INBOX'))

        def status():
            text = os.getxattr(m.path, 'user.mail.status').decode()
            st = dict(l.split('=', 1) for l in text.splitlines())
            return st['state'], st['mode']

        self.assertEqual(status(), ('online', 'online'))
        # The README's command prints one key=value a line (getfattr
        # without --only-values gave one line full of \012).
        readme = os.path.join(os.path.dirname(__file__), '..', '..',
                              'README.md')
        with open(readme) as f:
            cmd = re.search(r'`(getfattr [^`]*user\.mail\.status) '
                            r'MOUNTPOINT`', f.read()).group(1)
        out = subprocess.run(cmd.split() + [m.path], capture_output=True,
                             text=True, check=True).stdout
        lines = out.splitlines()
        self.assertIn('state=online', lines, out)
        self.assertEqual([l for l in lines
                          if not re.match(r'^[a-z_]+=', l)], [], out)
        server.kill()
        # A change finds the server gone (the last connection attempt
        # fails); the disk cache confirms the loss a second later.
        with self.assertRaises(OSError):
            os.mkdir(m.p('NewFolder'))
        seen = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            seen.append(status())
            time.sleep(0.05)
        self.assertEqual([s for s in seen if s[0] != s[1]], [])
        self.assertEqual(seen[0], ('offline', 'offline'))
        self.assertEqual(seen[-1], ('offline', 'offline'))


class DiskCacheTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.server.create_folder(USER, FOLDER)
        items = [corpus.text_message(i) for i in range(N_SMALL)]
        items.append(corpus.big_message(BIG, i=1))
        cls.server.append_many(USER, FOLDER, items)
        cls.names = cls.server.message_names(USER, FOLDER)
        cls.bodies = imaplib_bodies(cls.server, FOLDER)
        cls.big_uid = max(cls.bodies, key=lambda u: len(cls.bodies[u]))
        cls.password = cls.server.users[USER]

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix='mailfs-dcache-')
        self.addCleanup(shutil.rmtree, self.cache, True)
        self.proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(self.proxy.stop)

    def url(self):
        return 'imaps://%s@localhost:%d' % (USER, self.proxy.port)

    def mounter(self, *options, cafile=None, **kw):
        m = Mount(self.url(), self.password,
                  cafile=cafile or self.server.cafile, options=options,
                  env={'XDG_CACHE_HOME': self.cache}, **kw)
        self.addCleanup(m.umount)
        return m

    def mount(self, *options, **kw):
        return self.mounter(*options, **kw).start()

    def account_dir(self):
        root = os.path.join(self.cache, 'mailfs')
        dirs = os.listdir(root)
        self.assertEqual(len(dirs), 1, dirs)
        return os.path.join(root, dirs[0])

    def body_files(self):
        out = []
        for top, _, files in os.walk(os.path.join(self.account_dir(),
                                                  'bodies')):
            out += [os.path.join(top, f) for f in files]
        return sorted(out)

    def read(self, m, uid):
        with open(m.p(FOLDER, self.names[uid]), 'rb') as f:
            return f.read()

    def read_all_and_check(self, m, uids=None):
        for uid in uids or sorted(self.bodies):
            self.assertEqual(self.read(m, uid), self.bodies[uid],
                             'UID %d' % uid)

    def warm(self, uids=None):
        """A first mount that lists the folder and reads uids (all by
        default), then unmounts with everything written to disk."""
        m = self.mount()
        os.listdir(m.p('INBOX'))
        self.assertEqual(sorted(os.listdir(m.p(FOLDER))),
                         sorted(self.names.values()))
        if uids is None:
            self.read_all_and_check(m, uids)
        else:
            # Only these: read by another process than the one that
            # listed the folder, whose first read there would start a
            # scan that fetches the next messages along.
            for uid in uids:
                out = subprocess.run(['cat', m.p(FOLDER, self.names[uid])],
                                     capture_output=True, check=True)
                self.assertEqual(out.stdout, self.bodies[uid],
                                 'UID %d' % uid)
        m.umount()
        self.assertFalse(is_mounted(m.path))

    def wait_online(self, m):
        """Waits for the reconnect thread (backoff up to 30 s) to find
        the server again."""
        deadline = time.monotonic() + 40
        while self.status(m).get('mode') != 'online':
            self.assertLess(time.monotonic(), deadline, m.stderr())
            time.sleep(0.5)

    def status(self, m):
        out = subprocess.run(['getfattr', '--only-values', '-n',
                              'user.mail.status', m.path],
                             capture_output=True, text=True).stdout
        return dict(line.split('=', 1) for line in out.splitlines()
                    if '=' in line)

    # ---------------------------------------------------------- remount

    def test_remount_of_unchanged_folder_costs_no_command(self):
        """The folder list's STATUS (LIST-STATUS: MESSAGES, UIDNEXT,
        UIDVALIDITY, HIGHESTMODSEQ) shows the folder as it was saved: its
        listing and every body come from the disk cache, without a
        single EXAMINE or FETCH."""
        self.warm()
        self.server.clear_rawlog(USER)
        m = self.mount()
        entries = os.listdir(m.p(FOLDER))
        self.assertEqual(sorted(entries), sorted(self.names.values()))
        for name in entries:
            self.assertEqual(os.stat(m.p(FOLDER, name)).st_size,
                             len(self.bodies[{v: k for k, v in
                                              self.names.items()}[name]]))
        self.read_all_and_check(m)
        m.umount()
        sessions = self.server.rawlog_sessions(USER)
        commands = [c for s in sessions for c in s.commands]
        lists = [c for c in commands if c.upper().startswith('LIST')]
        self.assertTrue(lists, commands)
        self.assertIn('HIGHESTMODSEQ', lists[0])
        opens = [c for c in commands
                 if c.upper().startswith(('SELECT', 'EXAMINE')) and
                 FOLDER in c]
        self.assertEqual(opens, [], commands)
        self.assertEqual(fetch_commands(sessions), [], commands)

    def test_remount_after_flag_change_resyncs_in_one_round_trip(self):
        """Another client flags a message while nothing is mounted: the
        same count and UIDNEXT, but HIGHESTMODSEQ moved, so the saved
        listing is brought up to date by one pipelined resync (EXAMINE
        with QRESYNC and the FETCH of new messages) and the new flag
        shows; no body and no full listing are fetched."""
        self.warm()
        uid = min(self.bodies)
        w = self.server.imap(USER)
        w.select(FOLDER)
        w.uid('STORE', str(uid), '+FLAGS.SILENT', '(\\Flagged)')
        w.logout()
        try:
            self.server.clear_rawlog(USER)
            m = self.mount()
            self.assertEqual(sorted(os.listdir(m.p(FOLDER))),
                             sorted(self.names.values()))
            flags = os.getxattr(m.p(FOLDER, self.names[uid]),
                                'user.mail.flags').decode()
            self.assertIn('\\Flagged', flags)
            self.read_all_and_check(m)
            m.umount()
        finally:
            w = self.server.imap(USER)
            w.select(FOLDER)
            w.uid('STORE', str(uid), '-FLAGS.SILENT', '(\\Flagged)')
            w.logout()
        sessions = self.server.rawlog_sessions(USER)
        commands = [c for s in sessions for c in s.commands]
        # (The SELECT is this test's own, putting the flag back.)
        opens = [c for c in commands
                 if c.upper().startswith('EXAMINE') and FOLDER in c]
        self.assertEqual(len(opens), 1, commands)
        self.assertIn('(QRESYNC (', opens[0])
        self.assertEqual(body_fetches(sessions), [], commands)
        others = [c for c in fetch_commands(sessions)
                  if not re.match(r'UID FETCH \d+:\* \(UID FLAGS ', c)]
        self.assertEqual(others, [], commands)
        at = {c: t for s in sessions for t, c in s.timed_commands}
        self.assertLess(abs(at[[c for c in commands
                                if c.startswith('UID FETCH')][0]] -
                            at[opens[0]]), 0.005, 'not pipelined')

    def test_change_pushed_after_the_folder_list_is_not_missed(self):
        """The folder list is read at mount; then another client flags a
        message of a folder not listed yet. Push reports it, so the saved
        listing is brought up to date when the folder is first listed,
        not taken as unchanged from the older folder list."""
        self.warm()
        uid = min(self.bodies)
        m = self.mount('refresh=3600')
        os.listdir(m.path)
        self.assertTrue(m.wait_push())
        w = self.server.imap(USER)
        w.select(FOLDER)
        w.uid('STORE', str(uid), '+FLAGS.SILENT', '(\\Flagged)')
        try:
            time.sleep(2.5)  # push reports within 2 s
            os.listdir(m.p(FOLDER))
            flags = os.getxattr(m.p(FOLDER, self.names[uid]),
                                'user.mail.flags').decode()
            self.assertIn('\\Flagged', flags)
        finally:
            w.uid('STORE', str(uid), '-FLAGS.SILENT', '(\\Flagged)')
            w.logout()

    def test_listing_changed_while_unmounted_is_brought_up_to_date(self):
        self.warm()
        uid = self.server.append(USER, FOLDER, corpus.text_message(500))
        try:
            m = self.mount()
            names = self.server.message_names(USER, FOLDER)
            self.assertEqual(sorted(os.listdir(m.p(FOLDER))),
                             sorted(names.values()))
            with open(m.p(FOLDER, names[uid]), 'rb') as f:
                self.assertEqual(f.read(),
                                 imaplib_bodies(self.server, FOLDER)[uid])
        finally:
            w = self.server.imap(USER)
            w.select(FOLDER)
            w.uid('STORE', str(uid), '+FLAGS.SILENT', '(\\Deleted)')
            w.uid('EXPUNGE', str(uid))
            w.logout()

    def test_cache_files_are_private(self):
        self.warm()
        root = os.path.join(self.cache, 'mailfs')
        seen_files = 0
        for top, dirs, files in os.walk(root):
            self.assertEqual(stat.S_IMODE(os.stat(top).st_mode), 0o700, top)
            for f in files:
                mode = stat.S_IMODE(os.stat(os.path.join(top, f)).st_mode)
                self.assertEqual(mode, 0o600, f)
                seen_files += 1
        self.assertGreater(seen_files, N_SMALL)

    def test_disk_cache_0_writes_nothing(self):
        m = self.mount('disk_cache=0')
        self.read_all_and_check(m, [self.big_uid])
        m.umount()
        self.assertFalse(os.path.exists(os.path.join(self.cache, 'mailfs')))

    # ---------------------------------------------------------- the lock

    def test_quick_remount_keeps_the_disk_cache(self):
        """fusermount3 -u and at once a new mount, ten times: the mailfs
        that is exiting may still hold the cache's lock for a moment; the
        new one sees that its predecessor's mount is gone and waits for
        the lock instead of running without the cache."""
        self.warm([self.big_uid])
        uids = sorted(self.bodies)
        for i in range(10):
            m = self.mount()
            self.assertNotIn('no disk cache', m.stderr())
            st = self.status(m)
            self.assertIn('disk_cache_bytes', st, m.stderr())
            self.assertEqual(st.get('disk_cache_writing'), 'yes', st)
            os.listdir(m.p(FOLDER))
            self.read_all_and_check(m, [uids[i], self.big_uid])
            subprocess.run(['fusermount3', '-u', m.path], check=True)

    def test_cache_of_a_serving_mount_is_refused_at_once(self):
        """A second mount of the account while the first one serves: it
        runs without the disk cache, says why, and does not wait out the
        timeout for it."""
        first = self.mount()
        os.listdir(first.p(FOLDER))
        t0 = time.monotonic()
        second = self.mount()
        took = time.monotonic() - t0
        self.assertIn('no disk cache', second.stderr())
        self.assertIn('in use by another mailfs', second.stderr())
        self.assertNotIn('disk_cache_bytes', self.status(second))
        self.assertLess(took, 10, second.stderr())
        self.read_all_and_check(second, [self.big_uid])
        self.assertIn('disk_cache_bytes', self.status(first))

    # ------------------------------------------------- whose directory

    def plant(self):
        """A directory of another place (0755, one file), as someone
        could offer it; returns (path, its state)."""
        target = tempfile.mkdtemp(prefix='mailfs-planted-')
        self.addCleanup(shutil.rmtree, target, True)
        os.chmod(target, 0o755)
        with open(os.path.join(target, 'keep'), 'w') as f:
            f.write('not mailfs\n')
        return target, self.tree_state(target)

    @staticmethod
    def tree_state(path):
        """Mode, owner and contents of everything under path."""
        out = {}
        for top, dirs, files in os.walk(path):
            for n in [''] + dirs + files:
                p = os.path.join(top, n)
                st = os.lstat(p)
                data = None
                if stat.S_ISREG(st.st_mode):
                    with open(p, 'rb') as f:
                        data = f.read()
                out[p] = (st.st_mode, st.st_uid, data)
        return out

    def assert_runs_without_cache(self, m, *words):
        err = m.stderr()
        self.assertIn('no disk cache', err)
        for w in words:
            self.assertIn(w, err)
        self.assertNotIn('disk_cache_bytes', self.status(m))
        self.read_all_and_check(m, [self.big_uid])

    def test_planted_symlink_as_cache_dir_is_refused(self):
        """A symbolic link at $XDG_CACHE_HOME/mailfs/ACCOUNT to a
        directory elsewhere: mailfs neither chmods nor writes into the
        target, and says why it runs without the cache."""
        self.warm([self.big_uid])
        acct = self.account_dir()
        shutil.rmtree(acct)
        target, before = self.plant()
        os.symlink(target, acct)
        m = self.mount()
        self.assert_runs_without_cache(m, acct, 'symbolic link')
        m.umount()
        self.assertEqual(self.tree_state(target), before)
        self.assertTrue(os.path.islink(acct))

    def test_cache_dir_of_another_user_is_refused(self):
        """The account's cache directory belongs to another user (who
        could replace pieces: their checksum is no secret): refused."""
        self.warm([self.big_uid])
        acct = self.account_dir()
        os.chown(acct, 65534, 65534)
        before = self.tree_state(acct)
        m = self.mount()
        self.assert_runs_without_cache(m, acct, 'owned by uid 65534')
        m.umount()
        self.assertEqual(self.tree_state(acct), before)

    def test_cache_under_a_directory_others_can_write_is_refused(self):
        """$XDG_CACHE_HOME/mailfs writable by everyone (not sticky):
        anyone could swap the account's directory, so it is not used."""
        self.warm([self.big_uid])
        top = os.path.join(self.cache, 'mailfs')
        os.chmod(top, 0o777)
        m = self.mount()
        self.assert_runs_without_cache(m, top, 'writable by')

    # ----------------------------------------------------------- damage

    def test_damaged_body_files_are_refetched(self):
        self.warm()
        files = self.body_files()
        self.assertGreaterEqual(len(files), N_SMALL + 6)
        with open(files[0], 'r+b') as f:           # truncated
            f.truncate(os.path.getsize(files[0]) - 10)
        size = os.path.getsize(files[1])
        with open(files[1], 'r+b') as f:           # garbage, same size
            f.seek(size // 2)
            f.write(b'\0garbage\0' * 4)
        with open(files[2], 'r+b') as f:           # header garbage
            f.write(b'X' * 16)
        os.unlink(files[3])                        # gone
        self.server.clear_rawlog(USER)
        m = self.mount()
        self.read_all_and_check(m)
        m.umount()
        self.assertGreaterEqual(
            len(body_fetches(self.server.rawlog_sessions(USER))), 1)

    def check_database_damage(self, damage):
        self.warm()
        db = os.path.join(self.account_dir(), 'cache.db')
        damage(db)
        m = self.mount(foreground=True)
        self.read_all_and_check(m)
        m.umount()
        self.assertIn('damaged', m.stderr())
        # The new cache works: a third mount reads without FETCH.
        self.server.clear_rawlog(USER)
        m = self.mount()
        self.read_all_and_check(m)
        m.umount()
        self.assertEqual(body_fetches(self.server.rawlog_sessions(USER)), [])

    def test_garbage_database_is_rebuilt(self):
        def garbage(db):
            with open(db, 'wb') as f:
                f.write(os.urandom(8192))
            for ext in ('-wal', '-shm'):
                if os.path.exists(db + ext):
                    os.unlink(db + ext)
        self.check_database_damage(garbage)

    def test_truncated_database_is_rebuilt(self):
        def truncate(db):
            for ext in ('-wal', '-shm'):
                if os.path.exists(db + ext):
                    os.unlink(db + ext)
            with open(db, 'r+b') as f:
                f.truncate(os.path.getsize(db) // 3)
        self.check_database_damage(truncate)

    def test_sigkill_during_reads_never_serves_wrong_bytes(self):
        for delay in (0.05, 0.3):
            m = self.mount(foreground=True)
            stop = threading.Event()

            def reader():
                for uid in sorted(self.bodies, reverse=True):
                    if stop.is_set():
                        return
                    try:
                        self.read(m, uid)
                    except OSError:
                        return
            t = threading.Thread(target=reader)
            t.start()
            time.sleep(delay)
            m.proc.kill()
            stop.set()
            t.join(30)
            subprocess.run(['fusermount3', '-u', '-z', m.path],
                           capture_output=True)
            m.proc.wait(10)
        m = self.mount()
        self.read_all_and_check(m)

    def test_full_disk_stops_caching_and_reads_go_on(self):
        small = tempfile.mkdtemp(prefix='mailfs-small-')
        self.addCleanup(shutil.rmtree, small, True)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=400k', 'tmpfs',
                        small], check=True)
        self.addCleanup(subprocess.run, ['umount', '-l', small])
        m = Mount(self.url(), self.password, cafile=self.server.cafile,
                  env={'XDG_CACHE_HOME': small}, foreground=True)
        self.addCleanup(m.umount)
        m.start()
        self.read_all_and_check(m)
        deadline = time.monotonic() + 10
        while self.status(m).get('disk_cache_writing') != 'no':
            self.assertLess(time.monotonic(), deadline, m.stderr())
            time.sleep(0.2)
        self.read_all_and_check(m)
        m.umount()
        self.assertIn('disk is full', m.stderr())

    # ---------------------------------------------------------- offline

    def test_offline_mount_serves_cache_and_refuses_the_rest(self):
        # One message: reading several in a row would fetch the next
        # ones along (a scan's batch), and those would be cached too;
        # warm() reads it with cat, not after its own listing.
        cached = sorted(self.bodies)[:1]
        self.warm(cached)
        self.proxy.refuse(True)
        t0 = time.monotonic()
        # Changes refused, as with -o offline_changes=no (kept and sent
        # later by default: test_offline_changes).
        m = self.mount('offline_changes=no', foreground=True)
        self.assertLess(time.monotonic() - t0, 15)
        self.assertIn('offline', m.stderr())
        self.assertEqual(sorted(os.listdir(m.p(FOLDER))),
                         sorted(self.names.values()))
        self.read_all_and_check(m, cached)
        uncached = [u for u in sorted(self.bodies, reverse=True)
                    if u not in cached]
        t0 = time.monotonic()
        with self.assertRaises(OSError) as cm:
            self.read(m, uncached[0])
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(time.monotonic() - t0, 2)
        src = m.p(FOLDER, self.names[cached[0]])
        for op in (lambda: os.rename(src, m.p('INBOX', 'x.eml')),
                   lambda: os.unlink(src),
                   lambda: os.mkdir(m.p('NewFolder'))):
            t0 = time.monotonic()
            with self.assertRaises(OSError) as cm:
                op()
            self.assertEqual(cm.exception.errno, errno.EROFS)
            self.assertLess(time.monotonic() - t0, 2)
        self.assertTrue(os.path.exists(src))
        self.assertEqual(self.status(m).get('mode'), 'offline')
        # The server comes back: online again without a remount.
        self.proxy.refuse(False)
        self.wait_online(m)
        self.assertEqual(self.read(m, uncached[0]),
                         self.bodies[uncached[0]])

    def test_push_starts_when_a_mount_started_offline_connects(self):
        """A mount that started offline learns what the server offers at
        its first connection: push starts then, so another client's flag
        change shows within seconds (refresh=3600: no polling)."""
        self.warm()
        uid = min(self.bodies)
        self.proxy.refuse(True)
        m = self.mount('refresh=3600', foreground=True)
        self.assertEqual(self.status(m).get('mode'), 'offline')
        os.listdir(m.p(FOLDER))
        self.proxy.refuse(False)
        self.wait_online(m)
        deadline = time.monotonic() + 10
        while 'push started' not in m.stderr():
            self.assertLess(time.monotonic(), deadline, m.stderr())
            time.sleep(0.1)
        self.assertTrue(m.wait_push())  # logged in, NOTIFY set
        p = m.p(FOLDER, self.names[uid])
        w = self.server.imap(USER)
        w.select(FOLDER)
        w.uid('STORE', str(uid), '+FLAGS.SILENT', '(\\Flagged)')
        try:
            deadline = time.monotonic() + 3
            while (b'\\Flagged' not in os.getxattr(p, 'user.mail.flags')
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            self.assertIn(b'\\Flagged', os.getxattr(p, 'user.mail.flags'),
                          m.stderr())
        finally:
            w.uid('STORE', str(uid), '-FLAGS.SILENT', '(\\Flagged)')
            w.logout()

    def test_partly_cached_body_is_eio_never_short(self):
        m = self.mount()
        # A first read of a whole chunk (a short one, head -c 4096,
        # fetches only its own bytes, which stay in memory).
        with open(m.p(FOLDER, self.names[self.big_uid]), 'rb') as f:
            head = f.read(128 * 1024)[:4096]
        self.assertEqual(head, self.bodies[self.big_uid][:4096])
        m.umount()
        self.proxy.refuse(True)
        m = self.mount()
        with open(m.p(FOLDER, self.names[self.big_uid]), 'rb') as f:
            self.assertEqual(f.read(4096), head)
            with self.assertRaises(OSError) as cm:
                f.read()
            self.assertEqual(cm.exception.errno, errno.EIO)

    def test_server_lost_during_mount_switches_to_offline(self):
        cached = sorted(self.bodies)[:1]
        self.warm(cached)
        m = self.mount('refresh=1')
        self.read_all_and_check(m, cached[:1])
        self.proxy.refuse(True)
        self.proxy.drop_all(reset=True)
        uncached = [u for u in sorted(self.bodies, reverse=True)
                    if u not in cached]
        t0 = time.monotonic()
        with self.assertRaises(OSError) as cm:
            self.read(m, uncached[0])
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(time.monotonic() - t0, 32)
        self.read_all_and_check(m, cached)
        # One more connection attempt confirms the loss (a connection
        # cut at the wrong moment is no lost server).
        deadline = time.monotonic() + 5
        while self.status(m).get('mode') != 'offline':
            self.assertLess(time.monotonic(), deadline, m.stderr())
            time.sleep(0.2)
        time.sleep(1.1)
        self.assertEqual(sorted(os.listdir(m.p(FOLDER))),
                         sorted(self.names.values()))
        t0 = time.monotonic()
        with self.assertRaises(OSError) as cm:
            self.read(m, uncached[1])
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(time.monotonic() - t0, 2)

    def test_unreachable_without_cache_fails_the_mount(self):
        self.proxy.refuse(True)
        rc, err, _ = self.mounter().run()
        self.assertNotEqual(rc, 0)
        self.assertIn('connect', err)
        rc, err, _ = self.mounter('offline').run()
        self.assertNotEqual(rc, 0)
        self.assertIn('no disk cache', err)

    def test_offline_option_serves_the_cache_without_connecting(self):
        self.warm(sorted(self.bodies)[:3])
        before = self.proxy.connections
        m = self.mount('offline')
        self.read_all_and_check(m, sorted(self.bodies)[:3])
        self.assertEqual(self.status(m).get('mode'), 'offline (forced)')
        self.assertEqual(self.proxy.connections, before)

    def test_bad_certificate_never_falls_back_to_offline(self):
        self.warm(sorted(self.bodies)[:3])
        rc, err, _ = self.mounter(cafile=self.server.other_cafile).run()
        self.assertNotEqual(rc, 0, err)
        self.assertNotIn('offline', err)

    def test_refused_login_never_falls_back_to_offline(self):
        self.warm(sorted(self.bodies)[:3])
        m = Mount(self.url(), 'wrong-password', cafile=self.server.cafile,
                  env={'XDG_CACHE_HOME': self.cache})
        rc, err, _ = m.run()
        self.assertNotEqual(rc, 0, err)
        self.assertNotIn('offline', err)

    # --------------------------------------------------------- prefetch

    def test_prefetch_all_fills_the_cache_for_offline_reading(self):
        m = self.mount('prefetch=all')
        deadline = time.monotonic() + 60
        while self.status(m).get('prefetch') != 'done':
            self.assertLess(time.monotonic(), deadline, self.status(m))
            time.sleep(0.3)
        done, total = self.status(m)['prefetch_messages'].split('/')
        self.assertEqual(done, total)
        self.assertGreaterEqual(int(total), N_SMALL + 1)
        m.umount()
        self.proxy.refuse(True)
        m = self.mount('offline')
        self.read_all_and_check(m)

    def test_prefetch_names_a_folder_as_the_mount_shows_it(self):
        m = self.mount('prefetch=%42ox:INBOX')
        deadline = time.monotonic() + 60
        while self.status(m).get('prefetch') != 'done':
            self.assertLess(time.monotonic(), deadline, self.status(m))
            time.sleep(0.3)
        m.umount()
        m = self.mount('offline')
        self.read_all_and_check(m)

    def test_bad_prefetch_value_is_refused(self):
        rc, err, _ = self.mounter('prefetch=a::b').run()
        self.assertNotEqual(rc, 0)
        self.assertIn('prefetch', err)


if __name__ == '__main__':
    unittest.main()
