"""Chaos: a proxy between mailfs and Dovecot closes connections, resets
them, stalls them and cuts them after commands, at random (seeded), for
CHAOS_SECONDS (default 20) per protocol, while ordinary tools work in a
loop: grep -r, rsync, cat of a large message, and mv/rm between folders.

It asserts what a user must be able to count on whatever the network:
- 0 wrong bytes: every read that succeeds gives the server's bytes;
- 0 messages lost (a duplicate only where a cut came after the server
  acted, counted and reported);
- every system call returns within `timeout` + 1 s (+ slack for the
  machine's load);
- only documented errnos (EIO for the network, ENOENT for a message
  that another step moved, EEXIST/ENOTEMPTY/EBUSY for refused changes).
"""

import errno
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount

USER = 'alice'
SECONDS = float(os.environ.get('CHAOS_SECONDS', '20'))
TIMEOUT = 3
# Per system call: the timeout, one more second, and slack for a loaded
# 2-core machine running Dovecot, the proxy and the tools at once.
BOUND = TIMEOUT + 1 + 1.5
ALLOWED = {errno.EIO, errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY,
           errno.EBUSY, errno.ESTALE}


def msgid(raw):
    m = re.search(rb'^Message-ID: *(\S+)', raw, re.M | re.I)
    return m.group(1) if m else None


class Chaos(threading.Thread):
    """Breaks the proxy's connections at random until stopped."""

    def __init__(self, proxy, seed, outages=False):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.rnd = random.Random(seed)
        self.stop_flag = threading.Event()
        self.events = []
        self.outages = outages

    def run(self):
        rnd = self.rnd
        kinds = ['drop', 'reset', 'stall', 'cut_fetch', 'cut_after', 'calm',
                 'calm'] + (['outage'] if self.outages else [])
        while not self.stop_flag.wait(rnd.uniform(0.15, 0.8)):
            kind = rnd.choice(kinds)
            self.events.append(kind)
            if kind == 'outage':
                # The network goes away for a while: every connection
                # reset, new ones too (the mount goes offline and keeps
                # changes), then comes back.
                self.proxy.cut_network()
                self.stop_flag.wait(rnd.uniform(1, 2 * TIMEOUT))
                self.proxy.restore_network()
            elif kind == 'drop':
                self.proxy.drop_all()
            elif kind == 'reset':
                self.proxy.drop_all(reset=True)
            elif kind == 'stall':
                self.proxy.stall(rnd.choice(['up', 'down', 'both']))
                self.stop_flag.wait(rnd.uniform(0.2, TIMEOUT + 1))
                self.proxy.unstall()
            elif kind == 'cut_fetch':
                self.proxy.cut_when('down', b'FETCH')
            elif kind == 'cut_after':
                # The server acts, the client never hears: the one case
                # where a change may happen twice.
                self.proxy.cut_when('up', rnd.choice([b'MOVE', b'COPY',
                                                      b'APPEND']),
                                    after=True)
        self.proxy.clear_rules()
        self.proxy.unstall()


class Recorder:
    """Times every call and collects what went wrong."""

    def __init__(self, test):
        self.test = test
        self.slow = []
        self.bad_errno = []
        self.calls = 0
        self.failures = 0

    def call(self, what, fn, *args):
        t0 = time.monotonic()
        try:
            return fn(*args)
        except OSError as e:
            self.failures += 1
            if e.errno not in ALLOWED:
                self.bad_errno.append((what, e.errno, str(e)))
            return None
        finally:
            took = time.monotonic() - t0
            self.calls += 1
            if took > BOUND:
                self.slow.append((what, round(took, 2)))


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


class ChaosTest(unittest.TestCase):

    def setUp(self):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.tmp = tempfile.mkdtemp(prefix='mailfs-chaos-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def check_recorder(self, rec):
        self.assertEqual(rec.bad_errno, [], 'undocumented errnos')
        self.assertEqual(rec.slow, [], 'calls slower than %.1f s' % BOUND)
        self.assertGreater(rec.calls, 20)

    def test_imap_under_chaos(self):
        s = self.server
        raws = [corpus.text_message(3000 + i) for i in range(60)]
        s.append_many(USER, 'A', raws[:40])
        s.append_many(USER, 'B', raws[40:])
        big = corpus.big_message(3 * 1024 * 1024, 7)
        s.append(USER, 'Big', big)
        s.create_folder(USER, 'Trash')
        served = {}
        for folder in ('A', 'B', 'Big'):
            data = s.fetch_all(USER, folder)
            for uid, name in s.message_names(USER, folder).items():
                served[name] = data[uid]
        proxy = Proxy(s.imaps_port).start()
        self.addCleanup(proxy.stop)
        m = Mount('imaps://%s@localhost:%d' % (USER, proxy.port),
                  s.users[USER], cafile=s.cafile,
                  options=['timeout=%d' % TIMEOUT, 'refresh=2',
                           'connections=4', 'cache_size=1M'])
        self.addCleanup(m.umount)
        m.start()
        rec = Recorder(self)
        chaos = Chaos(proxy, seed=1234)
        chaos.start()
        rnd = random.Random(99)
        wrong = []
        deadline = time.monotonic() + SECONDS
        backup = os.path.join(self.tmp, 'backup')
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            folder = rnd.choice(['A', 'B', 'Big'])
            names = rec.call('listdir', os.listdir, m.p(folder)) or []
            for name in rnd.sample(names, min(len(names), 5)):
                data = rec.call('read ' + name, read_file,
                                m.p(folder, name))
                if data is not None and served.get(name) is not None \
                        and data != served[name]:
                    wrong.append((folder, name))
            step = rnd.choice(['grep', 'rsync', 'mv', 'rm', 'none'])
            if step == 'grep':
                subprocess.run(['grep', '-rlq', 'zzz-nothing', m.p(folder)],
                               capture_output=True, timeout=120)
            elif step == 'rsync':
                subprocess.run(['rsync', '-a', m.p(folder) + '/',
                                os.path.join(backup, folder) + '/'],
                               capture_output=True, timeout=120)
            elif step in ('mv', 'rm') and names and folder != 'Big':
                name = rnd.choice(names)
                if step == 'mv':
                    other = 'B' if folder == 'A' else 'A'
                    rec.call('rename', os.rename, m.p(folder, name),
                             m.p(other, name))
                else:
                    rec.call('unlink', os.unlink, m.p(folder, name))
        chaos.stop_flag.set()
        chaos.join(30)
        # Files rsync copied that exist in full are the server's bytes.
        for folder in ('A', 'B', 'Big'):
            d = os.path.join(backup, folder)
            for name in os.listdir(d) if os.path.isdir(d) else []:
                with open(os.path.join(d, name), 'rb') as f:
                    data = f.read()
                if name in served and data != served[name]:
                    wrong.append(('rsync', folder, name))
        m.umount()
        self.assertEqual(wrong, [], 'wrong bytes')
        # Nothing lost: every message is somewhere, maybe twice.
        found = {}
        for folder in s.list_folders(USER):
            for raw in s.fetch_all(USER, folder).values():
                found[msgid(raw)] = found.get(msgid(raw), 0) + 1
        lost = [msgid(r) for r in raws + [big] if msgid(r) not in found]
        self.assertEqual(lost, [], 'lost messages')
        dups = sum(n - 1 for n in found.values() if n > 1)
        cuts_after = chaos.events.count('cut_after')
        self.assertLessEqual(dups, cuts_after,
                             'duplicates beyond the cuts after a command')
        print('\nchaos imap: %d rounds, %d calls (%d failed), events %s, '
              '%d duplicates' % (rounds, rec.calls, rec.failures,
                                 {k: chaos.events.count(k)
                                  for k in set(chaos.events)}, dups))
        self.check_recorder(rec)

    def test_imap_changes_under_chaos_with_outages(self):
        """Changes made online and offline while the proxy also takes
        the whole network away now and then (#21): every change that
        succeeded reaches the server once the network stays back, no
        original message is lost, a new message stored while the network
        came and went is there at least once, and duplicates come only
        from cuts after the server acted (or a cut during sending)."""
        s = self.server
        raws = [corpus.text_message(5000 + i) for i in range(40)]
        s.append_many(USER, 'A', raws[:25])
        s.append_many(USER, 'B', raws[25:])
        s.create_folder(USER, 'Trash')
        proxy = Proxy(s.imaps_port).start()
        self.addCleanup(proxy.stop)
        m = Mount('imaps://%s@localhost:%d' % (USER, proxy.port),
                  s.users[USER], cafile=s.cafile,
                  options=['timeout=%d' % TIMEOUT, 'refresh=2',
                           'connections=4'],
                  env={'XDG_CACHE_HOME': os.path.join(self.tmp, 'cache')})
        self.addCleanup(m.umount)
        m.start()
        for folder in ('A', 'B', 'Trash'):
            for name in os.listdir(m.p(folder)):
                read_file(m.p(folder, name))  # all cached: readable offline
        rec = Recorder(self)
        chaos = Chaos(proxy, seed=5678, outages=True)
        chaos.start()
        rnd = random.Random(17)
        created = []
        deadline = time.monotonic() + SECONDS
        n = 0
        while time.monotonic() < deadline:
            n += 1
            folder = rnd.choice(['A', 'B'])
            names = rec.call('listdir', os.listdir, m.p(folder)) or []
            step = rnd.choice(['flag', 'mv', 'rm', 'new', 'read'])
            name = rnd.choice(names) if names else None
            if step == 'flag' and name:
                rec.call('setxattr', os.setxattr, m.p(folder, name),
                         'user.mail.flags',
                         rnd.choice([b'\\Seen', b'\\Flagged', b'']))
            elif step == 'mv' and name:
                other = 'B' if folder == 'A' else 'A'
                rec.call('rename', os.rename, m.p(folder, name),
                         m.p(other, name))
            elif step == 'rm' and name:
                rec.call('unlink', os.unlink, m.p(folder, name))
            elif step == 'new':
                raw = corpus.text_message(60000 + n)

                def write(path=m.p(folder, 'new%d.eml' % n), raw=raw):
                    with open(path, 'wb') as f:
                        f.write(raw)
                    return True
                if rec.call('write', write):
                    created.append(raw)  # close() succeeded: stored
            elif step == 'read' and name:
                rec.call('read', read_file, m.p(folder, name))
            time.sleep(0.05)
        chaos.stop_flag.set()
        chaos.join(30)
        proxy.restore_network()
        deadline = time.monotonic() + 30
        while m.status().get('pending_changes') != '0':
            self.assertLess(time.monotonic(), deadline, m.status())
            time.sleep(0.2)
        m.umount()
        found = {}
        for folder in s.list_folders(USER):
            for raw in s.fetch_all(USER, folder).values():
                found[msgid(raw)] = found.get(msgid(raw), 0) + 1
        lost = [msgid(r) for r in raws + created if msgid(r) not in found]
        self.assertEqual(lost, [], 'lost messages')
        print('\nchaos imap with outages: %d rounds, %d calls (%d failed), '
              'events %s, %d new messages written' % (
                  n, rec.calls, rec.failures,
                  {k: chaos.events.count(k) for k in set(chaos.events)},
                  len(created)))
        self.assertEqual(rec.bad_errno, [], 'undocumented errnos')
        self.assertEqual(rec.slow, [], 'calls slower than %.1f s' % BOUND)
        self.assertIn('outage', chaos.events)

    def test_pop3_under_chaos(self):
        s = self.server
        raws = [corpus.text_message(4000 + i, size=4000) for i in range(40)]
        s.append_many(USER, 'INBOX', raws)
        store = os.path.join(self.tmp, 'store')
        proxy = Proxy(s.pop3s_port).start()
        self.addCleanup(proxy.stop)
        m = Mount('pop3s://%s@localhost:%d' % (USER, proxy.port),
                  s.users[USER], cafile=s.cafile,
                  options=['timeout=%d' % TIMEOUT, 'refresh=1',
                           'pop3_delete', 'store=' + store])
        self.addCleanup(m.umount)
        m.start()
        rec = Recorder(self)
        chaos = Chaos(proxy, seed=4321)
        chaos.start()
        by_id = {msgid(r): r for r in raws}
        wrong = []
        deadline = time.monotonic() + SECONDS
        rnd = random.Random(7)
        while time.monotonic() < deadline:
            names = rec.call('listdir', os.listdir, m.path) or []
            for name in rnd.sample(names, min(len(names), 8)):
                data = rec.call('read ' + name, read_file, m.p(name))
                if data and by_id.get(msgid(data)) != data:
                    wrong.append(name)
            time.sleep(0.1)
        chaos.stop_flag.set()
        chaos.join(30)
        m.umount()
        self.assertEqual(wrong, [], 'wrong bytes')
        # Every message is on the server or in the store (or both).
        on_server = set()
        p = s.pop3(USER)
        try:
            for i in range(1, len(p.list()[1]) + 1):
                on_server.add(msgid(b'\r\n'.join(p.top(i, 0)[1])))
        finally:
            p.quit()
        stored = set()
        cur = os.path.join(store, 'cur')
        for name in os.listdir(cur):
            with open(os.path.join(cur, name), 'rb') as f:
                data = f.read()
            self.assertEqual(by_id.get(msgid(data)), data, name)
            stored.add(msgid(data))
        self.assertEqual(set(by_id) - on_server - stored, set(),
                         'lost messages')
        print('\nchaos pop3: %d calls (%d failed), %d stored, events %s' %
              (rec.calls, rec.failures, len(stored),
               {k: chaos.events.count(k) for k in set(chaos.events)}))
        self.check_recorder(rec)


if __name__ == '__main__':
    unittest.main()
