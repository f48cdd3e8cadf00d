"""Tests of the test harness itself (tests/harness): the private Dovecot,
the message corpus, the latency/fault proxy and the scripted fake server.

Run: python3 -m unittest tests.integration.test_harness -v
"""

import datetime
import email.utils
import os
import re
import socket
import ssl
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.certs import CertAuthority
from tests.harness.fakeserver import FakeServer
from tests.harness.imapwire import (fetch_items, mutf7_decode, mutf7_encode,
                                    quote)
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy

RTT_MS = 200


class RawImap:
    """Bare socket IMAP client for timing tests: no library buffering
    games, every command written exactly when asked."""

    def __init__(self, port, user=None, password=None, context=None):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            self.sock = context.wrap_socket(self.sock,
                                            server_hostname='localhost')
        self.buf = b''
        self.greeting = self.line()
        if user is not None:
            self.send(b'L LOGIN %s %s\r\n' % (user.encode(),
                                              password.encode()))
            self.until(b'L ')

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        """Next line, or b'' at EOF."""
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                line, self.buf = self.buf, b''
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line + b'\n'

    def until(self, prefix):
        """Read lines until one starts with `prefix`; return it."""
        while True:
            line = self.line()
            if not line:
                raise EOFError('connection closed')
            if line.startswith(prefix):
                return line

    def close(self):
        self.sock.close()


class MailServerTest(unittest.TestCase):
    """One Dovecot (rawlog on) shared by the tests of this class."""

    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        cls.server = MailServer(rawlog=True).start()
        cls.start_time = time.monotonic() - t0
        cls.pw = cls.server.users['alice']

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_start_is_fast_and_ports_distinct(self):
        s = self.server
        ports = {s.imap_port, s.imaps_port, s.pop3_port, s.pop3s_port}
        self.assertEqual(len(ports), 4)
        self.assertLess(self.start_time, 5)
        self.assertTrue(os.path.exists(s.log_path))

    def test_all_ports_answer_with_verified_tls(self):
        s = self.server
        for tls in ('imaps', 'starttls', 'plain'):
            m = s.imap('alice', tls=tls)
            typ, _ = m.noop()
            self.assertEqual(typ, 'OK')
            if tls != 'plain':
                cert = m.sock.getpeercert()
                self.assertIn(('DNS', 'localhost'), cert['subjectAltName'])
            m.logout()
        for tls in ('pop3s', 'starttls', 'plain'):
            p = s.pop3('alice', tls=tls)
            self.assertIsInstance(p.stat(), tuple)
            p.quit()

    def test_untrusted_ca_is_refused(self):
        s = self.server
        bad = s.ssl_context(cafile=s.other_cafile)
        for port in (s.imaps_port, s.pop3s_port):
            with socket.create_connection(('127.0.0.1', port)) as raw:
                with self.assertRaises(ssl.SSLCertVerificationError):
                    bad.wrap_socket(raw, server_hostname='localhost')
        # STARTTLS path too.
        import imaplib
        m = imaplib.IMAP4('localhost', s.imap_port)
        with self.assertRaises(ssl.SSLCertVerificationError):
            m.starttls(bad)

    def test_hostname_is_checked(self):
        s = self.server
        ctx = s.ssl_context()
        for name in ('localhost', '127.0.0.1'):
            with socket.create_connection(('127.0.0.1', s.imaps_port)) as r:
                ctx.wrap_socket(r, server_hostname=name).close()
        with socket.create_connection(('127.0.0.1', s.imaps_port)) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname='mail.example.com')

    def test_capabilities_after_login(self):
        with self.server.wire('alice') as w:
            for cap in ('IDLE', 'LITERAL+', 'UIDPLUS', 'MOVE', 'CONDSTORE',
                        'QRESYNC', 'SPECIAL-USE', 'MULTIAPPEND'):
                self.assertIn(cap, w.capabilities)

    def test_append_fetch_round_trip_is_byte_exact(self):
        s = self.server
        msgs = [corpus.text_message(1), corpus.text_message(2, size=5000),
                corpus.eightbit_message(3), corpus.attachment_message(3000),
                corpus.dot_lines_message(), corpus.empty_body_message()]
        uids = [s.append('alice', 'RoundTrip', m) for m in msgs]
        self.assertEqual(uids, sorted(uids))
        got = s.fetch_all('alice', 'RoundTrip')
        for uid, raw in zip(uids, msgs):
            self.assertEqual(got[uid], raw)
        sizes = s.sizes('alice', 'RoundTrip')
        for uid, raw in zip(uids, msgs):
            self.assertEqual(sizes[uid], len(raw))
        self.assertEqual(s.folder_uids('alice', 'RoundTrip'), uids)
        # BODY.PEEK does not set \Seen; append flags are kept.
        uid = s.append('alice', 'RoundTrip', msgs[0], flags='\\Flagged',
                       date=1700000000)
        flags = s.flags('alice', 'RoundTrip')
        self.assertIn('\\Flagged', flags[uid])
        self.assertNotIn('\\Seen', flags[uids[0]])

    def test_deliver_maildir_visible_over_imap(self):
        s = self.server
        raw = corpus.binary_message()
        uid = s.deliver_maildir('alice', 'Delivered', raw)
        self.assertEqual(s.fetch_all('alice', 'Delivered')[uid],
                         corpus.dovecot_view(raw))
        lf = corpus.bare_lf_message()
        uid2 = s.deliver_maildir('alice', 'Delivered', lf, flags='\\Seen')
        self.assertGreater(uid2, uid)
        self.assertEqual(s.fetch_all('alice', 'Delivered')[uid2],
                         lf.replace(b'\n', b'\r\n'))
        self.assertIn('\\Seen', s.flags('alice', 'Delivered')[uid2])
        path = s.folder_path('alice', 'Delivered')
        files = os.listdir(os.path.join(path, 'cur')) + \
            os.listdir(os.path.join(path, 'new'))
        self.assertEqual(len(files), 2)
        for sub in ('cur', 'new'):
            for name in os.listdir(os.path.join(path, sub)):
                st = os.stat(os.path.join(path, sub, name))
                self.assertEqual(st.st_uid, s.mail_uid)

    def test_append_many_is_fast(self):
        msgs = [corpus.text_message(i, size=500) for i in range(2000)]
        t0 = time.monotonic()
        uids = self.server.append_many('bob', 'Many', msgs)
        elapsed = time.monotonic() - t0
        self.assertEqual(len(uids), 2000)
        self.assertEqual(uids, list(range(uids[0], uids[0] + 2000)))
        self.assertLess(elapsed, 5.0)
        got = self.server.fetch_all('bob', 'Many')
        self.assertEqual(got[uids[1234]], msgs[1234])

    def test_utf8_folders_and_mutf7(self):
        self.assertEqual(mutf7_encode('Reçus'), 'Re&AOc-us')
        self.assertEqual(mutf7_encode('日本語'), '&ZeVnLIqe-')
        self.assertEqual(mutf7_encode('A&B'), 'A&-B')
        self.assertEqual(mutf7_encode('~peter/mail/台北/日本語'),
                         '~peter/mail/&U,BTFw-/&ZeVnLIqe-')
        for name in ('Reçus', 'A&B', 'x 日本語 y', 'émoji \U0001F4EC'):
            self.assertEqual(mutf7_decode(mutf7_encode(name)), name)
        s = self.server
        nested = s.folder_name('日本語', 'メモ')
        s.create_folder('alice', nested)
        s.create_folder('alice', 'Reçus')
        self.assertIn(nested, s.list_folders('alice'))
        self.assertTrue(os.path.isdir(s.folder_path('alice', nested)))
        self.assertTrue(s.folder_path('alice', 'Reçus').endswith(
            '.Re&AOc-us'))

    def test_rawlog_counts_commands_and_bytes(self):
        s = self.server
        s.append('alice', 'INBOX', corpus.text_message(9))
        s.clear_rawlog('alice')
        self.assertEqual(s.rawlog_sessions('alice'), [])
        m = s.imap('alice', tls='imaps')
        for _ in range(3):
            m.noop()
        m.select('INBOX')
        m.append('INBOX', None, None, corpus.text_message(10))
        m.fetch('1', '(BODY.PEEK[HEADER])')
        m.logout()
        sessions = s.rawlog_sessions('alice', protocol='imap')
        self.assertEqual(len(sessions), 1)
        sess = sessions[0]
        verbs = [c.split()[0].upper() for c in sess.commands]
        self.assertEqual(verbs, ['NOOP', 'NOOP', 'NOOP', 'SELECT',
                                 'APPEND', 'FETCH', 'LOGOUT'])
        self.assertTrue(sess.commands[4].endswith('}'))   # no payload
        self.assertGreater(sess.bytes_in,
                           len(corpus.text_message(10)))
        self.assertEqual(sess.bytes_in, len(sess.data_in))
        self.assertIn(b'OK Logged in', sess.data_out)
        self.assertIsNone(re.search(rb'^\d+\.\d{6} ', sess.data_out, re.M))
        # POP3 sessions are listed separately.
        p = s.pop3('alice')
        p.stat()
        p.top(1, 0)
        p.quit()
        pop = s.rawlog_sessions('alice', protocol='pop3')
        self.assertEqual(pop[-1].commands, ['STAT', 'TOP 1 0', 'QUIT'])

    def test_rawlog_clear_mid_session_and_idle(self):
        s = self.server
        c = RawImap(s.imap_port, 'alice', self.pw)
        c.send(b'a SELECT INBOX\r\n')
        c.until(b'a ')
        s.clear_rawlog('alice')
        c.send(b'b IDLE\r\n')
        c.until(b'+ ')
        c.send(b'DONE\r\n')
        c.until(b'b ')
        c.send(b'c UID FETCH 1:* (FLAGS)\r\nd LOGOUT\r\n')
        c.until(b'd ')
        c.close()
        sessions = s.rawlog_sessions('alice', protocol='imap')
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0].commands,
                         ['IDLE', 'DONE', 'UID FETCH 1:* (FLAGS)', 'LOGOUT'])
        self.assertEqual(sessions[0].data_in,
                         b'b IDLE\r\nDONE\r\nc UID FETCH 1:* (FLAGS)\r\n'
                         b'd LOGOUT\r\n')
        times = [t for t, _ in sessions[0].timed_commands]
        self.assertEqual(times, sorted(times))

    def test_pop3_retr_dot_lines(self):
        s = self.server
        raw = corpus.dot_lines_message()
        s.append('bob', 'INBOX', raw)
        p = s.pop3('bob')
        count, _ = p.stat()
        _, lines, _ = p.retr(count)
        p.quit()
        self.assertEqual(b'\r\n'.join(lines) + b'\r\n', raw)


class RestartTest(unittest.TestCase):
    """restart() keeps ports and mail but applies new settings."""

    def test_restart_changes_capabilities(self):
        with MailServer(pop3=False) as s:
            uid = s.append('alice', 'INBOX', corpus.text_message(1))
            port = s.imap_port
            s.restart(imap_capability='IMAP4rev1 LITERAL+ IDLE UIDPLUS')
            self.assertEqual(s.imap_port, port)
            with s.wire('alice') as w:
                self.assertNotIn('MOVE', w.capabilities)
                self.assertIn('UIDPLUS', w.capabilities)
            self.assertEqual(s.folder_uids('alice', 'INBOX'), [uid])
            s.restart(imap_capability=None)
            with s.wire('alice') as w:
                self.assertIn('MOVE', w.capabilities)
            tmp = s.tmpdir
        self.assertFalse(os.path.exists(tmp))

    def test_stop_disconnects_and_kill_crashes(self):
        import imaplib
        with MailServer(pop3=False) as s:
            m = s.imap('alice', tls='plain')
            t0 = time.monotonic()
            s.stop()
            self.assertLess(time.monotonic() - t0, 3)
            with self.assertRaises(imaplib.IMAP4.abort):
                m.noop()
            m.shutdown()
            s.start()
            m = s.imap('alice')
            s.kill()
            with self.assertRaises((imaplib.IMAP4.abort, OSError)):
                m.noop()
            m.shutdown()
            s.start()
            s.imap('alice').logout()

    def test_set_password(self):
        import imaplib
        with MailServer(pop3=False) as s:
            s.set_password('alice', 'changed')
            s.imap('alice').logout()
            with self.assertRaises(imaplib.IMAP4.error):
                s.imap('alice', password='wrong')
            s.set_password('carol', 'new user')
            s.imap('carol', tls='plain').logout()


class CorpusTest(unittest.TestCase):
    """Generators are deterministic and populate_standard is consistent."""

    def test_generators(self):
        self.assertEqual(corpus.text_message(5), corpus.text_message(5))
        self.assertNotEqual(corpus.text_message(5), corpus.text_message(6))
        for i in range(40):
            raw = corpus.text_message(i)
            self.assertEqual(b'invoice' in raw.lower(), corpus.has_invoice(i))
            self.assertNotIn(b'\n', raw.replace(b'\r\n', b''))
        self.assertEqual(len(corpus.text_message(3, size=4096)), 4096)
        self.assertTrue(corpus.empty_body_message().endswith(b'\r\n\r\n'))
        self.assertIn(b'\x00', corpus.binary_message())
        self.assertIn(b'Content-Transfer-Encoding: 8bit',
                      corpus.eightbit_message())
        big = corpus.big_message(2 * 1024 * 1024)
        self.assertLess(abs(len(big) - 2 * 1024 * 1024), 2000)

    def test_populate_standard_slash_separator(self):
        with MailServer(separator='/', pop3=False) as s:
            d = corpus.populate_standard(s, 'alice', big=False)
            names = d['names']
            self.assertEqual(names['archive_2024'], 'Archive/2024')
            folders = set(s.list_folders('alice'))
            self.assertLessEqual(set(names.values()), folders)
            self.assertEqual(len(d['folders']['INBOX']), 30)
            self.assertEqual(d['folders'][names['empty']], {})
            for folder, msgs in d['folders'].items():
                got = s.fetch_all('alice', folder)
                self.assertEqual(set(got), set(msgs), folder)
                for uid, raw in msgs.items():
                    self.assertEqual(got[uid], corpus.dovecot_view(raw))
                    self.assertEqual(b'invoice' in raw.lower(),
                                     uid in d['invoice'][folder])
            flags = s.flags('alice', 'INBOX')
            for uid, expected in d['flags']['INBOX'].items():
                self.assertLessEqual(expected, flags[uid])
            # '.' is allowed inside a name with the '/' separator.
            s.create_folder('alice', 'v1.2')
            self.assertIn('v1.2', s.list_folders('alice'))


class DemoCorpusTest(unittest.TestCase):
    """The mail of `make demo` looks like mail in use: every message's
    INTERNALDATE is its Date header, in the past, and they are spread over
    years (they used to share the moment of the APPEND, with Date headers
    years ahead, so names sorted by size and POP3 file times lay in the
    future)."""

    def test_demo_dates(self):
        with MailServer(separator='/', pop3=False) as s:
            counts = corpus.populate_demo(s, 'alice')
            now = datetime.datetime.now(datetime.timezone.utc)
            every = []
            with s.wire('alice') as w:
                for folder, n in counts.items():
                    w.command(b'EXAMINE', quote(mutf7_encode(folder)))
                    rows = []
                    if n:
                        untagged, _ = w.command(
                            b'UID FETCH 1:* (UID INTERNALDATE '
                            b'BODY.PEEK[HEADER.FIELDS (DATE)])')
                        for resp in untagged:
                            parsed = fetch_items(resp)
                            if parsed is None:
                                continue
                            data = parsed[1]
                            hdr = [v for k, v in data.items()
                                   if k.startswith('BODY[HEADER.FIELDS')]
                            rows.append((int(data['UID']),
                                         str(data['INTERNALDATE']),
                                         bytes(hdr[0]).decode()))
                    self.assertEqual(len(rows), n, folder)
                    dates = []
                    for uid, internal, header in sorted(rows):
                        got = datetime.datetime.strptime(
                            internal.strip(), '%d-%b-%Y %H:%M:%S %z')
                        want = email.utils.parsedate_to_datetime(
                            header.split(':', 1)[1].strip())
                        self.assertEqual(got, want, (folder, uid, header))
                        self.assertLess(got, now, (folder, uid))
                        dates.append(got)
                    # Appended oldest first, as mail arrives: names sort
                    # by date, and no two messages share one.
                    self.assertEqual(dates, sorted(dates), folder)
                    self.assertEqual(len(set(dates)), n, folder)
                    every += dates
            self.assertGreater(max(every) - min(every),
                               datetime.timedelta(days=2 * 365))
            self.assertLess(now - min(every), datetime.timedelta(days=5 * 365))
            self.assertLess(now - max(every), datetime.timedelta(days=30))


class ProxyTest(unittest.TestCase):
    """Latency emulation and fault injection in front of Dovecot."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True, pop3=False).start()
        cls.pw = cls.server.users['alice']

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def proxy(self, rtt_ms=0, port=None):
        p = Proxy(port or self.server.imap_port, rtt_ms=rtt_ms).start()
        self.addCleanup(p.stop)
        return p

    def test_forwards_bytes_exactly(self):
        def echo(conn):
            while True:
                data = conn.sock.recv(65536)
                if not data:
                    return
                conn.send(data)
        with FakeServer(echo) as fake:
            p = self.proxy(port=fake.port)
            payload = os.urandom(1 << 20)
            with socket.create_connection(('127.0.0.1', p.port)) as c:
                c.sendall(payload)
                c.shutdown(socket.SHUT_WR)
                got = b''
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            self.assertEqual(got, payload)
            self.assertEqual(p.bytes_up, len(payload))
            self.assertEqual(p.bytes_down, len(payload))
            self.assertEqual(p.connections, 1)

    def test_tls_passes_through(self):
        p = self.proxy(port=self.server.imaps_port)
        c = RawImap(p.port, 'alice', self.pw,
                    context=self.server.ssl_context())
        c.send(b'a NOOP\r\n')
        self.assertIn(b'OK', c.until(b'a '))
        c.close()

    def test_pipelining_costs_one_rtt_sequential_costs_n(self):
        rtt = RTT_MS / 1000.0
        p = self.proxy(rtt_ms=RTT_MS)
        c = RawImap(p.port, 'alice', self.pw)
        # 20 pipelined NOOPs: about one RTT in total.
        t0 = time.monotonic()
        c.send(b''.join(b'n%d NOOP\r\n' % i for i in range(20)))
        c.until(b'n19 ')
        pipelined = time.monotonic() - t0
        # 5 commands, each waiting for its answer: at least 5 RTT.
        t0 = time.monotonic()
        for i in range(5):
            c.send(b's%d NOOP\r\n' % i)
            c.until(b's%d ' % i)
        sequential = time.monotonic() - t0
        c.close()
        self.assertGreaterEqual(pipelined, rtt * 0.95)
        self.assertLess(pipelined, 5 * rtt)
        self.assertGreaterEqual(sequential, 5 * rtt * 0.95)
        self.assertLess(sequential, 10 * rtt)

    def test_set_rtt(self):
        p = self.proxy(rtt_ms=0)
        c = RawImap(p.port, 'alice', self.pw)
        t0 = time.monotonic()
        c.send(b'a NOOP\r\n')
        c.until(b'a ')
        self.assertLess(time.monotonic() - t0, 0.1)
        p.set_rtt(300)
        t0 = time.monotonic()
        c.send(b'b NOOP\r\n')
        c.until(b'b ')
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        c.close()

    def test_cut_before_forwarding(self):
        s = self.server
        p = self.proxy()
        rule = p.cut_when('up', b'CutBefore')
        c = RawImap(p.port, 'alice', self.pw)
        c.send(b'a NOOP\r\n')
        c.until(b'a ')
        c.send(b'b CREATE CutBefore\r\n')
        self.assertTrue(rule.wait(5))
        self.assertEqual(c.line(), b'')         # EOF, no reply
        c.close()
        self.assertNotIn('CutBefore', s.list_folders('alice'))
        self.assertEqual(rule.count, 1)

    def test_cut_after_forwarding(self):
        s = self.server
        p = self.proxy()
        rule = p.cut_when('c2s', b'CREATE CutAfter', after=True)
        c = RawImap(p.port, 'alice', self.pw)
        c.send(b'b CREATE CutAfter\r\n')
        self.assertEqual(c.line(), b'')         # client never sees OK
        c.close()
        self.assertTrue(rule.fired.is_set())
        # ... but the server did execute the command.
        deadline = time.monotonic() + 3
        while 'CutAfter' not in s.list_folders('alice'):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def test_cut_server_to_client(self):
        p = self.proxy()
        rule = p.cut_when('down', b'Logged in')
        c = RawImap(p.port)
        c.send(b'a LOGIN alice %s\r\n' % self.pw.encode())
        self.assertEqual(c.line(), b'')
        c.close()
        self.assertTrue(rule.fired.is_set())
        # One-shot: the next connection works.
        RawImap(p.port, 'alice', self.pw).close()

    def test_stall_and_unstall(self):
        p = self.proxy()
        c = RawImap(p.port, 'alice', self.pw)
        p.stall()
        c.send(b'a NOOP\r\n')
        c.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            c.line()
        c.sock.settimeout(5)
        p.unstall()
        self.assertIn(b'OK', c.until(b'a '))
        c.close()

    def test_drop_all_and_refuse(self):
        p = self.proxy()
        a = RawImap(p.port, 'alice', self.pw)
        b = RawImap(p.port, 'alice', self.pw)
        self.assertEqual(p.drop_all(), 2)
        self.assertEqual(a.line(), b'')
        self.assertEqual(b.line(), b'')
        a.close()
        b.close()
        p.refuse()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(('127.0.0.1', p.port), timeout=2)
        p.refuse(False)
        RawImap(p.port, 'alice', self.pw).close()


class FakeServerTest(unittest.TestCase):
    """The scripted server: scripts, handlers and TLS."""

    def test_script_with_tag(self):
        script = [
            (None, b'* OK fake ready\r\n'),
            (rb'^(?P<tag>\S+) CAPABILITY',
             b'* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n'),
            (rb'^(?P<tag>\S+) LOGOUT', b'* BYE\r\n{tag} OK bye\r\n'),
        ]
        with FakeServer(script=script, close_after_script=True) as fake:
            import imaplib
            m = imaplib.IMAP4('127.0.0.1', fake.port)
            self.assertIn('AUTH=PLAIN', m.capabilities)
            m.logout()
            self.assertEqual(fake.errors, [])
            self.assertTrue(any(b'CAPABILITY' in l for l in fake.received))

    def test_handler_with_implicit_tls_and_endless_literal(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(__import__('shutil').rmtree, tmp)
        ca = CertAuthority(tmp)

        def handler(conn):
            conn.send(b'* OK hi\r\n')
            line = conn.recv_line()
            tag = line.split()[0]
            conn.send(b'* 1 FETCH (BODY[] {999999999}\r\n')
            for _ in range(10):
                if not conn.send(b'x' * 1000):
                    return
            conn.send(tag + b' OK never really\r\n')

        with FakeServer(handler, tls='implicit', cert=ca.issue()) as fake:
            ctx = ssl.create_default_context(cafile=ca.cafile)
            c = RawImap(fake.port, context=ctx)
            self.assertEqual(c.greeting, b'* OK hi\r\n')
            c.send(b'a FETCH 1 BODY[]\r\n')
            self.assertTrue(c.line().endswith(b'{999999999}\r\n'))
            c.close()

    def test_starttls_handler(self):
        import imaplib
        tmp = tempfile.mkdtemp()
        self.addCleanup(__import__('shutil').rmtree, tmp)
        ca = CertAuthority(tmp)

        def handler(conn):
            conn.send(b'* OK hi\r\n')
            caps = b'IMAP4rev1 STARTTLS'
            while True:
                line = conn.recv_line()
                if not line:
                    return
                tag, verb = line.split()[:2]
                if verb.upper() == b'STARTTLS':
                    conn.send(tag + b' OK begin TLS\r\n')
                    conn.starttls()
                    caps = b'IMAP4rev1 AUTH=PLAIN'
                else:
                    conn.send(b'* CAPABILITY ' + caps + b'\r\n' +
                              tag + b' OK done\r\n')

        with FakeServer(handler, tls='starttls', cert=ca.issue()) as fake:
            m = imaplib.IMAP4('localhost', fake.port)
            m.starttls(ssl.create_default_context(cafile=ca.cafile))
            self.assertIn('AUTH=PLAIN', m.capabilities)
            m.shutdown()
            self.assertEqual(fake.errors, [])


if __name__ == '__main__':
    unittest.main()
