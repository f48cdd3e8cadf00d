"""Names that identify the message, not its slot, and ordinary tools that
write into the mount: backup and restore with rsync and tar, cp and mv
between two accounts mounted at once. Mail is never lost, never stored
twice by a repeated copy, and never sent to the target's Trash."""

import errno
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

FLAGS = ['', '\\Seen', '\\Seen \\Flagged', '\\Answered', '$Work \\Seen']


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


class NamingTest(unittest.TestCase):
    """bob has a folder Src of 42 messages (varied dates and flags, one
    true duplicate pair); alice has unrelated mail in INBOX."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        s = self.server
        self.folder = 'Src%d' % int(time.monotonic() * 1000)
        items = []
        for i in range(40):
            raw = corpus.text_message(1000 + i)
            date = 1400000000 + i * 86400 * 17 + i * 61
            items.append((raw, FLAGS[i % len(FLAGS)], date))
        dup = corpus.text_message(2000)
        items += [(dup, '\\Seen', 1650000000), (dup, '', 1650000000)]
        self.items = items
        s.append_many('bob', self.folder, items)
        self.alice_inbox = s.fetch_all('alice', 'INBOX')
        if not self.alice_inbox:
            s.append_many('alice', 'INBOX', [corpus.text_message(i)
                                             for i in range(1, 6)])
            self.alice_inbox = s.fetch_all('alice', 'INBOX')
        self.trash_before = {u: self.trash(u) for u in ('alice', 'bob')}
        self.bob = self.mount('bob')
        self.alice = self.mount('alice')
        self.tmp = tempfile.mkdtemp(prefix='mailfs-naming-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def mount(self, user, *options):
        m = Mount('imaps://%s@localhost:%d' % (user, self.server.imaps_port),
                  self.server.users[user], cafile=self.server.cafile,
                  options=options)
        self.addCleanup(m.umount)
        return m.start()

    def trash(self, user):
        return sorted(self.server.fetch_all(user, 'Trash').values())

    def state(self, user, folder):
        """Sorted (bytes, INTERNALDATE, flags) of every message."""
        data = self.server.fetch_all(user, folder)
        flags = self.server.flags(user, folder)
        dates = self.server._fetch(user, folder, b'(UID INTERNALDATE)',
                                   'INTERNALDATE')
        return sorted((data[u], str(dates[u]).strip(),
                       tuple(sorted(flags[u] - {'\\Recent'})))
                      for u in data)

    def assert_no_trash_change(self):
        for user in ('alice', 'bob'):
            self.assertEqual(self.trash(user), self.trash_before[user],
                             user + "'s Trash changed")

    def assert_alice_inbox_intact(self):
        now = self.server.fetch_all('alice', 'INBOX')
        for uid, raw in self.alice_inbox.items():
            self.assertEqual(now.get(uid), raw)

    # ---------------------------------------------------------- names

    def test_names_are_derived_from_the_message(self):
        listed = sorted(os.listdir(self.bob.p(self.folder)))
        want = self.server.message_names('bob', self.folder)
        self.assertEqual(listed, sorted(want.values()))
        for name in listed:
            self.assertRegex(name, r'^\d{8}T\d{6}Z-\d+-[0-9a-f]{8}'
                                   r'(-\d+)?\.eml$')
        # The duplicate pair: -2 goes to the higher UID.
        dups = sorted((u, n) for u, n in want.items() if '-2.eml' in n)
        self.assertEqual(len(dups), 1)
        # Names sort by arrival.
        dates = [os.stat(self.bob.p(self.folder, n)).st_mtime
                 for n in listed]
        self.assertEqual(dates, sorted(dates))
        # The UID is readable by name, not listed.
        uid, name = dups[0]
        p = self.bob.p(self.folder, name)
        self.assertEqual(os.getxattr(p, 'user.mail.uid'), str(uid).encode())
        self.assertNotIn('user.mail.uid', os.listxattr(p))
        os.setxattr(p, 'user.mail.uid', b'12345')  # accepted, ignored
        self.assertEqual(os.getxattr(p, 'user.mail.uid'), str(uid).encode())
        # Stable across remounts.
        self.bob.umount()
        again = self.mount('bob')
        self.assertEqual(sorted(os.listdir(again.p(self.folder))), listed)

    # ------------------------------------------------ backup, restore

    def test_rsync_backup_and_restore(self):
        backup = os.path.join(self.tmp, 'backup')
        r = run('rsync', '-aX', self.bob.p(self.folder) + '/', backup + '/')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(os.listdir(backup)), 42)
        os.mkdir(self.bob.p('Restored' + self.folder))
        target = self.bob.p('Restored' + self.folder)
        r = run('rsync', '-aX', backup + '/', target + '/')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.state('bob', 'Restored' + self.folder),
                         self.state('bob', self.folder))
        self.assertEqual(sorted(os.listdir(target)),
                         sorted(os.listdir(backup)))
        # A second rsync stores nothing.
        before = self.server.folder_uids('bob', 'Restored' + self.folder)
        r = run('rsync', '-aX', '--itemize-changes', backup + '/',
                target + '/')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.server.folder_uids(
            'bob', 'Restored' + self.folder), before)
        # Even with every file sent again (checksums differ nowhere, but
        # --ignore-times makes rsync rewrite each one): identical bytes
        # under an existing name are not stored twice.
        r = run('rsync', '-aX', '--ignore-times', backup + '/', target + '/')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.server.folder_uids(
            'bob', 'Restored' + self.folder), before)
        self.assert_no_trash_change()

    def test_tar_extract_into_new_folder(self):
        archive = os.path.join(self.tmp, 'src.tar')
        r = run('tar', '-cf', archive, '-C', self.bob.p(self.folder), '.')
        self.assertEqual(r.returncode, 0, r.stderr)
        with tarfile.open(archive) as t:
            self.assertEqual(len([m for m in t if m.isfile()]), 42)
        target = self.alice.p('Untar' + self.folder)
        os.mkdir(target)
        r = run('tar', '-xf', archive, '-C', target)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.state('alice', 'Untar' + self.folder)
        want = self.state('bob', self.folder)
        # tar keeps bytes and dates (flags are not in a tar file).
        self.assertEqual([g[:2] for g in got], [w[:2] for w in want])
        self.assertEqual(sorted(os.listdir(target)),
                         sorted(os.listdir(self.bob.p(self.folder))))
        self.assert_no_trash_change()

    # ------------------------------------------- between two accounts

    def check_copy(self, *cp_opts):
        name = 'Cp%s%s' % (cp_opts[0].strip('-'), self.folder)
        r = run('cp', *cp_opts, self.bob.p(self.folder), self.alice.p(name))
        self.assertEqual(r.returncode, 0, r.stderr)
        got, want = self.state('alice', name), self.state('bob', self.folder)
        if '-a' not in cp_opts:
            # cp -p keeps times, not extended attributes (flags).
            got, want = [g[:2] for g in got], [w[:2] for w in want]
        self.assertEqual(got, want)
        self.assertEqual(sorted(os.listdir(self.alice.p(name))),
                         sorted(os.listdir(self.bob.p(self.folder))))
        # Again, into the same place: nothing more is stored.
        before = self.server.folder_uids('alice', name)
        r = run('cp', *cp_opts, self.bob.p(self.folder) + '/.',
                self.alice.p(name))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.server.folder_uids('alice', name), before)
        self.assert_no_trash_change()

    def test_cp_rp_between_accounts(self):
        self.check_copy('-rp')

    def test_cp_a_between_accounts(self):
        self.check_copy('-a')

    def test_mv_between_accounts_spares_target_mail(self):
        name = sorted(os.listdir(self.bob.p(self.folder)))[3]
        raw = open(self.bob.p(self.folder, name), 'rb').read()
        r = run('mv', self.bob.p(self.folder, name),
                self.alice.p('INBOX') + '/')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(name, os.listdir(self.alice.p('INBOX')))
        self.assertIn(raw, self.server.fetch_all('alice', 'INBOX').values())
        self.assert_alice_inbox_intact()
        self.assertEqual(self.trash('alice'), self.trash_before['alice'])
        # mv's removal of its source follows -o delete= (Trash).
        self.assertIn(raw, self.trash('bob'))

    def test_cp_one_message_into_folder_with_mail(self):
        name = sorted(os.listdir(self.bob.p(self.folder)))[5]
        r = run('cp', self.bob.p(self.folder, name),
                self.alice.p('INBOX') + '/')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_alice_inbox_intact()
        self.assertEqual(len(self.server.fetch_all('alice', 'INBOX')),
                         len(self.alice_inbox) + 1)
        self.assert_no_trash_change()

    # --------------------------------------------------- temporaries

    def test_temporaries(self):
        d = self.alice.p('INBOX')
        before = len(self.server.fetch_all('alice', 'INBOX'))
        raw = corpus.text_message(4242)
        tmp = os.path.join(d, '.x.eml.AbC123')
        with open(tmp, 'wb') as f:
            f.write(raw)
        # Closed: nothing stored, the file stays.
        self.assertEqual(len(self.server.fetch_all('alice', 'INBOX')),
                         before)
        self.assertTrue(os.path.exists(tmp))
        os.utime(tmp, (1500000000, 1500000000))
        os.setxattr(tmp, 'user.mail.flags', b'\\Flagged')
        # Unlinked: discarded.
        os.unlink(tmp)
        self.assertFalse(os.path.exists(tmp))
        self.assertEqual(len(self.server.fetch_all('alice', 'INBOX')),
                         before)
        # Renamed: stored with its date and flags.
        with open(tmp, 'wb') as f:
            f.write(raw)
        os.utime(tmp, (1500000000, 1500000000))
        os.setxattr(tmp, 'user.mail.flags', b'\\Flagged')
        os.rename(tmp, os.path.join(d, 'x.eml'))
        data = self.server.fetch_all('alice', 'INBOX')
        uid, = [u for u, v in data.items() if v == raw]
        self.assertEqual(self.server.flags('alice', 'INBOX')[uid] -
                         {'\\Recent'}, {'\\Flagged'})
        name = self.server.message_names('alice', 'INBOX')[uid]
        self.assertTrue(name.startswith('20170714T024000Z-'), name)
        self.assertIn(name, os.listdir(d))
        # A rename onto a message with other bytes: EEXIST, both kept.
        other = corpus.text_message(4243)
        with open(tmp, 'wb') as f:
            f.write(other)
        with self.assertRaises(OSError) as cm:
            os.rename(tmp, os.path.join(d, name))
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        # Nothing was sent: it can still be stored under another name.
        os.rename(tmp, os.path.join(d, 'y.eml'))
        self.assertIn(other,
                      self.server.fetch_all('alice', 'INBOX').values())
        # Creating over an existing name: EEXIST.
        with self.assertRaises(OSError) as cm:
            os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL |
                    os.O_WRONLY)
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        self.assertEqual(len(self.server.fetch_all('alice', 'INBOX')),
                         before + 2)
        self.assert_no_trash_change()

    def test_idle_temporary_is_discarded(self):
        m = Mount('imaps://alice@localhost:%d' % self.server.imaps_port,
                  self.server.users['alice'], cafile=self.server.cafile,
                  options=['temp_idle=1'], foreground=True)
        self.addCleanup(m.umount)
        m.start()
        tmp = m.p('INBOX', '.left.behind')
        with open(tmp, 'wb') as f:
            f.write(corpus.text_message(4300))
        time.sleep(2.5)
        self.assertNotIn('.left.behind', os.listdir(m.p('INBOX')))
        self.assertFalse(os.path.exists(tmp))
        self.assertIn('.left.behind: temporary file unused', m.stderr())


if __name__ == '__main__':
    unittest.main()
