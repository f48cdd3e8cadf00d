"""The low-level FUSE glue (fsll): listed messages cost no stored node,
and node ids stay right through renames, removals of open files, pushes
and relistings. Real Dovecot, real FUSE, real tools."""

import errno
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
N = 600


def status(m):
    """The root's user.mail.status as a dict."""
    text = os.getxattr(m.path, 'user.mail.status').decode()
    return dict(line.split('=', 1) for line in text.splitlines() if line)


class NodeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.server.create_folder(USER, 'Many')
        cls.server.create_folder(USER, 'Other')
        cls.server.append_many(USER, 'Many', [
            corpus.text_message(i, size=600) for i in range(N)])
        cls.password = cls.server.users[USER]
        cls.url = 'imaps://%s@localhost:%d' % (USER, cls.server.imaps_port)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self, *options):
        m = Mount(self.url, self.password, cafile=self.server.cafile,
                  options=options)
        self.addCleanup(m.umount)
        return m.start()

    def test_listing_stores_no_node_per_message(self):
        """ls -l and a stat of every message leave the stored nodes at a
        handful (folders), not one per message."""
        m = self.mount()
        before = int(status(m)['fuse_nodes'])
        out = subprocess.run(['ls', '-l', m.p('Many')], check=True,
                             capture_output=True, text=True).stdout
        self.assertEqual(len(out.splitlines()), N + 1)  # "total" line
        names = os.listdir(m.p('Many'))
        for n in names:
            os.stat(os.path.join(m.p('Many'), n))
        nodes = int(status(m)['fuse_nodes'])
        self.assertLess(nodes - before, 10, nodes)
        # and every file reads the server's bytes
        served = sorted(self.server.fetch_all(USER, 'Many').values())
        got = []
        for n in names:
            with open(os.path.join(m.p('Many'), n), 'rb') as f:
                got.append(f.read())
        self.assertEqual(sorted(got), served)

    def test_moved_message_is_found_under_its_new_name_at_once(self):
        """mv keeps the kernel's inode under the new name: stat and read
        through it work right after the move."""
        raw = corpus.text_message(9001, size=500)
        self.server.append(USER, 'Many', raw)
        m = self.mount()
        src = [n for n in os.listdir(m.p('Many'))]
        name = None
        for n in src:
            with open(os.path.join(m.p('Many'), n), 'rb') as f:
                if f.read() == corpus.dovecot_view(raw):
                    name = n
                    break
        self.assertIsNotNone(name)
        os.stat(os.path.join(m.p('Many'), name))  # the kernel holds it
        dst = os.path.join(m.p('Other'), name)
        os.rename(os.path.join(m.p('Many'), name), dst)
        st = os.stat(dst)
        self.assertTrue(st.st_size > 0)
        with open(dst, 'rb') as f:
            self.assertEqual(f.read(), corpus.dovecot_view(raw))
        self.assertFalse(os.path.exists(os.path.join(m.p('Many'), name)))

    def test_open_message_reads_after_rm(self):
        """A message removed while open keeps reading (the node id of a
        listed message is no stored node: its path is gone)."""
        raw = corpus.text_message(9002, size=40000)
        self.server.append(USER, 'Other', raw)
        m = self.mount('delete=expunge')
        want = corpus.dovecot_view(raw)
        path = None
        for n in os.listdir(m.p('Other')):
            p = os.path.join(m.p('Other'), n)
            with open(p, 'rb') as f:
                if f.read() == want:
                    path = p
        self.assertIsNotNone(path)
        with open(path, 'rb') as f:
            head = f.read(100)
            os.unlink(path)
            # fstat comes without the open file (the kernel does not
            # say which): ESTALE, as libfuse's high-level API answered
            with self.assertRaises(OSError) as e:
                os.fstat(f.fileno())
            self.assertEqual(e.exception.errno, errno.ESTALE)
            rest = f.read()
        self.assertEqual(head + rest, want)
        self.assertFalse(os.path.exists(path))

    def test_change_by_another_client_shows_through_cached_inodes(self):
        """A flag set by another client shows in getfattr of a message
        the kernel already holds, and a copy with tar and rsync sees
        every message (node ids resolved after the folder's relisting)."""
        m = self.mount('refresh=1')
        names = sorted(os.listdir(m.p('Many')))
        first = os.path.join(m.p('Many'), names[0])
        self.assertNotIn(b'\\Flagged',
                         os.getxattr(first, 'user.mail.flags'))
        names_by_uid = self.server.message_names(USER, 'Many')
        uid = [u for u, n in names_by_uid.items() if n == names[0]][0]
        c = self.server.imap(USER)
        try:
            c.select('Many')
            c.uid('STORE', str(uid), '+FLAGS', '(\\Flagged)')
        finally:
            c.logout()
        deadline = time.time() + 5
        while time.time() < deadline:
            flags = os.getxattr(first, 'user.mail.flags')
            if b'\\Flagged' in flags:
                break
            time.sleep(0.2)
        self.assertIn(b'\\Flagged', flags)
        out = tempfile.mkdtemp(prefix='mailfs-nodes-')
        self.addCleanup(shutil.rmtree, out, True)
        subprocess.run(['rsync', '-a', m.p('Many') + '/', out + '/'],
                       check=True)
        self.assertEqual(len(os.listdir(out)), len(names))


if __name__ == '__main__':
    unittest.main()
