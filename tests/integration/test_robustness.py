"""What no real server does on demand: stalls, malformed replies, huge
literals, drops mid-literal. A scripted fake IMAP server plays them; mailfs
must answer with an errno within its timeout, never hang or crash."""

import errno
import os
import re
import subprocess
import threading
import time
import unittest

from tests.harness.fakeserver import FakeServer
from tests.harness.mailserver import message_base_name
from tests.integration.mount import Mount, is_mounted

CAPS = b'IMAP4rev1 LITERAL+ UIDPLUS AUTH=PLAIN'
MESSAGE = (b'From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n')
DATE = '01-Jan-2024 10:00:00 +0000'


def fake_name(listed_size=len(MESSAGE)):
    """The name mailfs gives the fake server's message (UID 7)."""
    return message_base_name(DATE, listed_size, b'') + '.eml'


class FakeImap:
    """A tiny IMAP server with one folder holding one message (UID 7);
    `misbehave(tag, command)` may take over any command (returning True).
    `listed_size` is the RFC822.SIZE it claims (default: the true one)."""

    def __init__(self, misbehave=None, greeting=b'* OK fake ready\r\n',
                 caps=CAPS, listed_size=None, extra_folders=()):
        self.misbehave = misbehave or (lambda conn, tag, cmd: False)
        self.greeting = greeting
        self.caps = caps
        self.listed_size = listed_size if listed_size is not None \
            else len(MESSAGE)
        self.extra_folders = list(extra_folders)
        self.commands = []  # every command line, literals inlined
        self.server = FakeServer(self.handle)

    def handle(self, conn):
        if self.greeting is None:
            conn.recv_line(timeout=60)  # say nothing, ever
            return
        conn.send(self.greeting)
        while True:
            try:
                line = conn.recv_line(timeout=60)
            except TimeoutError:
                return
            if not line:
                return
            # Non-synchronizing literals ({N+}) inside the command.
            while re.search(rb'\{(\d+)\+\}\r\n$', line):
                n = int(re.search(rb'\{(\d+)\+\}\r\n$', line).group(1))
                line = (line[:line.rindex(b'{')] + b'"' +
                        conn.recv_exact(n, timeout=10) + b'"' +
                        conn.recv_line(timeout=10))
            self.commands.append(line)
            m = re.match(rb'(\S+) (.*?)\r?\n$', line, re.S)
            if not m:
                return
            tag, cmd = m.group(1), m.group(2)
            word = cmd.split(b' ')[0].upper()
            if self.misbehave(conn, tag, cmd):
                continue
            if word == b'CAPABILITY':
                conn.send(b'* CAPABILITY ' + self.caps + b'\r\n' + tag +
                          b' OK done\r\n')
            elif word in (b'AUTHENTICATE', b'LOGIN'):
                if word == b'AUTHENTICATE' and len(cmd.split()) == 2:
                    conn.send(b'+ \r\n')  # no SASL-IR: ask for it
                    conn.recv_line(timeout=10)
                conn.send(tag + b' OK [CAPABILITY ' + self.caps +
                          b'] logged in\r\n')
            elif word == b'LIST':
                extra = b''.join(b'* LIST () "/" {%d}\r\n%s\r\n'
                                 % (len(n), n) for n in self.extra_folders)
                conn.send(b'* LIST () "/" INBOX\r\n' + extra + tag +
                          b' OK\r\n')
            elif word in (b'EXAMINE', b'SELECT'):
                conn.send(b'* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n'
                          b'* OK [UIDNEXT 8] x\r\n' + tag +
                          b' OK [READ-ONLY] done\r\n')
            elif cmd.upper().startswith(b'UID FETCH 1:*'):
                conn.send(b'* 1 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE %d '
                          b'INTERNALDATE "%s" '
                          b'BODY[HEADER.FIELDS (MESSAGE-ID)] {2}\r\n\r\n)'
                          b'\r\n' % (self.listed_size, DATE.encode()) +
                          tag + b' OK\r\n')
            elif cmd.upper().startswith(b'UID FETCH 7 '):
                # BODY.PEEK[section]<o.n>: the whole message, its header
                # block, or (any part) its body.
                m = re.search(rb'\[([^]]*)\]<(\d+)\.(\d+)>', cmd)
                sec, off, n = m.group(1), int(m.group(2)), int(m.group(3))
                head = MESSAGE.index(b'\r\n\r\n') + 4
                data = (MESSAGE if not sec else MESSAGE[:head]
                        if sec.upper() == b'HEADER' else MESSAGE[head:])
                part = data[off:off + n]
                conn.send(b'* 1 FETCH (UID 7 BODY[%s]<%d> {%d}\r\n'
                          % (sec, off, len(part)) + part + b')\r\n' + tag +
                          b' OK\r\n')
            elif word == b'LOGOUT':
                conn.send(b'* BYE bye\r\n' + tag + b' OK\r\n')
                return
            else:
                conn.send(tag + b' OK\r\n')

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    @property
    def url(self):
        return 'imap://u@127.0.0.1:%d' % self.server.port


def on_body_fetch(action):
    """A misbehave() that runs action(conn, tag) on the body FETCH."""
    def misbehave(conn, tag, cmd):
        if b'BODY.PEEK[]' in cmd.upper():
            action(conn, tag)
            return True
        return False
    return misbehave


class RobustnessTest(unittest.TestCase):
    TIMEOUT = 2

    def mount(self, fake, *options):
        m = Mount(fake.url, 'pw', options=['tls=none',
                                           'timeout=%d' % self.TIMEOUT] +
                  list(options))
        self.addCleanup(m.umount)
        return m.start()

    def test_eight_bit_folder_name_is_reachable(self):
        # A name that is not modified UTF-7 (8-bit bytes) shows escaped,
        # and is sent back as a literal: it can be opened.
        name = b'Caf\xe9s'
        with FakeImap(extra_folders=[name]) as fake:
            m = self.mount(fake)
            self.assertIn('Caf%E9s', os.listdir(m.path))
            self.assertEqual(os.listdir(m.p('Caf%E9s')), [fake_name()])
            examined = [c for c in fake.commands if b'EXAMINE' in c]
            self.assertIn(b'EXAMINE "' + name + b'"', b''.join(examined))

    def test_debug_trace_is_safe(self):
        # Terminal escapes from the server never reach the terminal, and
        # message content never shows in the trace, however short.
        def body(conn, tag):
            conn.send(b'* 1 FETCH (UID 7 BODY[]<0> "TOPSECRET")\r\n' +
                      tag + b' OK\r\n')
        greeting = (b'* OK \x1b[31mred\x1b]0;title\x07 \xc2\x9b2J '
                    b'caf\xc3\xa9 ready\r\n')
        with FakeImap(on_body_fetch(body), greeting=greeting) as fake:
            m = Mount(fake.url, 'pw', debug=True,
                      options=['tls=none', 'timeout=%d' % self.TIMEOUT])
            self.addCleanup(m.umount)
            m.start()
            try:
                with open(m.p('INBOX', fake_name()), 'rb') as f:
                    f.read()
            except OSError:
                pass
            m.umount()
            with open(m.stderr_path, 'rb') as f:
                trace = f.read()
        self.assertIn(b'S: * OK', trace)
        self.assertIn(b'caf\xc3\xa9', trace)  # UTF-8 text stays
        for bad in (b'\x1b', b'\x07', b'\xc2\x9b', b'TOPSECRET'):
            self.assertNotIn(bad, trace)
        self.assertIn(b'{9 bytes}', trace)

    def read_fails(self, action, expect=errno.EIO):
        """Mounts a fake server that misbehaves on the body FETCH and
        checks that reading fails with `expect` within a bounded time, and
        that the mount still works afterwards."""
        with FakeImap(on_body_fetch(action)) as fake:
            m = self.mount(fake)
            t0 = time.monotonic()
            with self.assertRaises(OSError) as cm:
                with open(m.p('INBOX', fake_name()), 'rb') as f:
                    f.read()
            took = time.monotonic() - t0
            self.assertEqual(cm.exception.errno, expect)
            self.assertLess(took, 3 * self.TIMEOUT + 2)
            # Still alive: listings work.
            self.assertEqual(os.listdir(m.p('INBOX')), [fake_name()])
            return took

    def test_fake_server_serves(self):
        with FakeImap() as fake:
            m = self.mount(fake)
            with open(m.p('INBOX', fake_name()), 'rb') as f:
                self.assertEqual(f.read(), MESSAGE)

    def check_size_fixed(self, listed):
        """A server whose RFC822.SIZE is wrong: the bytes win, the size
        is corrected and the kernel's attributes are dropped."""
        with FakeImap(listed_size=listed) as fake:
            m = self.mount(fake, 'refresh=1')
            p = m.p('INBOX', fake_name(listed))
            self.assertEqual(os.stat(p).st_size, listed)
            with open(p, 'rb') as f:
                f.read()
            deadline = time.monotonic() + 5
            while (os.stat(p).st_size != len(MESSAGE) and
                   time.monotonic() < deadline):
                time.sleep(0.1)
            self.assertEqual(os.stat(p).st_size, len(MESSAGE))
            with open(p, 'rb') as f:
                self.assertEqual(f.read(), MESSAGE)
            # Later listings (refresh=1) keep the corrected size.
            time.sleep(2.5)
            os.listdir(m.p('INBOX'))
            self.assertEqual(os.stat(p).st_size, len(MESSAGE))

    def test_listed_size_too_small(self):
        self.check_size_fixed(len(MESSAGE) - 10)

    def test_listed_size_too_large(self):
        self.check_size_fixed(len(MESSAGE) + 100)

    def test_stall_gives_eio_after_timeout(self):
        took = self.read_fails(lambda conn, tag: None)
        self.assertGreaterEqual(took, self.TIMEOUT - 0.5)

    def test_garbage_reply(self):
        self.read_fails(lambda conn, tag: conn.send(b'\x00\x01garbage\r\n'))

    def test_unbalanced_parenthesis(self):
        self.read_fails(lambda conn, tag: conn.send(
            b'* 1 FETCH (UID 7 BODY[]<0> "x"))\r\n' + tag + b' OK\r\n'))

    def test_huge_literal_refused(self):
        self.read_fails(lambda conn, tag: conn.send(
            b'* 1 FETCH (UID 7 BODY[]<0> {99999999999}\r\nxxxx'))

    def test_drop_mid_literal(self):
        def drop(conn, tag):
            conn.send(b'* 1 FETCH (UID 7 BODY[]<0> {%d}\r\n' % len(MESSAGE)
                      + MESSAGE[:10])
            conn.close()
        self.read_fails(drop)

    def test_bye_mid_command(self):
        def bye(conn, tag):
            conn.send(b'* BYE going away\r\n')
            conn.close()
        self.read_fails(bye)

    def test_endless_line(self):
        def endless(conn, tag):
            chunk = b'* 1 FETCH (UID 7 X ' + b'a' * 65536
            conn.send(chunk)
            for _ in range(100):
                if not conn.send(b'b' * 65536):
                    return
        self.read_fails(endless)

    def test_no_body_for_uid_is_enoent(self):
        self.read_fails(lambda conn, tag: conn.send(tag + b' OK\r\n'),
                        expect=errno.ENOENT)

    def test_wrong_uid_ignored(self):
        # Bytes of another message must never be shown.
        self.read_fails(lambda conn, tag: conn.send(
            b'* 2 FETCH (UID 8 BODY[]<0> {5}\r\nwrong)\r\n' + tag +
            b' OK\r\n'), expect=errno.ENOENT)

    def test_stall_on_listing(self):
        def stall_list(conn, tag, cmd):
            return cmd.upper().startswith(b'UID FETCH 1:*')
        with FakeImap(stall_list) as fake:
            m = self.mount(fake)
            t0 = time.monotonic()
            r = subprocess.run(['ls', m.p('INBOX')], capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn('Input/output error', r.stderr)
            self.assertLess(time.monotonic() - t0, 3 * self.TIMEOUT + 2)


    def test_failing_folder_list_gives_eio(self):
        # A server that refuses LIST (NO or BAD): every path, virtual
        # ones first, fails with EIO and mailfs stays up. fsctx_resolve()
        # returned before it initialised the caller's tree_info, which
        # .parts then freed: a double free (SIGABRT) at the first ls.
        for answer in (b'NO', b'BAD'):
            def misbehave(conn, tag, cmd, answer=answer):
                if cmd.upper().startswith(b'LIST'):
                    conn.send(tag + b' ' + answer + b' no folders\r\n')
                    return True
                return False
            with FakeImap(misbehave) as fake:
                m = self.mount(fake)
                for parts in (('.parts',), ('INBOX', '.parts'),
                              ('INBOX', '.parts', fake_name()),
                              ('INBOX', '.search', 'all'), ('INBOX',), ()):
                    with self.assertRaises(OSError, msg=parts) as cm:
                        os.listdir(m.p(*parts))
                    self.assertEqual(cm.exception.errno, errno.EIO,
                                     (answer, parts))
                with self.assertRaises(OSError) as cm:
                    open(m.p('INBOX', '.summary'), 'rb')
                self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertTrue(is_mounted(m.path))
                m.umount()


    def test_deep_folder_names_are_left_out(self):
        # LIST names of thousands of levels: every level was an implied
        # folder holding its whole name and path, so memory grew with the
        # square of the name (234 MB for 20 kB of 10,000 levels). The
        # one over 16 kB is left out by the store, the 16 kB one of
        # 8,000 levels by the tree (deeper than 64), each with one log
        # line; mailfs stays small and shows the other folders.
        huge = b'/'.join([b'a'] * 10000)  # 19,999 bytes
        deep = b'/'.join([b'b'] * 8000)  # 15,999 bytes
        with FakeImap(extra_folders=[huge, deep, b'Lists/dev']) as fake:
            m = Mount(fake.url, 'pw', foreground=True,
                      options=['tls=none', 'timeout=%d' % self.TIMEOUT])
            self.addCleanup(m.umount)
            m.start()
            top = sorted(os.listdir(m.path))
            with open('/proc/%d/status' % m.proc.pid) as f:
                rss = [int(l.split()[1]) for l in f
                       if l.startswith('VmRSS:')][0]
            self.assertLess(rss, 50 * 1024, 'VmRSS %d kB' % rss)
            self.assertEqual(top, ['INBOX', 'Lists'])
            self.assertEqual(os.listdir(m.p('Lists')), ['dev'])
            self.assertEqual(os.listdir(m.p('INBOX')), [fake_name()])
            for n in ('a', 'b'):
                self.assertFalse(os.path.exists(m.p(n)))
            m.umount()
            log = m.stderr()
            self.assertEqual(log.count('folder name over 16384 bytes'), 1,
                             log)
            self.assertEqual(log.count('deeper than 64 levels'), 1, log)


class StartupFailureTest(unittest.TestCase):
    """Refusals at start-up: one clear line, non-zero exit, no mount."""

    def fails(self, fake, text, options=('tls=none',)):
        m = Mount(fake.url, 'pw', options=list(options) + ['timeout=2'])
        self.addCleanup(m.umount)
        rc, err, secs = m.run()
        self.assertNotEqual(rc, 0)
        self.assertIn(text, err)
        self.assertLess(secs, 8)
        self.assertFalse(is_mounted(m.path))

    def test_silent_server(self):
        with FakeImap(greeting=None) as fake:
            self.fails(fake, 'did not answer within 2 s')

    def test_bye_greeting(self):
        with FakeImap(greeting=b'* BYE too busy\r\n') as fake:
            self.fails(fake, 'too busy')

    def test_not_imap(self):
        with FakeImap(greeting=b'SSH-2.0-OpenSSH\r\n') as fake:
            self.fails(fake, 'bad response')

    def test_no_starttls_offered(self):
        with FakeImap() as fake:
            self.fails(fake, 'does not offer STARTTLS', options=())

    def test_logindisabled_without_plain(self):
        with FakeImap(caps=b'IMAP4rev1 LOGINDISABLED') as fake:
            self.fails(fake, 'disables LOGIN')

    def test_login_refused(self):
        def refuse(conn, tag, cmd):
            if cmd.upper().startswith((b'AUTHENTICATE', b'LOGIN')):
                conn.send(tag + b' NO [AUTHENTICATIONFAILED] nope\r\n')
                return True
            return False
        with FakeImap(refuse) as fake:
            self.fails(fake, 'failed: nope')

    def test_login_command_used_without_auth_plain(self):
        seen = []

        def record(conn, tag, cmd):
            seen.append(cmd)
            return False
        with FakeImap(record, caps=b'IMAP4rev1') as fake:
            m = Mount(fake.url, 'p"w\\', options=['tls=none'])
            self.addCleanup(m.umount)
            m.start()
            os.listdir(m.path)
        login = [c for c in seen if c.upper().startswith(b'LOGIN')]
        # The mount's session, and the spare one the pool opens ahead
        # of background work: each logs in the same way.
        self.assertTrue(login)
        self.assertEqual(set(login), {b'LOGIN "u" "p\\"w\\\\"'})


if __name__ == '__main__':
    unittest.main()
