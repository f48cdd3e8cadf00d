"""What the kernel asks mailfs for when tools read cached mail: requests
counted by kind (fuse_requests in user.mail.status), against a real
Dovecot and a real FUSE mount."""

import os
import subprocess
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

USER = 'alice'
N = 300


def requests(m):
    """The fuse_requests counters of the mount's status, by kind."""
    text = os.getxattr(m.path, 'user.mail.status').decode()
    st = dict(l.split('=', 1) for l in text.splitlines())
    return {k: int(v) for k, v in
            (kv.split(':') for kv in st['fuse_requests'].split())}


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) != before.get(k, 0)}


class GrepRequestsTest(unittest.TestCase):
    """A grep -r over cached mail: every listing carries attributes
    (READDIRPLUS, no LOOKUP per file), a read-only close sends no FLUSH,
    and a second pass finds the attributes fresh (no GETATTR per file
    after the first pass's reads)."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        w = cls.server.imap(USER)
        for i in range(N):
            w.append('INBOX', None, None, corpus.text_message(i, size=2000))
        w.logout()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_grep_sends_no_lookup_flush_or_getattr_per_file(self):
        m = Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=['refresh=3600']).start()
        self.addCleanup(m.umount)
        grep = ['grep', '-rl', 'no such text anywhere', m.p('INBOX')]
        before = requests(m)
        self.assertEqual(subprocess.run(grep).returncode, 1)
        first = delta(before, requests(m))
        # every body read once; no name looked up one by one
        self.assertEqual(first.get('READ', 0) >= N, True, first)
        self.assertLess(first.get('LOOKUP', 0), 5, first)
        self.assertEqual(first.get('FLUSH', 0), 0, first)
        for _ in range(2):
            before = requests(m)
            self.assertEqual(subprocess.run(grep).returncode, 1)
            again = delta(before, requests(m))
            self.assertEqual(again.get('READ', 0), 0, again)
            self.assertLess(again.get('GETATTR', 0), 5, again)
            self.assertLess(again.get('LOOKUP', 0), 5, again)
            self.assertEqual(again.get('FLUSH', 0), 0, again)
            # what is left per file: OPEN and RELEASE
            self.assertLessEqual(sum(again.values()), 2 * N + 20, again)


if __name__ == '__main__':
    unittest.main()
