"""Bad input during resync and push (issue 7), from a scripted server, for
what Dovecot will not do on demand: a HIGHESTMODSEQ that goes backwards,
VANISHED and EXPUNGE for messages that never existed, an IDLE that is never
answered or a connection dropped while idling. mailfs must keep showing the
right listing (at worst by listing again, with a log line), and answer every
call within its timeout."""

import os
import time
import unittest

from tests.integration.mount import Mount
from tests.integration.test_robustness import FakeImap, MESSAGE, fake_name

CAPS = (b'IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN CONDSTORE QRESYNC ESEARCH '
        b'IDLE')
REFRESH = 1


def examine_reply(tag, modseq, extra=b''):
    return (b'* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n* OK [UIDNEXT 8] x\r\n'
            b'* OK [HIGHESTMODSEQ %d] x\r\n' % modseq + extra + tag +
            b' OK [READ-ONLY] done\r\n')


class ResyncFaultTest(unittest.TestCase):
    TIMEOUT = 2

    def mount(self, fake, *options):
        m = Mount(fake.url, 'pw', foreground=True,
                  options=['tls=none', 'timeout=%d' % self.TIMEOUT,
                           'refresh=%d' % REFRESH] + list(options))
        self.addCleanup(m.umount)
        return m.start()

    def full_listings(self, fake):
        return [c for c in fake.commands
                if c.upper().startswith(b'M') and b'FETCH 1:* (UID FLAGS RFC822'
                in c.upper()]

    def resync_with(self, reply):
        """Mounts a server whose EXAMINE with QRESYNC gets reply(tag);
        lists twice (the second a resync) and returns (fake, mount)."""
        def misbehave(conn, tag, cmd):
            if cmd.upper().startswith(b'EXAMINE') and b'QRESYNC' in cmd:
                conn.send(reply(tag))
                return True
            if cmd.upper().startswith(b'EXAMINE'):
                conn.send(examine_reply(tag, 100))
                return True
            if cmd.upper().startswith(b'ENABLE'):
                conn.send(b'* ENABLED QRESYNC\r\n' + tag + b' OK\r\n')
                return True
            return False
        fake = FakeImap(misbehave, caps=CAPS)
        fake.__enter__()
        self.addCleanup(fake.__exit__)
        m = self.mount(fake, 'connections=2')
        self.assertEqual(os.listdir(m.p('INBOX')), [fake_name()])
        time.sleep(REFRESH + 1.2)
        t0 = time.monotonic()
        self.assertEqual(os.listdir(m.p('INBOX')), [fake_name()])
        self.assertLess(time.monotonic() - t0, self.TIMEOUT + 1)
        with open(m.p('INBOX', fake_name()), 'rb') as f:
            self.assertEqual(f.read(), MESSAGE)
        return fake, m

    def test_highestmodseq_backwards_relists_and_says_why(self):
        fake, m = self.resync_with(lambda tag: examine_reply(tag, 50))
        self.assertEqual(len(self.full_listings(fake)), 2)
        self.assertIn('HIGHESTMODSEQ went back', m.stderr())

    def test_vanished_and_expunge_for_unknown_messages(self):
        # VANISHED for UIDs never known and an EXPUNGE of a sequence
        # number beyond EXISTS: the known message stays, with no relisting.
        fake, m = self.resync_with(lambda tag: examine_reply(
            tag, 101, b'* VANISHED (EARLIER) 1:6,8:100000\r\n'
                      b'* 99 EXPUNGE\r\n* 1 EXISTS\r\n'))
        self.assertEqual(len(self.full_listings(fake)), 1)

    def test_vanished_of_everything_relists(self):
        # A VANISHED that takes the known message away while EXISTS says
        # one is there: the changes do not add up, so list again.
        fake, m = self.resync_with(lambda tag: examine_reply(
            tag, 101, b'* VANISHED (EARLIER) 1:4294967295\r\n'))
        self.assertEqual(len(self.full_listings(fake)), 2)
        self.assertIn('do not add up', m.stderr())

    def test_garbage_vanished_is_survived(self):
        fake, m = self.resync_with(lambda tag: examine_reply(
            tag, 101, b'* VANISHED (EARLIER) 0:*,,x\r\n'))
        self.assertIn('cannot be read', m.stderr())


class PushFaultTest(unittest.TestCase):
    """The push session (connections >= 3) against a server that never
    answers IDLE, or drops the connection while idling: foreground calls
    are not held up, and push starts again."""
    TIMEOUT = 2

    def run_with_idle(self, on_idle):
        def misbehave(conn, tag, cmd):
            if cmd.upper() == b'IDLE':
                on_idle(conn, tag)
                return True
            return False
        with FakeImap(misbehave, caps=CAPS) as fake:
            m = Mount(fake.url, 'pw', options=[
                'tls=none', 'timeout=%d' % self.TIMEOUT, 'connections=3'])
            self.addCleanup(m.umount)
            m.start()
            deadline = time.monotonic() + 15
            while (sum(c.upper().endswith(b'IDLE\r\n')
                       for c in fake.commands) < 2 and
                   time.monotonic() < deadline):
                t0 = time.monotonic()
                self.assertEqual(os.listdir(m.p('INBOX')), [fake_name()])
                with open(m.p('INBOX', fake_name()), 'rb') as f:
                    self.assertEqual(f.read(), MESSAGE)
                self.assertLess(time.monotonic() - t0, self.TIMEOUT + 1)
                time.sleep(0.3)
            idles = sum(c.upper().endswith(b'IDLE\r\n')
                        for c in fake.commands)
            self.assertGreaterEqual(idles, 2, 'push did not start again')

    def test_idle_never_answered(self):
        self.run_with_idle(lambda conn, tag: None)

    def test_drop_while_idling(self):
        def drop(conn, tag):
            conn.send(b'+ idling\r\n')
            time.sleep(0.5)
            conn.close()
        self.run_with_idle(drop)


if __name__ == '__main__':
    unittest.main()
