"""A message moved through the mount keeps its cached body: mv to another
folder, rm to Trash, with UID MOVE and with COPY + EXPUNGE (MOVE hidden),
in the same mount (memory cache) and after a remount (disk cache). The
bytes the server sends are counted by a TCP proxy, not by mailfs; every
file is compared with what the harness's own IMAP client fetches for its new UID."""

import os
import shutil
import sys
import tempfile
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount
from tests.integration.test_writeback import CAPS_NO_MOVE

USER = 'alice'
N = 100
SIZE = 6500  # 100 messages, about 650 KB
SLACK = 32 * 1024  # listing the target folder, flags, IDLE and the like


class RekeyTest(unittest.TestCase):
    """A fresh server per test: the tests move mail."""
    capability = None

    def setUp(self):
        self.server = MailServer(imap_capability=self.capability,
                                 pop3=False).start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        for f in ('Src', 'Dst'):
            self.server.create_folder(USER, f)
        self.server.append_many(USER, 'Src', [
            corpus.text_message(i, size=SIZE) for i in range(N)])
        self.cache = tempfile.mkdtemp(prefix='mailfs-rekey-')
        self.addCleanup(shutil.rmtree, self.cache, True)
        self.proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(self.proxy.stop)

    def mount(self, *options):
        m = Mount('imaps://%s@localhost:%d' % (USER, self.proxy.port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=options, env={'XDG_CACHE_HOME': self.cache})
        self.addCleanup(m.umount)
        return m.start()

    @staticmethod
    def read_all(m, folder):
        """{name: bytes} of every message file of folder in the mount."""
        out = {}
        for name in sorted(os.listdir(m.p(folder))):
            with open(m.p(folder, name), 'rb') as f:
                out[name] = f.read()
        return out

    def check_files(self, m, folder, files):
        """Every file holds exactly what the harness's client fetches for its UID;
        returns the total size of the messages."""
        bodies = self.server.fetch_all(USER, folder)
        self.assertEqual(len(files), N)
        self.assertEqual(len(bodies), N)
        for name, data in files.items():
            uid = int(os.getxattr(m.p(folder, name), 'user.mail.uid'))
            self.assertEqual(data, bodies[uid], '%s/%s' % (folder, name))
        return sum(len(b) for b in bodies.values())

    def assert_cheap(self, what, fetched, total):
        """At most 5% of the messages' size (+ SLACK) came down."""
        print('\n%s %s: %d bytes from the server for %d bytes of mail'
              % (type(self).__name__, what, fetched, total),
              file=sys.stderr)
        self.assertLessEqual(fetched, total * 5 // 100 + SLACK,
                             '%s: %d bytes fetched again for %d bytes of '
                             'moved mail' % (what, fetched, total))

    def cache_and_move(self, m, move):
        """Reads every message of Src (caching it), then moves each with
        move(m, name)."""
        self.assertEqual(len(self.read_all(m, 'Src')), N)
        for name in os.listdir(m.p('Src')):
            move(m, name)
        self.assertEqual(os.listdir(m.p('Src')), [])

    @staticmethod
    def mv(m, name):
        os.rename(m.p('Src', name), m.p('Dst', name))

    def test_mv_then_read(self):
        m = self.mount()
        self.cache_and_move(m, self.mv)
        before = self.proxy.bytes_down
        files = self.read_all(m, 'Dst')
        fetched = self.proxy.bytes_down - before
        self.assert_cheap('mv', fetched, self.check_files(m, 'Dst', files))

    def test_mv_then_read_without_disk_cache(self):
        """The memory cache alone (disk_cache=0) keeps the bodies too."""
        m = self.mount('disk_cache=0')
        self.cache_and_move(m, self.mv)
        before = self.proxy.bytes_down
        files = self.read_all(m, 'Dst')
        fetched = self.proxy.bytes_down - before
        self.assert_cheap('mv (memory only)', fetched,
                          self.check_files(m, 'Dst', files))

    def test_mv_then_remount_and_read(self):
        m = self.mount()
        self.cache_and_move(m, self.mv)
        m.umount()
        m = self.mount()
        before = self.proxy.bytes_down
        files = self.read_all(m, 'Dst')
        fetched = self.proxy.bytes_down - before
        self.assert_cheap('mv + remount', fetched,
                          self.check_files(m, 'Dst', files))

    def test_rm_to_trash_then_read(self):
        m = self.mount()
        self.cache_and_move(m, lambda m, name: os.unlink(m.p('Src', name)))
        before = self.proxy.bytes_down
        files = self.read_all(m, 'Trash')
        fetched = self.proxy.bytes_down - before
        self.assert_cheap('rm', fetched, self.check_files(m, 'Trash', files))
        m.umount()
        m = self.mount()
        before = self.proxy.bytes_down
        files = self.read_all(m, 'Trash')
        fetched = self.proxy.bytes_down - before
        self.assert_cheap('rm + remount', fetched,
                          self.check_files(m, 'Trash', files))


class RekeyWithoutMoveTest(RekeyTest):
    """MOVE hidden: mailfs moves with UID COPY (its COPYUID), then STORE
    \\Deleted and UID EXPUNGE."""
    capability = CAPS_NO_MOVE


if __name__ == '__main__':
    unittest.main()
