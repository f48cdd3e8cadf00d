"""Walks through many folders (issue 7): find, grep -r and rsync list the
folders ahead of the walk together, so that a walk through N folders costs
far fewer than N round trips, and every folder still shows exactly what
the server has."""

import os
import shutil
import subprocess
import tempfile
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount

USER = 'alice'
NFOLDERS = 60
RTT_MS = 30


def bursts(sessions, gap=RTT_MS / 2000):
    """Groups the commands the mount sent by time: commands written
    together (a pipeline) arrive within `gap` seconds of each other, and a
    new burst means the client waited for an answer first."""
    stamps = sorted(t for s in sessions for t, _ in s.timed_commands
                    if t is not None)
    n, last = 0, None
    for t in stamps:
        if last is None or t - last > gap:
            n += 1
        last = t
    return n


class WalkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.folders = ['F%02d' % i if i % 3 else 'Deep.F%02d' % i
                       for i in range(NFOLDERS)]
        for i, f in enumerate(cls.folders):
            cls.server.append_many(USER, f, [corpus.text_message(100 + i),
                                             corpus.text_message(200 + i)])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self):
        cache = tempfile.mkdtemp(prefix='mailfs-xdg-')
        self.addCleanup(shutil.rmtree, cache, True)
        proxy = Proxy(self.server.imaps_port, rtt_ms=RTT_MS).start()
        self.addCleanup(proxy.stop)
        m = Mount('imaps://%s@localhost:%d' % (USER, proxy.port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=('connections=2',),
                  env={'XDG_CACHE_HOME': cache})
        self.addCleanup(m.umount)
        return m.start()

    def test_find_lists_folders_ahead_in_few_round_trips(self):
        want = []
        for f in self.folders:
            d = f.replace('.', '/')
            want += [d + '/' + n for n in
                     self.server.message_names(USER, f).values()]
        m = self.mount()
        self.server.clear_rawlog(USER)
        out = subprocess.run(['find', m.path, '-type', 'f'],
                             capture_output=True, text=True, check=True)
        files = sorted(os.path.relpath(p, m.path)
                       for p in out.stdout.split())
        self.assertEqual(files, sorted(want))
        sessions = self.server.rawlog_sessions(USER, 'imap')
        examines = [c for s in sessions for c in s.commands
                    if c.startswith('EXAMINE')]
        # Each folder once: the 60, INBOX and Deep (Dovecot makes parents).
        self.assertEqual(len(examines), NFOLDERS + 2)
        self.assertEqual(len(set(examines)), len(examines))
        # One burst (a round trip) per folder without walk listings; a
        # few with them (at RTT_MS, a pipeline arrives within RTT/2).
        n = bursts(sessions)
        if os.environ.get('WALK_TRACE'):
            print('bursts', n)
        self.assertLess(n, NFOLDERS // 4,
                        [c for s in sessions for c in s.timed_commands])


if __name__ == '__main__':
    unittest.main()
