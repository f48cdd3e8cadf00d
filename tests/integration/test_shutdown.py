"""Stopping mailfs: Ctrl-C (SIGINT) of `mailfs -f`, or fusermount3 -u of a
daemonized mount, ends the process within a second, whatever it was
waiting for on the server (the push session's IDLE, a read in flight, the
LOGOUT of each session), over a fast link or one with a 500 ms round
trip, and the mount point is free again."""

import os
import signal
import subprocess
import threading
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount, is_mounted

USER = 'alice'
FOLDER = 'Box'
# What a person calls "at once" after Ctrl-C; mailfs takes about 0.1 s.
EXIT_BOUND = 1.5


def alive(pid):
    """True while pid runs: a zombie (exited, not yet reaped by init, which
    may take a second here) counts as gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != 'Z'


class ShutdownTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.create_folder(USER, FOLDER)
        cls.server.append_many(USER, FOLDER,
                               [corpus.text_message(i) for i in range(20)])
        cls.server.append_many(USER, 'INBOX', [
            corpus.big_message(6 * 1024 * 1024, i=1),
            corpus.text_message(100), corpus.text_message(101)])

    def mount(self, rtt_ms=None, foreground=True):
        port = self.server.imaps_port
        if rtt_ms is not None:
            proxy = Proxy(port, rtt_ms=rtt_ms).start()
            self.addCleanup(proxy.stop)
            port = proxy.port
        self.server.clear_rawlog(USER)
        m = Mount('imaps://%s@localhost:%d' % (USER, port),
                  self.server.users[USER], cafile=self.server.cafile,
                  foreground=foreground, timeout=30)
        self.addCleanup(m.umount)
        return m.start()

    def use(self, m):
        """Lists two folders and reads a few small messages (the big one
        is left for test_sigint_during_a_read_over_a_slow_link), then
        waits until the push session idles, so that every kind of session
        is open."""
        for folder in ('INBOX', FOLDER):
            names = [n for n in sorted(os.listdir(m.p(folder)))
                     if os.stat(m.p(folder, n)).st_size < 1024 * 1024]
            for n in names[:3]:
                with open(m.p(folder, n), 'rb') as f:
                    self.assertTrue(f.read())
        deadline = time.monotonic() + 20
        while not any('IDLE' in c.upper()
                      for s in self.server.rawlog_sessions(USER)
                      for c in s.commands):
            self.assertLess(time.monotonic(), deadline, m.stderr())
            time.sleep(0.1)

    def big_name(self, m):
        return max(os.listdir(m.p('INBOX')),
                   key=lambda n: os.stat(m.p('INBOX', n)).st_size)

    def assert_sigint_exits_at_once(self, m):
        t0 = time.monotonic()
        m.proc.send_signal(signal.SIGINT)
        try:
            rc = m.proc.wait(EXIT_BOUND)
        except subprocess.TimeoutExpired:
            m.proc.wait(60)
            self.fail('mailfs took %.1f s to exit after SIGINT\n%s' %
                      (time.monotonic() - t0, m.stderr()))
        self.assertEqual(rc, 0, m.stderr())
        self.assertFalse(is_mounted(m.path))

    def test_sigint_exits_at_once(self):
        m = self.mount()
        self.use(m)
        self.assert_sigint_exits_at_once(m)

    def test_sigint_exits_at_once_over_a_slow_link(self):
        """500 ms round trip: the push session's DONE and every LOGOUT
        cost one each, and mailfs used to wait for all of them."""
        m = self.mount(rtt_ms=500)
        self.use(m)
        self.assert_sigint_exits_at_once(m)

    def test_sigint_during_a_read_over_a_slow_link(self):
        """A FUSE request waiting on the server (a 6 MB read, one round
        trip of 500 ms per window) ends at once too: libfuse's loop
        returns only after every request in flight has."""
        m = self.mount(rtt_ms=500)
        self.use(m)
        path = m.p('INBOX', self.big_name(m))
        errors = []

        def read():
            try:
                with open(path, 'rb') as f:
                    f.read()
            except OSError as e:
                errors.append(e)
        reader = threading.Thread(target=read)
        reader.start()
        self.addCleanup(reader.join)
        time.sleep(1.5)
        self.assertTrue(reader.is_alive(), 'the read was over too soon')
        self.assert_sigint_exits_at_once(m)

    def test_unmount_of_a_daemon_exits_at_once(self):
        """fusermount3 -u of a daemonized mount: the process is gone
        within a second, over the slow link too."""
        for rtt in (None, 500):
            m = self.mount(rtt_ms=rtt, foreground=False)
            self.use(m)
            pid = m.pid()
            self.assertTrue(pid)
            subprocess.run(['fusermount3', '-u', m.path], check=True)
            t0 = time.monotonic()
            while alive(pid) and time.monotonic() - t0 < 30:
                time.sleep(0.01)
            took = time.monotonic() - t0
            self.assertLess(took, 1.0, 'rtt %s: %.1f s\n%s' %
                            (rtt, took, m.stderr()))
            self.assertFalse(is_mounted(m.path))

    def test_watcher_sleeps_through_requests(self):
        """The thread that watches for the unmount is not woken by the
        requests the mount serves: it used to poll the FUSE device, and
        the kernel wakes every poller of it at each request queued (a
        context switch per request, measured 5,700 in a 2,000-file grep
        against 2,600 without). Unmounting is still seen at once
        (test_unmount_of_a_daemon_exits_at_once)."""
        m = self.mount()
        self.use(m)
        pid = m.pid()
        watcher = None
        for tid in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                if f.read().strip() == 'mailfs-stop':
                    watcher = tid
        self.assertIsNotNone(watcher, 'no thread named mailfs-stop')

        def switches():
            with open('/proc/%d/task/%s/status' % (pid, watcher)) as f:
                return sum(int(line.split()[1]) for line in f
                           if 'ctxt_switches' in line)
        before = switches()
        for _ in range(300):
            os.getxattr(m.path, 'user.mail.status')
        # Once a second it looks at the device: a few wake-ups at most.
        self.assertLess(switches() - before, 20, m.stderr())


if __name__ == '__main__':
    unittest.main()
