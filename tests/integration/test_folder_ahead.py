"""Read-ahead across folders (issue 22): grep -r over an account of many
small folders fetches the bodies of the folders ahead of the reader in
pipelines with the earlier ones, instead of two waits per folder; every
byte is the server's (imaplib's), no body is fetched twice, and a read
elsewhere while the read-ahead runs gets its bytes. Against a real
Dovecot through real FUSE, commands counted in Dovecot's rawlog."""

import os
import re
import subprocess
import threading
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount

USER = 'alice'
NFOLDERS = 60
PER_FOLDER = 4
RTT_MS = 30
WORD = 'invoice'
_BODY = re.compile(r'UID FETCH ([0-9:,]+) \(BODY\.PEEK\[\]<0\.', re.I)


def folder_name(i):
    """Folders a level deep, as accounts have them."""
    return 'Box%d.Sub%02d' % (i // 20, i)


def expand(uid_set):
    """The UIDs of an IMAP UID set such as 1:3,7."""
    out = []
    for part in uid_set.split(','):
        lo, _, hi = part.partition(':')
        out += range(int(lo), int(hi or lo) + 1)
    return out


def body_requests(sessions):
    """[(time, folder, uid)] of every body asked for from byte 0, each
    folder the one the session had examined or selected then."""
    out = []
    for s in sessions:
        selected = None
        for t, c in s.timed_commands:
            if c.upper().startswith(('EXAMINE ', 'SELECT ')):
                selected = c.split(' ', 1)[1].split(' (')[0].strip('"')
            m = _BODY.match(c)
            if m:
                out += [(t, selected, u) for u in expand(m.group(1))]
    return out


def bursts(sessions, gap=RTT_MS / 2000):
    """Commands grouped by arrival: a pipeline arrives within `gap`
    seconds; a new group means the client waited for an answer."""
    groups = []
    for t, c in sorted((t, c) for s in sessions for t, c in s.timed_commands
                       if t is not None):
        if not groups or t - groups[-1][-1][0] > gap:
            groups.append([])
        groups[-1].append((t, c))
    return groups


class FolderAheadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.folders = [folder_name(i) for i in range(NFOLDERS)]
        cls.want = {}
        k = 0
        for f in cls.folders:
            msgs = [corpus.text_message(k + j) for j in range(PER_FOLDER)]
            k += PER_FOLDER
            cls.server.append_many(USER, f, msgs)
            names = cls.server.message_names(USER, f)
            bodies = cls.server.fetch_all(USER, f)
            for uid, name in names.items():
                cls.want[f.replace('.', '/') + '/' + name] = bodies[uid]

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self, rtt_ms):
        proxy = Proxy(self.server.imaps_port, rtt_ms=rtt_ms).start()
        self.addCleanup(proxy.stop)
        m = Mount('imaps://%s@localhost:%d' % (USER, proxy.port),
                  self.server.users[USER], cafile=self.server.cafile)
        self.addCleanup(m.umount)
        return m.start()

    def assert_fetched_once(self, sessions):
        asked = [(f, u) for _, f, u in body_requests(sessions)]
        twice = sorted({x for x in asked if asked.count(x) > 1})
        self.assertEqual(twice, [], 'bodies fetched more than once')

    def test_grep_fetches_later_folders_in_pipelines(self):
        m = self.mount(RTT_MS)
        self.server.clear_rawlog(USER)
        out = subprocess.run(['grep', '-rl', WORD, m.path],
                             capture_output=True, check=False,
                             env=dict(os.environ, LC_ALL='C'))
        self.assertIn(out.returncode, (0, 1), out.stderr)
        sessions = self.server.rawlog_sessions(USER, 'imap')
        hits = sorted(os.path.relpath(p, m.path)
                      for p in out.stdout.decode().split('\n') if p)
        self.assertEqual(hits, sorted(p for p, b in self.want.items()
                                      if WORD.encode() in b))
        # (a) every byte is imaplib's (the grep's pages, or the cache the
        # read-ahead filled).
        for p, b in self.want.items():
            with open(os.path.join(m.path, p), 'rb') as f:
                self.assertEqual(f.read(), b, p)
        # (b) bodies of later folders went in pipelines with earlier
        # ones: one wait brought the bodies of many folders, and the
        # grep waited far less than twice per folder (before: 2.1).
        groups = bursts(sessions)
        widest = max(len({f for t, f, u in body_requests(sessions)
                          if t is not None and g[0][0] <= t <= g[-1][0]})
                     for g in groups)
        self.assertGreaterEqual(widest, 8, 'most folders of one burst')
        self.assertLess(len(groups), NFOLDERS // 3,
                        [c for g in groups for _, c in g][:40])
        # (c) and nothing twice, during the grep or the check after it.
        self.assert_fetched_once(self.server.rawlog_sessions(USER, 'imap'))
        every = {(f, u) for _, f, u in body_requests(
            self.server.rawlog_sessions(USER, 'imap'))}
        self.assertEqual(len(every), len(self.want))

    def test_read_elsewhere_during_read_ahead_gets_its_bytes(self):
        # A long round trip keeps the read-ahead's pipeline in flight
        # while the walker is in its third folder.
        m = self.mount(250)
        self.server.clear_rawlog(USER)
        done = []
        errors = []

        # The walker goes as grep does, in the order directories list
        # their entries.
        order = [d for d, _, files in os.walk(m.path) if files]
        self.assertEqual(len(order), NFOLDERS)

        def walk():
            try:
                for d, _, files in os.walk(m.path):
                    for name in files:
                        p = os.path.join(d, name)
                        with open(p, 'rb') as f:
                            got = f.read()
                        if got != self.want[os.path.relpath(p, m.path)]:
                            errors.append(p)
                    if files:
                        done.append(d)
            except OSError as e:
                errors.append(str(e))

        walker = threading.Thread(target=walk)
        walker.start()
        while len(done) < 3 and walker.is_alive():
            threading.Event().wait(0.01)
        # The 20th folder of the walk is listed (the walk lists folders
        # ahead) and in the read-ahead's batch; the last is beyond it.
        seen = {}
        for d in (order[20], order[-1], order[21]):
            for name in os.listdir(d):
                p = os.path.join(d, name)
                with open(p, 'rb') as f:
                    seen[os.path.relpath(p, m.path)] = f.read()
        walker.join(120)
        self.assertFalse(walker.is_alive())
        self.assertEqual(errors, [])
        self.assertEqual(len(seen), 3 * PER_FOLDER)
        for p, b in seen.items():
            self.assertEqual(b, self.want[p], p)
        self.assert_fetched_once(self.server.rawlog_sessions(USER, 'imap'))


if __name__ == '__main__':
    unittest.main()
