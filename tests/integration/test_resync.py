"""Incremental resync (issue 7): after other clients change a folder, a
listing is brought up to date from the changes alone (QRESYNC, CONDSTORE,
or every message's flags), and the result is the server's folder exactly.
Each capability set runs against the real Dovecot, with what it advertises
cut down by imap_capability."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

USER = 'alice'
FOLDER = 'Big'
N = 400
REFRESH = 1


def getflags(path):
    out = subprocess.run(['getfattr', '--only-values', '-n',
                          'user.mail.flags', path], capture_output=True,
                         text=True)
    return set(out.stdout.split())


class ResyncBase(unittest.TestCase):
    capability = None
    # Most bytes the server may send for bringing the N-message listing up
    # to date after three changes (the full listing is about 120 per
    # message).
    budget = 6000

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(imap_capability=cls.capability,
                                rawlog=True).start()
        cls.uids = cls.server.append_many(
            USER, FOLDER, [corpus.text_message(i) for i in range(N)])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self):
        cache = tempfile.mkdtemp(prefix='mailfs-xdg-')
        self.addCleanup(shutil.rmtree, cache, True)
        m = Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=('refresh=%d' % REFRESH, 'connections=2'),
                  env={'XDG_CACHE_HOME': cache}, foreground=True)
        self.addCleanup(m.umount)
        return m.start()

    def server_names(self):
        return set(self.server.message_names(USER, FOLDER).values())

    def listing_bytes(self):
        """Bytes the server sent the mount since clear_rawlog(), and the
        commands it got."""
        sessions = self.server.rawlog_sessions(USER, 'imap')
        return (sum(s.bytes_out for s in sessions),
                [c for s in sessions for c in s.commands])

    def test_new_expunged_and_flagged_after_resync(self):
        s = self.server
        m = self.mount()
        self.assertEqual(set(os.listdir(m.p(FOLDER))), self.server_names())
        # Another client: one new message, one expunged, one flagged.
        gone, flagged = self.uids[7], self.uids[5]
        new = s.append(USER, FOLDER, corpus.text_message(N + 1))
        with s.imap(USER) as c:
            c.select(FOLDER)
            c.uid('STORE', str(flagged), '+FLAGS', '(\\Flagged)')
            c.uid('STORE', str(gone), '+FLAGS', '(\\Deleted)')
            c.uid('EXPUNGE', str(gone))
        names = s.message_names(USER, FOLDER)
        self.assertNotIn(gone, names)
        time.sleep(REFRESH + 1.2)
        s.clear_rawlog(USER)
        self.assertEqual(set(os.listdir(m.p(FOLDER))), set(names.values()))
        sent, commands = self.listing_bytes()
        self.assertIn('\\Flagged', getflags(m.p(FOLDER, names[flagged])))
        self.assertNotIn('\\Flagged',
                         getflags(m.p(FOLDER, names[self.uids[6]])))
        self.assertTrue(os.path.exists(m.p(FOLDER, names[new])))
        full = [c for c in commands if 'FETCH 1:*' in c and
                'RFC822.SIZE' in c]
        self.assertEqual(full, [], 'a full relisting was sent')
        if os.environ.get('RESYNC_TRACE'):
            print(type(self).__name__, sent, commands)
        self.assertLess(sent, self.budget, commands)

    def test_unchanged_folder_costs_little(self):
        s = self.server
        m = self.mount()
        before = set(os.listdir(m.p(FOLDER)))
        time.sleep(REFRESH + 1.2)
        s.clear_rawlog(USER)
        self.assertEqual(set(os.listdir(m.p(FOLDER))), before)
        sent, commands = self.listing_bytes()
        self.assertLess(sent, self.budget, commands)

    def test_uidvalidity_change_drops_the_folder_state(self):
        s = self.server
        s.create_folder(USER, 'Swap')
        s.append_many(USER, 'Swap', [corpus.text_message(i)
                                     for i in range(3)])
        m = self.mount()
        self.assertEqual(len(os.listdir(m.p('Swap'))), 3)
        with s.imap(USER) as c:
            c.delete('Swap')
        s.create_folder(USER, 'Swap')
        s.append_many(USER, 'Swap', [corpus.text_message(i)
                                     for i in range(40, 45)])
        want = set(s.message_names(USER, 'Swap').values())
        time.sleep(REFRESH + 1.2)
        self.assertEqual(set(os.listdir(m.p('Swap'))), want)
        self.assertIn('UIDVALIDITY changed', m.stderr())


class ResyncQresyncTest(ResyncBase):
    """Dovecot as it is: QRESYNC."""

    def test_qresync_is_used(self):
        m = self.mount()
        os.listdir(m.p(FOLDER))
        time.sleep(REFRESH + 1.2)
        self.server.clear_rawlog(USER)
        os.listdir(m.p(FOLDER))
        _, commands = self.listing_bytes()
        self.assertTrue(any('(QRESYNC (' in c for c in commands), commands)


class ResyncCondstoreTest(ResyncBase):
    """CONDSTORE without QRESYNC: CHANGEDSINCE, expunges by UID SEARCH."""
    capability = ('IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE CONDSTORE '
                  'ESEARCH SPECIAL-USE')


class ResyncPlainTest(ResyncBase):
    """Neither: every message's flags (at most 40 bytes a message)."""
    capability = 'IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE SPECIAL-USE'
    budget = 40 * N + 3000


class FolderScopeTest(unittest.TestCase):
    """A read that finds its folder replaced (another UIDVALIDITY: the
    store's failure says its scope is the folder) voids the listing at
    once: with neither push nor a listing due for `refresh` seconds, the
    next look shows the new folder's messages."""

    def setUp(self):
        self.server = MailServer(
            imap_capability='IMAP4rev1 LITERAL+ SASL-IR UIDPLUS MOVE '
                            'CONDSTORE SPECIAL-USE').start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)

    def test_read_in_a_replaced_folder_voids_its_listing(self):
        s = self.server
        s.create_folder(USER, 'Swap')
        s.append_many(USER, 'Swap', [corpus.text_message(i)
                                     for i in range(3)])
        cache = tempfile.mkdtemp(prefix='mailfs-xdg-')
        self.addCleanup(shutil.rmtree, cache, True)
        m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                  s.users[USER], cafile=s.cafile,
                  options=('refresh=3600', 'disk_cache=0'),
                  env={'XDG_CACHE_HOME': cache}, foreground=True)
        self.addCleanup(m.umount)
        m.start()
        old = sorted(os.listdir(m.p('Swap')))
        self.assertEqual(len(old), 3)
        with s.imap(USER) as c:
            c.delete('Swap')
        s.create_folder(USER, 'Swap')
        s.append_many(USER, 'Swap', [corpus.text_message(i)
                                     for i in range(40, 45)])
        want = set(s.message_names(USER, 'Swap').values())
        # The listing is an hour fresh: only the read learns the news.
        self.assertEqual(sorted(os.listdir(m.p('Swap'))), old)
        with self.assertRaises(FileNotFoundError):
            with open(m.p('Swap', old[0]), 'rb') as f:
                f.read()
        self.assertEqual(set(os.listdir(m.p('Swap'))), want)


# The base runs only through its subclasses.
del ResyncBase

if __name__ == '__main__':
    unittest.main()
