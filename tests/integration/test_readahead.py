"""Read-ahead by what readers read (issue 22), against a real Dovecot
through real FUSE, bytes counted in Dovecot's rawlog (not by mailfs):
`head -c 4096` over a folder of large messages pulls only the heads of
the messages (the read-ahead of a run of short reads fetches heads, and
the first window is sized to the read), while grep -r over folders of
small and middle-sized messages still fetches whole bodies in batches,
and a whole read after a head returns the exact body. The process that
listed a folder to its end starts a scan at its first read there, and
bodies on disk are read by their readers, never fetched ahead."""

import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

USER = 'alice'
KIB = 1024
# Eight large messages, 1 MB to 2 MB: some under FSOPS_PREFETCH_SIZE
# (1 MiB, so a scan used to fetch them whole), some over.
LARGE_SIZES = [1000000, 1900000, 1020000, 1600000, 1040000, 1300000,
               1010000, 1800000]
N_SMALL = 300
N_MID = 24


def message(i, size, word=''):
    """A text message of about `size` bytes whose body varies (random
    letters, so no two heads are alike)."""
    rnd = random.Random(i * 7919 + size)
    head = ('From: sender%d@example.com\r\nTo: alice@example.com\r\n'
            'Subject: message %d %s\r\nMessage-ID: <ra-%d-%d@example.com>\r\n'
            'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n'
            % (i, i, word, i, size)).encode()
    lines = []
    n = len(head)
    while n < size:
        line = ''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz ')
                       for _ in range(76)).encode() + b'\r\n'
        lines.append(line)
        n += len(line)
    return head + b''.join(lines)


def body_fetches(sessions):
    """Client commands that fetch message bodies."""
    return [c for s in sessions for c in s.commands
            if 'FETCH' in c.upper() and 'BODY' in c.upper() and
            'HEADER.FIELDS' not in c.upper()]


class ReadaheadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.server.append_many(USER, 'Large', [
            message(i, s) for i, s in enumerate(LARGE_SIZES)])
        cls.server.append_many(USER, 'Small', [
            message(100 + i, 2000 + 97 * i, 'invoice' if i % 50 == 7
                    else '') for i in range(N_SMALL)])
        cls.server.append_many(USER, 'Mid', [
            message(1000 + i, 100000 + 13000 * i) for i in range(N_MID)])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self, env=None):
        m = Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                  self.server.users[USER], cafile=self.server.cafile,
                  env=env)
        self.addCleanup(m.umount)
        return m.start()

    def files(self, m, folder):
        """The folder's files in UID order, and the bodies imaplib
        fetches for them."""
        names = self.server.message_names(USER, folder)
        bodies = self.server.fetch_all(USER, folder)
        uids = sorted(names)
        return [m.p(folder, names[u]) for u in uids], [bodies[u]
                                                       for u in uids]

    def downloaded(self):
        """Bytes the server sent and body FETCH commands since the last
        clear_rawlog()."""
        sessions = self.server.rawlog_sessions(USER, 'imap')
        return sum(s.bytes_out for s in sessions), body_fetches(sessions)

    def test_head_over_large_messages_pulls_heads(self):
        m = self.mount()
        paths, bodies = self.files(m, 'Large')
        for b, size in zip(bodies, LARGE_SIZES):
            self.assertLess(abs(len(b) - size), 100)
        for p in paths:  # listed, stat'ed: only the reads count below
            os.stat(p)
        self.server.clear_rawlog(USER)
        out = subprocess.run(['head', '-q', '-c', '4096'] + paths,
                             capture_output=True, check=True).stdout
        self.assertEqual(out, b''.join(b[:4096] for b in bodies))
        m.umount()
        down, fetches = self.downloaded()
        per_message = down / len(paths)
        print('\nhead -c 4096: %.1f KiB per message, %d body FETCH'
              % (per_message / KIB, len(fetches)))
        self.assertLessEqual(per_message, 32 * KIB, fetches)
        # The heads ride along: fewer commands than messages (before
        # this change: 6, with whole bodies riding along).
        self.assertLessEqual(len(fetches), 3, fetches)

    def test_cat_after_head_is_whole(self):
        m = self.mount()
        paths, bodies = self.files(m, 'Large')
        out = subprocess.run(['head', '-q', '-c', '4096'] + paths,
                             capture_output=True, check=True).stdout
        self.assertEqual(out, b''.join(b[:4096] for b in bodies))
        # The heads are cached cut: a whole read must still get every
        # byte, from the start, in the middle and at the end.
        for p, want in zip(paths, bodies):
            with open(p, 'rb') as f:
                self.assertEqual(f.read(), want, p)
        with open(paths[2], 'rb') as f:
            f.seek(5000)
            self.assertEqual(f.read(70000), bodies[2][5000:75000])

    def test_heads_on_disk_never_whole(self):
        # The disk cache, kept across mounts, must not take a head for
        # the whole message either.
        cache = tempfile.mkdtemp(prefix='mailfs-xdg-')
        self.addCleanup(shutil.rmtree, cache, True)
        env = {'XDG_CACHE_HOME': cache}
        m = self.mount(env)
        paths, bodies = self.files(m, 'Large')
        subprocess.run(['head', '-q', '-c', '4096'] + paths,
                       capture_output=True, check=True)
        m.umount()
        m = self.mount(env)
        paths, _ = self.files(m, 'Large')
        for p, want in zip(paths, bodies):
            with open(p, 'rb') as f:
                self.assertEqual(f.read(), want, p)

    def test_head_then_cat_same_file(self):
        m = self.mount()
        paths, bodies = self.files(m, 'Large')
        for p, want in zip(paths[:3], bodies[:3]):
            out = subprocess.run(['head', '-c', '4096', p],
                                 capture_output=True, check=True).stdout
            self.assertEqual(out, want[:4096])
            out = subprocess.run(['cat', p], capture_output=True,
                                 check=True).stdout
            self.assertEqual(out, want, p)

    def grep_scan(self, folder, bound):
        """grep -rl over folder: the right files, whole bodies fetched in
        at most `bound` FETCH commands."""
        m = self.mount()
        paths, bodies = self.files(m, folder)
        for p in paths:
            os.stat(p)
        self.server.clear_rawlog(USER)
        out = subprocess.run(['grep', '-rl', 'invoice', m.p(folder)],
                             capture_output=True, text=True).stdout
        want = sorted(p for p, b in zip(paths, bodies) if b'invoice' in b)
        self.assertEqual(sorted(out.split()), want)
        m.umount()
        down, fetches = self.downloaded()
        print('\ngrep -rl %s: %d body FETCH, %.1f KiB for %.1f KiB'
              % (folder, len(fetches), down / KIB,
                 sum(map(len, bodies)) / KIB))
        self.assertGreaterEqual(down, sum(map(len, bodies)))
        self.assertLessEqual(len(fetches), bound, fetches)

    def test_grep_small_fetches_whole_bodies_in_batches(self):
        # Before this change: 3 body FETCH commands.
        self.grep_scan('Small', 3)

    def test_grep_mid_fetches_whole_bodies_in_batches(self):
        # Before this change: 3 body FETCH commands.
        self.grep_scan('Mid', 3)

    def first_body_fetch_uids(self):
        """How many UIDs the first body FETCH since clear_rawlog() named."""
        _, fetches = self.downloaded()
        self.assertTrue(fetches)
        uids = fetches[0].split()[2]
        n = 0
        for part in uids.split(','):
            lo, _, hi = part.partition(':')
            n += int(hi) - int(lo) + 1 if hi else 1
        return n

    def test_lister_first_read_brings_the_next_along(self):
        # grep -r, tar, cp -r: the process that listed the folder to its
        # end reads its first message: the next ones come along at once.
        m = self.mount()
        paths, bodies = self.files(m, 'Small')
        self.server.clear_rawlog(USER)
        code = ('import os, sys\n'
                'os.listdir(sys.argv[1])\n'
                'sys.stdout.buffer.write(open(sys.argv[2], "rb").read())\n')
        out = subprocess.run(['python3', '-c', code, m.p('Small'), paths[0]],
                             capture_output=True, check=True).stdout
        self.assertEqual(out, bodies[0])
        self.assertGreater(self.first_body_fetch_uids(), 1)
        m.umount()
        # Another process reading after an ls: only what it reads.
        m = self.mount()
        paths, bodies = self.files(m, 'Small')
        subprocess.run(['ls', m.p('Small')], capture_output=True, check=True)
        self.server.clear_rawlog(USER)
        out = subprocess.run(['cat', paths[0]], capture_output=True,
                             check=True).stdout
        self.assertEqual(out, bodies[0])
        self.assertEqual(self.first_body_fetch_uids(), 1)

    def remount_warm(self):
        """A mount of its own cache whose grep of Small fetched every
        body ahead (to disk), then a second mount of that cache, the
        rawlog cleared; (the second mount, Small's paths and bodies)."""
        cache = tempfile.mkdtemp(prefix='mailfs-xdg-')
        self.addCleanup(shutil.rmtree, cache, True)
        env = {'XDG_CACHE_HOME': cache}
        m = self.mount(env)
        paths, bodies = self.files(m, 'Small')
        subprocess.run(['grep', '-rl', 'invoice', m.p('Small')],
                       capture_output=True, check=True)
        self.assertGreater(int(m.status()['messages_prefetched']), 0)
        m.umount()
        m = self.mount(env)
        self.server.clear_rawlog(USER)
        return m, paths, bodies

    def test_remount_reads_bodies_on_disk_without_read_ahead(self):
        # After a remount the bodies are on disk: each reader reads its
        # own, at once; nothing is fetched ahead (the read-ahead thread
        # would only hand over what the reader reads as fast itself).
        m, paths, bodies = self.remount_warm()
        out = subprocess.run(['grep', '-rl', 'invoice', m.p('Small')],
                             capture_output=True, text=True).stdout
        want = sorted(p for p, b in zip(paths, bodies) if b'invoice' in b)
        self.assertEqual(sorted(out.split()),
                         [m.p('Small', os.path.basename(p)) for p in want])
        self.assertEqual(int(m.status()['messages_prefetched']), 0)
        m.umount()
        self.assertEqual(self.downloaded()[1], [])

    def wait_pushed(self, m, at_least, still=1.0):
        """Waits (20 s at most) until the mount put at least at_least
        bodies into the page cache and then no more for `still` seconds;
        returns how many."""
        deadline = time.monotonic() + 20
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = int(m.status()['messages_pushed'])
            if n != last:
                last, since = n, time.monotonic()
            elif n >= at_least and time.monotonic() - since >= still:
                return n
            time.sleep(0.05)
        self.fail('%d bodies put into the page cache, %d wanted\n%s' %
                  (last, at_least, m.stderr()))

    def scan_start(self, m, folder, paths, bodies):
        """Lists folder and reads its first message, in this process: the
        start of a scan."""
        os.listdir(m.p(folder))
        with open(m.p(folder, os.path.basename(paths[0])), 'rb') as f:
            self.assertEqual(f.read(), bodies[0])

    def read_rest(self, m, folder, paths, bodies):
        """Reads every other message, checking its bytes against
        imaplib's; the READ requests that took."""
        before = m.requests()
        for p, b in zip(paths[1:], bodies[1:]):
            with open(m.p(folder, os.path.basename(p)), 'rb') as f:
                self.assertEqual(f.read(), b, p)
        after = m.requests()
        self.last_delta = {k: v - before.get(k, 0) for k, v in after.items()
                           if v != before.get(k, 0)}
        return after.get('READ', 0) - before.get('READ', 0)

    def test_remount_scan_reads_pages_put_ahead_from_disk(self):
        # After a remount a scan's bodies are on disk: the mount puts
        # them into the kernel's page cache ahead of the reader, which
        # then reads them with (almost) no READ.
        m, paths, bodies = self.remount_warm()
        self.scan_start(m, 'Small', paths, bodies)
        self.wait_pushed(m, len(paths) - 1)
        # None at all, but for a last page the kernel dropped now and
        # then under load (a READ serves it as before).
        self.assertLessEqual(self.read_rest(m, 'Small', paths, bodies),
                             len(paths) // 20, self.last_delta)
        m.umount()
        self.assertEqual(self.downloaded()[1], [])

    def test_scan_puts_bodies_fetched_ahead_into_page_cache(self):
        # On a fresh mount the bodies the read-ahead fetches go into the
        # page cache as they arrive: the reader reads those with no
        # READ; only the few that rode along with its first read (not
        # pushed) need one each.
        m = self.mount()
        paths, bodies = self.files(m, 'Small')
        self.scan_start(m, 'Small', paths, bodies)
        pushed = self.wait_pushed(m, len(paths) // 2)
        reads = self.read_rest(m, 'Small', paths, bodies)
        self.assertLessEqual(reads, len(paths) - 1 - pushed + len(paths) // 20,
                             m.requests())


if __name__ == '__main__':
    unittest.main()
