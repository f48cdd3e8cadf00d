"""COMPRESS=DEFLATE (RFC 4978) against a real Dovecot with its imap_zlib
plugin: every session mailfs opens compresses (pool, spare, push,
prefetch), over imaps, STARTTLS and cleartext; what the mount serves is
what Python's imaplib fetches; the wire carries much less; -o
compress=no and a server without the capability send no COMPRESS; a
connection dropped mid-stream fails or recovers as before, never hangs.
"""

import errno
import os
import re
import subprocess
import threading
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount

USER = 'alice'
ZLIB_CONF = 'protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}'
FOLDER = 'Text'
N_TEXT = 200
WORD = 'invoice'  # in the body of some text messages (corpus.has_invoice)
BIG_SIZE = 8 * 1024 * 1024
TIMEOUT = 5


def imaplib_fetch(server, folder, tls='imaps'):
    """{uid: bytes} of every message, fetched with Python's imaplib."""
    c = server.imap(USER, tls=tls)
    try:
        typ, _ = c.select('"%s"' % folder, readonly=True)
        assert typ == 'OK', folder
        typ, data = c.uid('FETCH', '1:*', '(UID BODY.PEEK[])')
        assert typ == 'OK'
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            uid = int(head.split('UID ', 1)[1].split()[0])
            out[uid] = item[1]
        return out
    finally:
        c.logout()


def served_by_name(server, folder, tls='imaps'):
    """{file name in the mount: bytes imaplib fetched}."""
    data = imaplib_fetch(server, folder, tls)
    names = server.message_names(USER, folder)
    return {names[uid]: raw for uid, raw in data.items()}


def grep_files(path, word):
    """The file names under path that grep -r finds word in."""
    r = subprocess.run(['grep', '-r', '-l', '-i', word, path],
                       capture_output=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    return sorted(os.path.basename(p) for p in
                  r.stdout.decode().splitlines())


def read_dir(path):
    """{name: bytes} of every file in path."""
    out = {}
    for name in os.listdir(path):
        with open(os.path.join(path, name), 'rb') as f:
            out[name] = f.read()
    return out


def first_commands(server):
    """The first client command of each rawlog session, in order. The
    mount's first session sends its LIST in the same write as the login
    (imap_open_listing()), so before COMPRESS: that LIST is left out, and
    only one session may start with it."""
    out, listed = [], 0
    for s in server.rawlog_sessions(USER, 'imap'):
        cmds = list(s.commands)
        if cmds and cmds[0].startswith('LIST '):
            listed += 1
            cmds = cmds[1:]
        out.append(cmds[0] if cmds else '')
    assert listed <= 1, 'sessions that start with LIST: %d' % listed
    return out


class CompressTest(unittest.TestCase):
    """A Dovecot that offers COMPRESS=DEFLATE; 200 text messages of about
    20 KB, and one of 8 MB."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True, extra_conf=ZLIB_CONF).start()
        s = cls.server
        s.append_many(USER, FOLDER, [corpus.text_message(i, size=20000)
                                     for i in range(N_TEXT)])
        s.append(USER, 'Big', corpus.text_message(9999, size=BIG_SIZE))
        s.append(USER, 'INBOX', corpus.text_message(5000))
        cls.served = served_by_name(s, FOLDER)
        cls.big = served_by_name(s, 'Big')
        cls.grep_want = sorted(n for n, raw in cls.served.items()
                               if WORD.encode() in raw.lower())
        assert cls.grep_want, 'the corpus has no %r' % WORD

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self, url, *options, **kw):
        m = Mount(url, self.server.users[USER], cafile=self.server.cafile,
                  options=options, **kw)
        self.addCleanup(m.umount)
        return m.start()

    def proxied(self, port):
        proxy = Proxy(port).start()
        self.addCleanup(proxy.stop)
        return proxy

    def grep_through_proxy(self, *options):
        """Mounts over imaps through a counting proxy, greps the folder
        and reads every file; returns (bytes down, grep hits, files,
        first command of each session)."""
        s = self.server
        proxy = self.proxied(s.imaps_port)
        s.clear_rawlog(USER)
        m = self.mount('imaps://%s@localhost:%d' % (USER, proxy.port),
                       *options)
        hits = grep_files(m.p(FOLDER), WORD)
        files = read_dir(m.p(FOLDER))
        down = proxy.bytes_down
        m.umount()
        return down, hits, files, first_commands(s)

    def check_same(self, hits, files):
        self.assertEqual(hits, self.grep_want)
        self.assertEqual(sorted(files), sorted(self.served))
        for name, raw in self.served.items():
            self.assertEqual(files[name], raw, name)

    def test_every_session_compresses_and_the_wire_carries_less(self):
        down_z, hits, files, firsts = self.grep_through_proxy()
        self.check_same(hits, files)
        # The pool's first session, the spare one and the push session.
        self.assertGreaterEqual(len(firsts), 3, firsts)
        self.assertEqual(firsts, ['COMPRESS DEFLATE'] * len(firsts))
        down, hits, files, firsts = self.grep_through_proxy('compress=no')
        self.check_same(hits, files)
        self.assertGreaterEqual(len(firsts), 3, firsts)
        self.assertFalse([c for c in firsts if 'COMPRESS' in c], firsts)
        body = sum(len(r) for r in self.served.values())
        self.assertGreater(down, body)
        print('\ncompress: %d bytes down compressed, %d without (%.0f%%)'
              % (down_z, down, 100.0 * down_z / down))
        self.assertLess(down_z, down // 2)

    def test_compress_no_sends_no_command(self):
        s = self.server
        s.clear_rawlog(USER)
        m = self.mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                       'compress=no')
        self.assertEqual(read_dir(m.p(FOLDER)), self.served)
        m.umount()
        sessions = s.rawlog_sessions(USER, 'imap')
        self.assertGreaterEqual(len(sessions), 3)
        for sess in sessions:
            self.assertFalse([c for c in sess.commands if 'COMPRESS' in c],
                             sess.commands)
            # Uncompressed: every command reads as IMAP.
            for c in sess.commands:
                self.assertRegex(c, r'^[A-Z]+( |$)', sess.commands)

    def test_starttls_and_cleartext(self):
        s = self.server
        for url, opts in (
                ('imap://%s@localhost:%d' % (USER, s.imap_port), ()),
                ('imap://%s@localhost:%d' % (USER, s.imap_port),
                 ('tls=none',))):
            with self.subTest(url=url, opts=opts):
                s.clear_rawlog(USER)
                m = self.mount(url, *opts, debug=True)
                self.assertEqual(grep_files(m.p(FOLDER), WORD),
                                 self.grep_want)
                self.assertEqual(read_dir(m.p(FOLDER)), self.served)
                m.umount()
                self.assertIn('compression on (COMPRESS=DEFLATE%s)'
                              % ('' if opts else ', under TLS'),
                              m.stderr())
                firsts = first_commands(s)
                self.assertGreaterEqual(len(firsts), 3, firsts)
                self.assertEqual(firsts,
                                 ['COMPRESS DEFLATE'] * len(firsts))

    def test_big_message_and_push(self):
        """An 8 MB message read whole (many compressed FETCHes on one
        stream); a message delivered while mounted is reported by the
        push session (IDLE and NOTIFY over the compressed stream)."""
        s = self.server
        m = self.mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                       debug=True)
        self.assertEqual(read_dir(m.p('Big')), self.big)
        deadline = time.monotonic() + 10
        while 'push: NOTIFY' not in m.stderr():
            self.assertLess(time.monotonic(), deadline, 'no push session')
            time.sleep(0.1)
        s.append(USER, 'INBOX', corpus.text_message(5001))
        while 'push: INBOX changed' not in m.stderr():
            self.assertLess(time.monotonic(), deadline + 10,
                            'the new message was not reported')
            time.sleep(0.1)
        m.umount()
        push = [ln for ln in m.stderr().splitlines() if 'push: NOTIFY' in ln]
        conn = re.search(r'\[#\d+\]', push[0]).group(0)
        self.assertIn(conn + ' compression on', m.stderr())

    def test_prefetch_sessions_compress(self):
        s = self.server
        s.clear_rawlog(USER)
        m = self.mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                       'prefetch=%s' % FOLDER, 'connections=6')
        deadline = time.monotonic() + 60
        while self.status(m).get('prefetch') != 'done':
            self.assertLess(time.monotonic(), deadline, self.status(m))
            time.sleep(0.3)
        m.umount()
        firsts = first_commands(s)
        self.assertGreaterEqual(len(firsts), 3, firsts)
        self.assertEqual(firsts, ['COMPRESS DEFLATE'] * len(firsts))
        # What prefetch stored is the server's bytes.
        m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                  s.users[USER], cafile=s.cafile, options=['offline'],
                  env={'XDG_CACHE_HOME': m.env['XDG_CACHE_HOME']})
        self.addCleanup(m.umount)
        m.start()
        self.assertEqual(read_dir(m.p(FOLDER)), self.served)

    @staticmethod
    def status(m):
        out = subprocess.run(['getfattr', '--only-values', '-n',
                              'user.mail.status', m.path],
                             capture_output=True, text=True).stdout
        return dict(line.split('=', 1) for line in out.splitlines()
                    if '=' in line)

    def read_big_cut(self, proxy, m, reset):
        """Reads the big message in a thread and drops every proxied
        connection once 300 KB more came down: returns (bytes or the
        OSError, seconds the read took)."""
        name = next(iter(self.big))
        result = {}

        def reader():
            t0 = time.monotonic()
            try:
                with open(m.p('Big', name), 'rb') as f:
                    result['data'] = f.read()
            except OSError as e:
                result['data'] = e
            result['took'] = time.monotonic() - t0

        start = proxy.bytes_down
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        deadline = time.monotonic() + 30
        while proxy.bytes_down < start + 300000 and t.is_alive():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.005)
        self.assertTrue(t.is_alive(), 'the read ended before the cut')
        proxy.drop_all(reset=reset)
        t.join(6 * TIMEOUT)
        self.assertFalse(t.is_alive(), 'the read hangs after a cut')
        return result['data'], result['took']

    def test_drop_mid_stream(self):
        """A connection cut while a compressed FETCH streams: the read
        gets the right bytes (after a reconnect) or EIO, in bounded time,
        and the mount goes on serving."""
        s = self.server
        raw = next(iter(self.big.values()))
        name = next(iter(self.big))
        for reset in (False, True):
            with self.subTest(reset=reset):
                proxy = Proxy(s.imaps_port, rtt_ms=10).start()
                self.addCleanup(proxy.stop)
                m = self.mount('imaps://%s@localhost:%d'
                               % (USER, proxy.port),
                               'timeout=%d' % TIMEOUT, 'disk_cache=0',
                               debug=True)
                os.listdir(m.p('Big'))
                data, took = self.read_big_cut(proxy, m, reset)
                if isinstance(data, OSError):
                    self.assertEqual(data.errno, errno.EIO, data)
                else:
                    self.assertEqual(data, raw)
                self.assertLess(took, 4 * TIMEOUT)
                # The mount goes on, over new connections.
                with open(m.p('Big', name), 'rb') as f:
                    self.assertEqual(f.read(), raw)
                other = sorted(self.served)[reset]
                with open(m.p(FOLDER, other), 'rb') as f:
                    self.assertEqual(f.read(), self.served[other])
                m.umount()
                self.assertGreater(proxy.connections, 3)
                self.assertIn('compression on', m.stderr())


class NoCompressCapabilityTest(unittest.TestCase):
    """The default Dovecot of the harness: no COMPRESS=DEFLATE offered."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.server.append_many(USER, FOLDER, [
            corpus.text_message(i, size=5000) for i in range(20)])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_nothing_is_asked_and_all_works(self):
        s = self.server
        c = s.imap(USER)
        caps = c.capability()[1][0].decode()
        c.logout()
        self.assertNotIn('COMPRESS', caps)
        want = served_by_name(s, FOLDER)
        s.clear_rawlog(USER)
        m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                  s.users[USER], cafile=s.cafile, debug=True)
        self.addCleanup(m.umount)
        m.start()
        self.assertEqual(read_dir(m.p(FOLDER)), want)
        # Every session logged in before the look at them: the pool's
        # two (the mount's, and the spare it opens in the background
        # once the mount is up) and push's. A loaded machine may take a
        # while; the spare may then stay silent (Dovecot's rawlog starts
        # after the login, so it asked for nothing, COMPRESS neither).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            st = m.status()
            if int(st['connections_open']) >= 2 and st['push'] == 'all':
                break
            time.sleep(0.1)
        self.assertGreaterEqual(int(st['connections_open']), 2, st)
        self.assertEqual(st['push'], 'all', st)
        m.umount()
        self.assertNotIn('compression on', m.stderr())
        sessions = s.rawlog_sessions(USER, 'imap')
        self.assertGreaterEqual(len(sessions), 2)
        for sess in sessions:
            self.assertFalse([c for c in sess.commands if 'COMPRESS' in c],
                             sess.commands)


if __name__ == '__main__':
    unittest.main()
