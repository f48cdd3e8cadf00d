"""FOLDER/.parts/NAME/PART and FOLDER/.summary against the real Dovecot:
decoded text and html, attachments byte for byte, only the part's
section fetched when a part is read, the summary decoded and sorted, and
none of the virtual names ever seen by tools that walk the mount."""

import errno
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

CRLF = b'\r\n'
FOLDER = 'Parts'


def message(headers, body):
    """A message from header lines (str) and a body (bytes)."""
    return CRLF.join(h.encode() for h in headers) + CRLF + CRLF + body


QP_LATIN1 = message([
    'From: =?ISO-8859-1?Q?Andr=E9_D=FCrr?= <andre@example.org>',
    'To: alice@example.org',
    'Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= =?ISO-8859-1?Q?_br=FBl=E9e?=',
    'Date: Mon, 04 Mar 2024 10:00:00 +0000',
    'Message-ID: <qp-latin1@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: quoted-printable'],
    b'Caf=E9 cr=E8me br=FBl=E9e, tr=E8s bien.\r\n'
    b'A long line that is cut by a soft line break here=\r\n'
    b' and goes on.\r\n'
    b'Prix: 5=A4 =3D cinq euros\r\n')
QP_LATIN1_TEXT = ('Café crème brûlée, très bien.\n'
                  'A long line that is cut by a soft line break here'
                  ' and goes on.\n'
                  'Prix: 5\u00a4 = cinq euros\n')

B64_TEXT = ('Grüße aus Köln — 日本語のテキスト.\r\n'
            'Second line: \U0001F4EC\r\n')
B64_UTF8 = message([
    'From: "Jörg" <joerg@example.org>',
    'To: alice@example.org',
    'Subject: =?UTF-8?B?R3LDvMOfZQ==?= from Cologne',
    'Date: Tue, 05 Mar 2024 11:00:00 +0000',
    'Message-ID: <b64-utf8@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset="UTF-8"',
    'Content-Transfer-Encoding: base64'],
    corpus._b64_lines(B64_TEXT.encode()))

HTML_BODY = ('<html><body><p>Only <b>HTML</b> here: '
             'na&iuml;ve caf\u00e9</p></body></html>\r\n')
HTML_ONLY = message([
    'From: news@example.org',
    'To: alice@example.org',
    'Subject: Newsletter\tof\x7f the week',
    'Date: Wed, 06 Mar 2024 12:00:00 +0000',
    'Message-ID: <html-only@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: 8bit'],
    HTML_BODY.encode())


BROKEN = message([
    'From: broken@example.org',
    'Subject: broken attachment',
    'Message-ID: <broken@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"'],
    b'--b\r\nContent-Type: text/plain\r\n\r\nstill readable\r\n'
    b'--b\r\nContent-Type: application/octet-stream; name="bad.bin"\r\n'
    b'Content-Transfer-Encoding: base64\r\n\r\n'
    b'@@@@ this is === not base64 !!!!\r\nQUJD\r\n--b--\r\n')


def raw_header(raw):
    return raw[:raw.index(CRLF + CRLF) + 4]


def last_lines(data, n=2):
    """What tail -n n prints of data (lines end at LF)."""
    lines = data.split(b'\n')
    end = data.endswith(b'\n')
    if end:
        lines = lines[:-1]
    return b'\n'.join(lines[-n:]) + (b'\n' if end else b'') if data else b''


class PartsTest(unittest.TestCase):
    """alice's folder Parts holds a quoted-printable latin-1 message, a
    base64 UTF-8 one, an HTML-only one, one with a 50 kB attachment and
    one with a 1 MB attachment; a folder named .summary holds one more."""

    # what the server advertises (None: Dovecot's own, with BINARY)
    capability = None
    binary = True

    @classmethod
    def setUpClass(cls):
        cls.server = s = MailServer(separator='/', rawlog=True,
                                    imap_capability=cls.capability).start()
        cls.addClassCleanup(s.cleanup)
        cls.addClassCleanup(s.stop)
        cls.raw = {
            'qp': QP_LATIN1,
            'b64': B64_UTF8,
            'html': HTML_ONLY,
            'att': corpus.attachment_message(50000, 0),
            'big': corpus.attachment_message(1000000, 1),
            'broken': BROKEN,
        }
        cls.uid = {}
        for k in ('qp', 'b64', 'html', 'att', 'big', 'broken'):
            cls.uid[k] = s.append('alice', FOLDER, cls.raw[k],
                                  flags='\\Seen' if k == 'b64' else '')
        s.append('alice', '.summary', corpus.text_message(7))
        cls.tmp = tempfile.mkdtemp(prefix='mailfs-parts-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cache = os.path.join(cls.tmp, 'cache')
        os.mkdir(cache)
        cls.m = Mount('imaps://alice@localhost:%d' % s.imaps_port,
                      s.users['alice'], cafile=s.cafile,
                      env={'XDG_CACHE_HOME': cache})
        cls.m.start()
        cls.addClassCleanup(cls.m.umount)
        cls.name = {}
        folder = cls.m.p(FOLDER)
        for n in os.listdir(folder):
            uid = int(os.getxattr(os.path.join(folder, n), 'user.mail.uid'))
            for k, u in cls.uid.items():
                if u == uid:
                    cls.name[k] = n

    def part(self, kind, part):
        return self.m.p(FOLDER, '.parts', self.name[kind], part)

    def read(self, path):
        with open(path, 'rb') as f:
            return f.read()

    def imap_headers(self):
        """{kind: BODY.PEEK[HEADER] of that message}, with imaplib."""
        c = self.server.imap('alice')
        try:
            self.assertEqual(c.select(FOLDER, readonly=True)[0], 'OK')
            out = {}
            for k, uid in self.uid.items():
                typ, data = c.uid('FETCH', str(uid), '(BODY.PEEK[HEADER])')
                self.assertEqual(typ, 'OK')
                out[k] = data[0][1]
            return out
        finally:
            c.logout()

    def tools_agree(self, path, size):
        """Checks that a read, wc -c <, tail -n 2 and cp of path agree
        with size, the one the first stat showed; returns the bytes."""
        data = self.read(path)
        self.assertEqual(len(data), size, path)
        wc = subprocess.run(['sh', '-c', 'wc -c < "$1"', 'sh', path],
                            capture_output=True, check=True).stdout
        self.assertEqual(int(wc), size, path)
        tail = subprocess.run(['tail', '-n', '2', path],
                              capture_output=True, check=True).stdout
        self.assertEqual(tail, last_lines(data), path)
        copy = os.path.join(tempfile.mkdtemp(dir=self.tmp), 'copy')
        subprocess.run(['cp', path, copy], check=True)
        with open(copy, 'rb') as f:
            self.assertEqual(f.read(), data, path)
        return data

    def test_part_sizes_are_exact_at_the_first_stat(self):
        # The kernel cuts reads at the size it was told first. header
        # showed the whole message's size (ls -l 48,189 for a 329-byte
        # header: wc -c said 48189, tail -n 2 printed nothing), text and
        # html (and encoded attachments without BINARY) an upper bound.
        # On a fresh mount every part's size is exact from the first
        # look, whether a listing (ls -l) or a stat comes first; the
        # header is the server's BODY[HEADER], byte for byte.
        headers = self.imap_headers()
        s = self.server
        for first in ('ls', 'stat'):
            cache = tempfile.mkdtemp(dir=self.tmp)
            with Mount('imaps://alice@localhost:%d' % s.imaps_port,
                       s.users['alice'], cafile=s.cafile,
                       env={'XDG_CACHE_HOME': cache}) as m:
                for k in sorted(self.uid):
                    d = m.p(FOLDER, '.parts', self.name[k])
                    listed = {}
                    if first == 'ls':
                        r = subprocess.run(
                            ['ls', '-ln', '--time-style=+X', d],
                            capture_output=True, text=True)
                        self.assertEqual(r.returncode, 0, r.stderr)
                        out = r.stdout
                        for line in out.splitlines()[1:]:
                            f = line.split(None, 6)
                            listed[f[6]] = int(f[4])
                        parts = sorted(listed)
                    else:
                        parts = sorted(os.listdir(d))
                    self.assertIn('header', parts)
                    for part in parts:
                        path = os.path.join(d, part)
                        size = int(subprocess.run(
                            ['stat', '-c', '%s', path], capture_output=True,
                            text=True, check=True).stdout)
                        if first == 'ls':
                            self.assertEqual(listed[part], size, path)
                        data = self.tools_agree(path, size)
                        if part == 'header':
                            self.assertEqual(data, headers[k])
                            self.assertEqual(data, raw_header(self.raw[k]))

    def test_text_of_quoted_printable_latin1_is_utf8_with_lf(self):
        self.assertEqual(self.read(self.part('qp', 'text')).decode(),
                         QP_LATIN1_TEXT)

    def test_text_of_base64_utf8(self):
        self.assertEqual(self.read(self.part('b64', 'text')).decode(),
                         B64_TEXT.replace('\r\n', '\n'))

    def test_html_only_message_has_html_and_no_text(self):
        d = self.m.p(FOLDER, '.parts', self.name['html'])
        self.assertEqual(sorted(os.listdir(d)), ['header', 'html'])
        self.assertEqual(self.read(os.path.join(d, 'html')).decode(),
                         HTML_BODY.replace('\r\n', '\n'))
        with self.assertRaises(FileNotFoundError):
            open(os.path.join(d, 'text'), 'rb')

    def test_header_is_the_raw_header_block(self):
        self.assertEqual(self.read(self.part('qp', 'header')),
                         raw_header(QP_LATIN1))

    def test_attachment_is_byte_identical(self):
        d = self.m.p(FOLDER, '.parts', self.name['att'])
        self.assertEqual(sorted(os.listdir(d)),
                         ['data-0.bin', 'header', 'text'])
        data = self.read(os.path.join(d, 'data-0.bin'))
        self.assertEqual(data, corpus.attachment_payload(50000, 0))
        # exact before any read (with BINARY from BINARY.SIZE, without
        # it read whole at the first stat)
        self.assertEqual(os.stat(os.path.join(d, 'data-0.bin')).st_size,
                         50000)
        with open(os.path.join(d, 'data-0.bin'), 'rb') as f:
            f.read()
            self.assertEqual(os.fstat(f.fileno()).st_size, 50000)
        self.assertEqual(self.read(os.path.join(d, 'text')),
                         b'Hello, the file is attached.\n')

    def test_reading_the_text_fetches_only_its_section(self):
        s = self.server
        d = self.m.p(FOLDER, '.parts', self.name['big'])
        s.clear_rawlog('alice')
        self.assertIn('data-1.bin', os.listdir(d))
        self.assertEqual(self.read(os.path.join(d, 'text')),
                         b'Hello, the file is attached.\n')
        sessions = s.rawlog_sessions('alice', 'imap')
        cmds = [c for sess in sessions for c in sess.commands]
        fetches = [c for c in cmds if 'FETCH' in c.upper()]
        self.assertTrue(fetches, cmds)
        for c in fetches:
            u = c.upper()
            self.assertNotIn('BODY.PEEK[]', u, c)
            self.assertNotIn('[2]', u.replace('SIZE[2]', ''), c)
        self.assertTrue(any('[1]' in c for c in fetches), fetches)
        down = sum(sess.bytes_out for sess in sessions)
        self.assertLess(down, 100000, fetches)

    def test_reading_an_attachment_fetches_only_its_section(self):
        s = self.server
        path = self.part('big', 'data-1.bin')
        s.clear_rawlog('alice')
        self.assertEqual(self.read(path), corpus.attachment_payload(1000000, 1))
        cmds = [c for sess in s.rawlog_sessions('alice', 'imap')
                for c in sess.commands if 'FETCH' in c.upper()]
        self.assertTrue(cmds)
        for c in cmds:
            self.assertNotIn('BODY.PEEK[]', c.upper(), c)
            self.assertNotIn('[1]', c, c)

    def test_binary_is_used_only_where_offered(self):
        s = self.server
        s.clear_rawlog('alice')
        self.read(self.part('att', 'data-0.bin'))
        self.read(self.part('b64', 'text'))
        cmds = [c for sess in s.rawlog_sessions('alice', 'imap')
                for c in sess.commands if 'FETCH' in c.upper()]
        used = any('BINARY.PEEK' in c.upper() for c in cmds)
        self.assertEqual(used, self.binary, cmds)

    def test_broken_encoding_gives_bytes_or_eio(self):
        d = self.m.p(FOLDER, '.parts', self.name['broken'])
        self.assertEqual(sorted(os.listdir(d)), ['bad.bin', 'header', 'text'])
        try:
            self.read(os.path.join(d, 'bad.bin'))
        except OSError as e:
            self.assertEqual(e.errno, errno.EIO)
        self.assertEqual(self.read(os.path.join(d, 'text')),
                         b'still readable')
        self.assertEqual(len(os.listdir(self.m.p(FOLDER))), len(self.uid))

    def test_parts_lists_every_message_as_a_directory(self):
        d = self.m.p(FOLDER, '.parts')
        self.assertEqual(sorted(os.listdir(d)),
                         sorted(os.listdir(self.m.p(FOLDER))))
        self.assertTrue(os.path.isdir(os.path.join(d, self.name['qp'])))

    def test_unknown_names_are_enoent(self):
        for p in (self.m.p(FOLDER, '.parts', 'nosuch.eml'),
                  self.part('qp', 'nosuch'),
                  self.part('qp', 'html'),
                  self.m.p('NoFolder', '.summary'),
                  self.m.p(FOLDER, '.parts', 'nosuch.eml', 'text')):
            with self.assertRaises(FileNotFoundError, msg=p):
                os.stat(p)

    def summary_lines(self):
        with open(self.m.p(FOLDER, '.summary'), 'rb') as f:
            return f.read().decode().split('\n')

    def test_summary_is_decoded_sorted_one_line_per_message(self):
        lines = self.summary_lines()
        self.assertEqual(lines[-1], '')
        lines = lines[:-1]
        names = sorted(os.listdir(self.m.p(FOLDER)))
        self.assertEqual([l.split('\t')[0] for l in lines], names)
        by = {l.split('\t')[0]: l.split('\t') for l in lines}
        for fields in by.values():
            self.assertEqual(len(fields), 6, fields)
        qp = by[self.name['qp']]
        self.assertEqual(qp[4], 'André Dürr <andre@example.org>')
        self.assertEqual(qp[5], 'Café crème brûlée')
        self.assertRegex(qp[1], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        self.assertEqual(qp[3], str(len(QP_LATIN1)))
        b64 = by[self.name['b64']]
        self.assertEqual(b64[4], 'Jörg <joerg@example.org>')
        self.assertEqual(b64[5], 'Grüße from Cologne')
        self.assertEqual(b64[2], '\\Seen')
        html = by[self.name['html']]
        self.assertEqual(html[4], 'news@example.org')
        self.assertEqual(html[5], 'Newsletter of  the week')
        st = os.stat(self.m.p(FOLDER, '.summary'))
        self.assertTrue(st.st_mode & 0o444)

    def test_summary_fetches_envelopes_in_one_command(self):
        s = self.server
        s.clear_rawlog('alice')
        self.summary_lines()
        cmds = [c for sess in s.rawlog_sessions('alice', 'imap')
                for c in sess.commands if 'ENVELOPE' in c.upper()]
        self.assertEqual(len(cmds), 1, cmds)
        self.assertIn('1:*', cmds[0])

    def test_virtual_names_are_never_listed(self):
        out = subprocess.run(['find', self.m.path], capture_output=True,
                             text=True, check=True).stdout
        for name in ('.parts', '.summary', '.search'):
            self.assertNotIn('/' + name, out)
        self.assertIn('%2Esummary', out)
        for name in ('.parts', '.summary', '.search'):
            self.assertNotIn(name, os.listdir(self.m.p(FOLDER)))
            self.assertNotIn(name, os.listdir(self.m.path))
        dest = tempfile.mkdtemp(dir=self.tmp)
        subprocess.run(['rsync', '-a', self.m.path + '/', dest + '/'],
                       check=True, capture_output=True)
        for root, dirs, files in os.walk(dest):
            for n in dirs + files:
                self.assertNotIn(n, ('.parts', '.summary', '.search'))
        tar = subprocess.run(['tar', '-cvf', '/dev/null', '-C', self.m.path,
                              '.'], capture_output=True, text=True,
                             check=True).stdout
        self.assertNotIn('/.parts', tar)
        self.assertNotIn('/.summary', tar)

    def test_writes_on_virtual_paths_fail_with_erofs(self):
        summary = self.m.p(FOLDER, '.summary')
        text = self.part('qp', 'text')
        attempts = [
            lambda: open(summary, 'wb'),
            lambda: open(text, 'ab'),
            lambda: open(self.m.p(FOLDER, '.parts', 'new.eml'), 'wb'),
            lambda: os.mkdir(self.m.p(FOLDER, '.parts', 'x')),
            lambda: os.mkdir(self.m.p(FOLDER, '.search')),
            lambda: os.unlink(text),
            lambda: os.rmdir(self.m.p(FOLDER, '.parts', self.name['qp'])),
            lambda: os.rename(text, self.m.p(FOLDER, 'x.eml')),
            lambda: os.rename(self.m.p(FOLDER, self.name['qp']),
                              self.m.p(FOLDER, '.parts', 'y')),
            lambda: os.setxattr(summary, 'user.mail.flags', b'\\Seen'),
            lambda: os.truncate(text, 0),
            lambda: os.utime(summary, (0, 0)),
            lambda: os.chmod(summary, 0o600),
        ]
        for i, attempt in enumerate(attempts):
            with self.assertRaises(OSError, msg=str(i)) as cm:
                attempt()
            # .search exists (any query can be looked up), so the kernel
            # answers mkdir with EEXIST before asking mailfs.
            want = (errno.EEXIST,) if i == 4 else (errno.EROFS,)
            self.assertIn(cm.exception.errno, want, str(i))
        # nothing was stored or removed
        self.assertEqual(len(self.server.folder_uids('alice', FOLDER)),
                         len(self.uid))

    def test_maildir_layout_has_them_in_cur(self):
        s = self.server
        cache = tempfile.mkdtemp(dir=self.tmp)
        with Mount('imaps://alice@localhost:%d' % s.imaps_port,
                   s.users['alice'], cafile=s.cafile,
                   options=['layout=maildir'],
                   env={'XDG_CACHE_HOME': cache}) as m:
            cur = m.p(FOLDER, 'cur')
            names = sorted(os.listdir(cur))
            with open(os.path.join(cur, '.summary'), 'rb') as f:
                lines = f.read().decode().split('\n')[:-1]
            self.assertEqual([l.split('\t')[0] for l in lines], names)
            qp = [n for n in names
                  if n.startswith(self.name['qp'][:-len('.eml')] + ',')]
            self.assertEqual(len(qp), 1, names)
            with open(os.path.join(cur, '.parts', qp[0], 'text'), 'rb') as f:
                self.assertEqual(f.read().decode(), QP_LATIN1_TEXT)
            with self.assertRaises(FileNotFoundError):
                os.stat(m.p(FOLDER, '.summary'))  # no messages there

    def test_server_folder_named_summary_is_escaped(self):
        names = os.listdir(self.m.path)
        self.assertIn('%2Esummary', names)
        self.assertNotIn('.summary', names)
        inner = os.listdir(self.m.p('%2Esummary'))
        self.assertEqual(len(inner), 1)
        self.assertEqual(self.read(self.m.p('%2Esummary', inner[0])),
                         corpus.text_message(7))
        # and it has a summary of its own
        with open(self.m.p('%2Esummary', '.summary'), 'rb') as f:
            self.assertEqual(f.read().decode().split('\t')[0], inner[0])


class NoBinaryPartsTest(PartsTest):
    """The same against a server that does not offer BINARY: mailfs
    fetches BODY.PEEK[section] and decodes base64 and quoted-printable
    itself."""
    capability = ('IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS MOVE '
                  'CONDSTORE QRESYNC ESEARCH SPECIAL-USE LIST-EXTENDED')
    binary = False


def _leaf(i):
    return (b'("application" "octet-stream" ("name" "f.bin") NIL NIL '
            b'"base64" 10 NIL NIL NIL NIL)')


def _nested(depth):
    return (b'(' * depth + b'("text" "plain" NIL NIL NIL "7bit" 5 1)' +
            b' "mixed")' * depth)


# BODYSTRUCTUREs no real server sends, and what listing the message's
# .parts directory must give (None: an error, EIO).
HOSTILE = [
    (b'(' + b''.join(_leaf(i) for i in range(10000)) + b' "mixed")',
     1001),
    (_nested(20), 2),
    (_nested(40), None),  # deeper than mailfs takes
    (_nested(100), None),  # deeper than the parser takes
    (b'("text" "plain" NIL NIL NIL "7bit" 99999999999999999999999 1)', 2),
    (b'("application" "pdf")', 2),
    (b'(NIL NIL NIL NIL NIL NIL NIL)', 2),
    (b'NIL', None),
    (b'("text" "plain" ("charset" "\x01\x02") NIL NIL "x-y" -5 1 NIL '
     b'("attachment" ("filename" "../../etc/passwd")) NIL NIL)', 2),
]


class HostileStructureTest(unittest.TestCase):
    """A scripted server sends hostile BODYSTRUCTUREs and ENVELOPEs:
    mailfs lists what it can, or fails with EIO, within its timeout, and
    the mount goes on working."""

    def test_hostile_bodystructures(self):
        from tests.integration.test_robustness import FakeImap, fake_name
        for body, want in HOSTILE:
            def misbehave(conn, tag, cmd, body=body):
                if b'BODYSTRUCTURE' in cmd.upper():
                    conn.send(b'* 1 FETCH (UID 7 BODYSTRUCTURE ' + body +
                              b')\r\n' + tag + b' OK\r\n')
                    return True
                if b'ENVELOPE' in cmd.upper():
                    conn.send(b'* 1 FETCH (UID 7 FLAGS (\\Seen) '
                              b'RFC822.SIZE 5 INTERNALDATE "x" ENVELOPE '
                              b'(NIL (1 2) ((NIL))))\r\n' + tag +
                              b' OK\r\n')
                    return True
                return False
            with FakeImap(misbehave) as fake:
                m = Mount(fake.url, 'pw', options=['tls=none', 'timeout=3'])
                self.addCleanup(m.umount)
                m.start()
                d = m.p('INBOX', '.parts', fake_name())
                if want is None:
                    with self.assertRaises(OSError) as cm:
                        os.listdir(d)
                    self.assertEqual(cm.exception.errno, errno.EIO)
                else:
                    names = os.listdir(d)
                    self.assertEqual(len(names), want, body[:80])
                    self.assertEqual(len(set(names)), len(names))
                    for n in names:
                        self.assertNotIn('/', n)
                        os.stat(os.path.join(d, n))
                with open(m.p('INBOX', '.summary'), 'rb') as f:
                    self.assertEqual(f.read(),
                                     fake_name().encode() +
                                     b'\t1970-01-01T00:00:00Z\t\\Seen\t5'
                                     b'\t\t\n')
                self.assertEqual(os.listdir(m.p('INBOX')), [fake_name()])
                m.umount()


class Pop3PartsTest(unittest.TestCase):
    """A POP3 mount has no .parts and no .summary."""

    def test_pop3_has_no_parts_or_summary(self):
        with MailServer() as s:
            s.append('alice', 'INBOX', corpus.text_message(3))
            tmp = tempfile.mkdtemp(prefix='mailfs-parts-pop3-')
            self.addCleanup(shutil.rmtree, tmp, True)
            with Mount('pop3s://alice@localhost:%d' % s.pop3s_port,
                       s.users['alice'], cafile=s.cafile,
                       options=['store=' + os.path.join(tmp, 'store')],
                       env={'XDG_CACHE_HOME': tmp}) as m:
                deadline = time.monotonic() + 15
                while not os.listdir(m.path) and time.monotonic() < deadline:
                    time.sleep(0.2)
                names = os.listdir(m.path)
                self.assertEqual(len(names), 1)
                for p in (m.p('.summary'), m.p('.parts'),
                          m.p('.parts', names[0]),
                          m.p('.parts', names[0], 'text')):
                    with self.assertRaises(FileNotFoundError, msg=p):
                        os.stat(p)


if __name__ == '__main__':
    unittest.main()
