"""The read-only IMAP mount against a real Dovecot, through real FUSE and
real tools, cross-checked with Python's imaplib."""

import errno
import hashlib
import os
import re
import subprocess
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount, is_mounted

USER = 'alice'


def mount_path(folder, sep):
    """Where a server folder (UTF-8, server separator) shows in the mount."""
    return folder.replace(sep, '/') if sep != '/' else folder


def body_commands(sessions):
    """Client commands of rawlog sessions that fetch message bodies."""
    return [c for s in sessions for c in s.commands
            if 'BODY' in c.upper() and 'FETCH' in c.upper() and
            'HEADER.FIELDS' not in c.upper()]


class NamesMixin:
    """nm(folder, uid): the file name of a message, computed from the
    server's data independently of mailfs (MailServer.message_names)."""

    def nm(self, folder, uid, user=USER):
        return self.server.message_names(user, folder)[uid]


class ImapMountTest(NamesMixin, unittest.TestCase):
    """One server with the standard corpus (2,000-message folder and a
    20 MB message included), mounted over implicit TLS."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.layout = corpus.populate_standard(cls.server, USER, many=True)
        cls.sep = cls.server.separator
        cls.password = cls.server.users[USER]
        cls.url = 'imaps://%s@localhost:%d' % (USER, cls.server.imaps_port)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self, *options, **kw):
        m = Mount(self.url, self.password, cafile=self.server.cafile,
                  options=options, **kw)
        self.addCleanup(m.umount)
        return m.start()

    def test_folders_are_directories(self):
        m = self.mount()
        top = sorted(os.listdir(m.path))
        for name in ('INBOX', 'Archive', 'Reçus', '日本語', 'Big', 'Empty',
                     'Binary', 'Many', 'Trash'):
            self.assertIn(name, top)
        # A folder with children and messages holds both.
        entries = os.listdir(m.p('Archive'))
        self.assertIn('2024', entries)
        self.assertEqual(len([e for e in entries if e.endswith('.eml')]), 2)
        self.assertEqual(os.listdir(m.p('日本語')), ['メモ'])
        self.assertEqual(os.listdir(m.p('Empty')), [])
        st = os.stat(m.p('Archive'))
        self.assertEqual(st.st_nlink, 4)  # ., .., 2024, 2025

    def test_every_message_is_byte_exact(self):
        m = self.mount()
        for folder in self.layout['folders']:
            served = self.server.fetch_all(USER, folder)
            d = m.p(mount_path(folder, self.sep))
            names = sorted(os.listdir(d))
            mnames = self.server.message_names(USER, folder)
            self.assertEqual(
                sorted(mnames[u] for u in served),
                [n for n in names if n.endswith('.eml')], folder)
            for uid, want in served.items():
                p = os.path.join(d, mnames[uid])
                st = os.stat(p)
                self.assertEqual(st.st_size, len(want), p)
                self.assertEqual(st.st_mode & 0o777, 0o444)
                self.assertEqual(st.st_uid, os.getuid())
                self.assertEqual(st.st_blocks, (len(want) + 511) // 512)
                with open(p, 'rb') as f:
                    got = f.read()
                self.assertEqual(hashlib.sha256(got).hexdigest(),
                                 hashlib.sha256(want).hexdigest(), p)

    def test_kinds_of_content(self):
        # The corpus holds what a real mailbox has: check it is served.
        m = self.mount()
        kinds = self.layout['kinds']['Binary']
        served = self.server.fetch_all(USER, 'Binary')
        for uid, kind in kinds.items():
            with open(m.p('Binary', self.nm('Binary', uid)), 'rb') as f:
                got = f.read()
            self.assertEqual(got, served[uid], kind)
            if kind == 'empty':
                self.assertTrue(got.endswith(b'\r\n\r\n'))
            if kind == 'eightbit':
                self.assertTrue(any(b >= 0x80 for b in got))

    def test_mtime_is_internaldate(self):
        m = self.mount()
        folder = self.layout['names']['archive_2024']
        for uid, raw in self.layout['folders'][folder].items():
            st = os.stat(m.p(mount_path(folder, self.sep), self.nm(folder, uid)))
            t = time.gmtime(st.st_mtime)
            self.assertEqual((t.tm_year, t.tm_mday, t.tm_hour, t.tm_min),
                             (2024, 15, 9, 30))

    def test_flags_xattr(self):
        m = self.mount()
        server_flags = self.server.flags(USER, 'INBOX')
        for uid, flags in server_flags.items():
            out = subprocess.run(
                ['getfattr', '--only-values', '-n', 'user.mail.flags',
                 m.p('INBOX', self.nm('INBOX', uid))],
                capture_output=True, check=True).stdout.decode()
            shown = set(out.split())
            self.assertEqual(shown, set(flags) - {'\\Recent'}, uid)
        listed = subprocess.run(['getfattr', '-d', m.p('INBOX', self.nm('INBOX', 1))],
                                capture_output=True, text=True).stdout
        self.assertIn('user.mail.flags', listed)

    def test_grep_leaves_seen_unchanged(self):
        before = {f: self.server.flags(USER, f)
                  for f in self.layout['folders']}
        m = self.mount()
        out = subprocess.run(['grep', '-rl', 'invoice', m.p('INBOX')],
                             capture_output=True, text=True).stdout
        uid_of = {n: u for u, n in
                  self.server.message_names(USER, 'INBOX').items()}
        hits = {uid_of[os.path.basename(p)] for p in out.split()}
        self.assertTrue(self.layout['invoice']['INBOX'] <= hits)
        subprocess.run(['grep', '-rlq', 'zzz-no-such-text', m.path])
        after = {f: self.server.flags(USER, f)
                 for f in self.layout['folders']}
        self.assertEqual(before, after)

    def test_rsync_twice_transfers_nothing_new(self):
        m = self.mount()
        dest = os.path.join(m.tmp, 'backup')
        src = m.path + '/'

        def rsync():
            out = subprocess.run(
                ['rsync', '-aX', '--stats', '--exclude=/Big', '--exclude=/Many',
                 src, dest + '/'], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            return int(re.search(r'Number of regular files transferred: '
                                 r'([\d,]+)', out.stdout).group(1)
                       .replace(',', ''))
        first = rsync()
        self.assertGreater(first, 50)
        self.assertEqual(rsync(), 0)
        # A fresh mount gives the same sizes and times: still nothing.
        m.umount()
        m2 = self.mount()
        src = m2.path + '/'
        self.assertEqual(rsync(), 0)
        served = self.server.fetch_all(USER, 'INBOX')
        for uid, want in served.items():
            with open(os.path.join(dest, 'INBOX', self.nm('INBOX', uid)), 'rb') as f:
                self.assertEqual(f.read(), want)

    def test_inodes_stable_across_remounts(self):
        m = self.mount()
        a = {n: os.stat(m.p('INBOX', n)).st_ino for n in os.listdir(
            m.p('INBOX'))}
        m.umount()
        m2 = self.mount()
        b = {n: os.stat(m2.p('INBOX', n)).st_ino for n in os.listdir(
            m2.p('INBOX'))}
        self.assertEqual(a, b)
        self.assertEqual(len(set(a.values())), len(a))

    def test_listing_costs_constant_commands(self):
        self.server.clear_rawlog(USER)
        m = self.mount()
        out = subprocess.run(['ls', '-l', m.p('Many')], capture_output=True,
                             text=True, check=True).stdout
        self.assertEqual(len([l for l in out.splitlines()
                              if l.endswith('.eml')]), 2000)
        m.umount()
        sessions = self.server.rawlog_sessions(USER, 'imap')
        cmds = [c for s in sessions for c in s.commands]
        self.assertEqual(body_commands(sessions), [])
        fetches = [c for c in cmds if 'FETCH' in c.upper()]
        self.assertEqual(len(fetches), 1, fetches)
        self.assertLessEqual(len(cmds), 10, cmds)

    def test_head_transfers_little(self):
        want = self.server.fetch_all(USER, 'Big')[1]
        self.server.clear_rawlog(USER)
        m = self.mount()
        p = m.p('Big', self.nm('Big', 1))
        self.assertEqual(os.stat(p).st_size, len(want))
        out = subprocess.run(['head', '-c', '4096', p], capture_output=True,
                             check=True).stdout
        self.assertEqual(out, want[:4096])
        m.umount()
        sessions = self.server.rawlog_sessions(USER, 'imap')
        down = sum(s.bytes_out for s in sessions)
        self.assertLess(down, 1024 * 1024, down)

    def test_cat_big_takes_few_fetches(self):
        want = self.server.fetch_all(USER, 'Big')[1]
        self.server.clear_rawlog(USER)
        m = self.mount()
        with open(m.p('Big', self.nm('Big', 1)), 'rb') as f:
            got = f.read()
        self.assertEqual(len(got), len(want))
        self.assertEqual(got, want)
        m.umount()
        fetches = body_commands(self.server.rawlog_sessions(USER, 'imap'))
        self.assertGreater(len(fetches), 1)
        self.assertLessEqual(len(fetches), 16, fetches)
        for c in fetches:
            self.assertIn('BODY.PEEK[]<', c.upper())

    def test_scan_prefetches_in_batches(self):
        # grep -r over a folder reads messages in listing order: after the
        # first few, many messages must come per FETCH command.
        self.server.clear_rawlog(USER)
        m = self.mount()
        subprocess.run(['grep', '-rlq', 'zzz-no-such-text', m.p('Many')])
        m.umount()
        fetches = body_commands(self.server.rawlog_sessions(USER, 'imap'))
        self.assertLess(len(fetches), 2000 / 10, len(fetches))

    def test_parallel_readers(self):
        m = self.mount('connections=3')
        folders = ['INBOX', mount_path(self.layout['names']['archive_2024'],
                                       self.sep), 'Reçus', 'Binary']
        procs = [subprocess.Popen(['sh', '-c', 'cat "$1"/*.eml | sha256sum',
                                   'sh', m.p(f)], stdout=subprocess.PIPE)
                 for f in folders]
        for f, p in zip(folders, procs):
            out = p.communicate(timeout=60)[0].split()[0].decode()
            served = self.server.fetch_all(
                USER, f.replace('/', self.sep))
            names = sorted(os.listdir(m.p(f)))
            uid_of = {n: u for u, n in self.server.message_names(
                USER, f.replace('/', self.sep)).items()}
            want = hashlib.sha256(b''.join(
                served[uid_of[n]] for n in names)).hexdigest()
            self.assertEqual(out, want, f)

    def test_missing_names(self):
        m = self.mount()
        for p in ('nope', 'INBOX/999999.eml', 'INBOX/01.eml', 'Empty/1.eml',
                  'INBOX/1.eml/x'):
            self.assertFalse(os.path.exists(m.p(p)), p)
        with self.assertRaises(OSError) as cm:
            open(m.p('INBOX', self.nm('INBOX', 1)), 'r+b')
        self.assertEqual(cm.exception.errno, errno.EACCES)


class ChangesTest(NamesMixin, unittest.TestCase):
    """Another client's appends and expunges show up in the mount."""

    def setUp(self):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.server.create_folder(USER, 'Live')
        self.uids = self.server.append_many(
            USER, 'Live', [corpus.text_message(i) for i in range(5)])
        url = 'imaps://%s@localhost:%d' % (USER, self.server.imaps_port)
        self.m = Mount(url, self.server.users[USER],
                       cafile=self.server.cafile, options=['refresh=1'])
        self.addCleanup(self.m.umount)
        self.m.start()

    def wait_for(self, pred, seconds=5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.2)
        return pred()

    def test_append_and_expunge_are_reflected(self):
        d = self.m.p('Live')
        self.assertEqual(len(os.listdir(d)), 5)
        gone = self.nm('Live', self.uids[0])
        new = self.server.append(USER, 'Live', corpus.text_message(99))
        new_name = self.nm('Live', new)
        c = self.server.imap(USER)
        c.select('Live')
        c.uid('STORE', str(self.uids[0]), '+FLAGS', '(\\Deleted)')
        c.uid('EXPUNGE', str(self.uids[0]))
        c.logout()
        self.assertTrue(self.wait_for(
            lambda: new_name in os.listdir(d) and
            gone not in os.listdir(d)))
        with open(os.path.join(d, new_name), 'rb') as f:
            self.assertEqual(f.read(), self.server.fetch_all(USER, 'Live')[new])

    def test_reading_a_vanished_message_is_enoent(self):
        p = self.m.p('Live', self.nm('Live', self.uids[1]))
        f = open(p, 'rb')
        self.addCleanup(f.close)
        c = self.server.imap(USER)
        c.select('Live')
        c.uid('STORE', str(self.uids[1]), '+FLAGS', '(\\Deleted)')
        c.uid('EXPUNGE', str(self.uids[1]))
        c.logout()
        with self.assertRaises(OSError) as cm:
            f.read()
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertTrue(self.wait_for(lambda: not os.path.exists(p)))

    def test_flag_change_is_reflected(self):
        p = self.m.p('Live', self.nm('Live', self.uids[2]))

        def flags():
            return subprocess.run(
                ['getfattr', '--only-values', '-n', 'user.mail.flags', p],
                capture_output=True, text=True).stdout.split()
        self.assertEqual(flags(), [])
        c = self.server.imap(USER)
        c.select('Live')
        c.uid('STORE', str(self.uids[2]), '+FLAGS', '(\\Flagged $Todo)')
        c.logout()
        self.assertTrue(self.wait_for(
            lambda: sorted(flags()) == ['$Todo', '\\Flagged']))


class PushTest(NamesMixin, unittest.TestCase):
    """Another client's changes to INBOX show within 2 s without polling
    (-o refresh=3600): mailfs idles on INBOX on a connection of its own."""

    def setUp(self):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.uids = self.server.append_many(
            USER, 'INBOX', [corpus.text_message(i) for i in range(3)])
        url = 'imaps://%s@localhost:%d' % (USER, self.server.imaps_port)
        self.m = Mount(url, self.server.users[USER],
                       cafile=self.server.cafile,
                       options=['refresh=3600', 'connections=4'])
        self.addCleanup(self.m.umount)
        self.m.start()

    def within(self, pred, seconds=2.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if pred():
                return True
            time.sleep(0.05)
        return pred()

    def test_changes_show_within_two_seconds(self):
        d = self.m.p('INBOX')
        self.assertEqual(len(os.listdir(d)), 3)
        self.assertTrue(self.m.wait_push())
        new = self.server.append(USER, 'INBOX', corpus.text_message(77))
        name = self.nm('INBOX', new)
        self.assertTrue(self.within(lambda: name in os.listdir(d)))
        gone = self.nm('INBOX', self.uids[0])
        c = self.server.imap(USER)
        c.select('INBOX')
        c.uid('STORE', str(self.uids[0]), '+FLAGS', '(\\Deleted)')
        c.uid('EXPUNGE', str(self.uids[0]))
        c.uid('STORE', str(self.uids[1]), '+FLAGS', '(\\Flagged)')
        c.logout()
        self.assertTrue(self.within(lambda: gone not in os.listdir(d)))
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[1]))

        def flagged():
            return b'\\Flagged' in os.getxattr(p, 'user.mail.flags')
        self.assertTrue(self.within(flagged))


class NotifyPushTest(PushTest):
    """With NOTIFY (Dovecot offers it), every folder listed in the last 10
    minutes is watched on the one push session, not INBOX alone."""

    def test_listed_folder_changes_show_within_two_seconds(self):
        s = self.server
        uids = s.append_many(USER, 'Work', [corpus.text_message(i)
                                            for i in range(10, 13)])
        d = self.m.p('Work')
        self.assertEqual(len(os.listdir(d)), 3)
        time.sleep(1.0)  # the push session takes the new folder in
        new = s.append(USER, 'Work', corpus.text_message(78))
        name = self.nm('Work', new)
        self.assertTrue(self.within(lambda: name in os.listdir(d)))
        c = s.imap(USER)
        c.select('Work')
        c.uid('STORE', str(uids[1]), '+FLAGS', '(\\Flagged)')
        gone = self.nm('Work', uids[0])
        c.uid('STORE', str(uids[0]), '+FLAGS', '(\\Deleted)')
        c.uid('EXPUNGE', str(uids[0]))
        c.logout()
        self.assertTrue(self.within(lambda: gone not in os.listdir(d)))
        p = self.m.p('Work', self.nm('Work', uids[1]))
        self.assertTrue(self.within(
            lambda: b'\\Flagged' in os.getxattr(p, 'user.mail.flags')))

    def test_flag_change_alone_shows_within_two_seconds(self):
        """Only a flag changes, in a folder that is not INBOX: Dovecot
        reports that (a STATUS with HIGHESTMODSEQ) only to a session that
        turned CONDSTORE on, which the push session does."""
        s = self.server
        uids = s.append_many(USER, 'Flagged', [corpus.text_message(i)
                                               for i in range(20, 22)])
        d = self.m.p('Flagged')
        self.assertEqual(len(os.listdir(d)), 2)
        p = os.path.join(d, self.nm('Flagged', uids[0]))
        self.assertNotIn(b'$Todo', os.getxattr(p, 'user.mail.flags'))
        time.sleep(1.0)  # the push session takes the new folder in
        c = s.imap(USER)
        c.select('Flagged')
        c.uid('STORE', str(uids[0]), '+FLAGS', '($Todo)')
        c.logout()
        self.assertTrue(self.within(
            lambda: b'$Todo' in os.getxattr(p, 'user.mail.flags')))


class TransportTest(NamesMixin, unittest.TestCase):
    """STARTTLS, cleartext on request, and what is refused."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.server.append(USER, 'INBOX', corpus.text_message(1))
        cls.password = cls.server.users[USER]

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def check_mount(self, url, **kw):
        with Mount(url, self.password, **kw) as m:
            with open(m.p('INBOX', self.nm('INBOX', 1)), 'rb') as f:
                self.assertEqual(f.read(),
                                 self.server.fetch_all(USER, 'INBOX')[1])
            return m.stderr()

    def test_starttls(self):
        self.check_mount('imap://%s@localhost:%d' %
                         (USER, self.server.imap_port),
                         cafile=self.server.cafile)

    def test_tls_none_warns(self):
        err = self.check_mount('imap://%s@localhost:%d' %
                               (USER, self.server.imap_port),
                               options=['tls=none'])
        self.assertIn('UNENCRYPTED', err)

    def test_insecure_warns(self):
        err = self.check_mount('imaps://%s@localhost:%d' %
                               (USER, self.server.imaps_port),
                               options=['insecure'])
        self.assertIn('NOT verified', err)

    def test_percent_encoded_user_and_env_password(self):
        url = 'imaps://%s@localhost:%d' % ('al%69ce', self.server.imaps_port)
        with Mount(url, None, cafile=self.server.cafile,
                   env={'MAILFS_PASSWORD': self.password}) as m:
            self.assertIn('INBOX', os.listdir(m.path))
            # The password is in no process's command line.
            with open('/proc/%d/cmdline' % m.pid(), 'rb') as f:
                self.assertNotIn(self.password.encode(), f.read())

    def fails(self, url, password=None, cafile=None, options=(), text=''):
        m = Mount(url, self.password if password is None else password,
                  cafile=cafile, options=options)
        self.addCleanup(m.umount)
        rc, err, secs = m.run()
        self.assertNotEqual(rc, 0)
        self.assertIn(text, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertLess(secs, 10)
        self.assertFalse(is_mounted(m.path))
        self.assertNotIn(self.password, err)
        return err

    def test_wrong_password(self):
        self.fails('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                   password='wrong', cafile=self.server.cafile,
                   text='login as alice on localhost failed')

    def test_unreachable_port(self):
        self.fails('imaps://%s@127.0.0.1:1' % USER,
                   cafile=self.server.cafile, text='Connection refused')

    def test_untrusted_certificate(self):
        self.fails('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                   cafile=self.server.other_cafile, text='not trusted')

    def test_system_store_does_not_trust_test_ca(self):
        self.fails('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                   text='not trusted')

    def test_wrong_host_name(self):
        # The certificate is for localhost and 127.0.0.1, not 127.0.0.2.
        self.fails('imaps://%s@127.0.0.2:%d' % (USER, self.server.imaps_port),
                   cafile=self.server.cafile, text='127.0.0.2')

    def test_password_file_readable_by_others(self):
        m = Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                  self.password, cafile=self.server.cafile)
        self.addCleanup(m.umount)
        os.chmod(os.path.join(m.tmp, 'password'), 0o644)
        rc, err, _ = m.run()
        self.assertNotEqual(rc, 0)
        self.assertIn('group or others', err)
        self.assertFalse(is_mounted(m.path))


if __name__ == '__main__':
    unittest.main()
