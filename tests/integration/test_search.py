"""Server-side search through `.search`: FOLDER/.search/QUERY/ and
MNT/.search/QUERY/ list symlinks to the messages an IMAP UID SEARCH finds,
exactly those that an independent UID SEARCH (Python's imaplib) finds, for
ASCII and UTF-8 queries, in one folder and across the account; listing
fetches no body; a query is never sent verbatim (no second command can be
injected); a query the server refuses fails with EINVAL and its text in the
log; find never walks into .search."""

import errno
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.imapwire import mutf7_encode
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

USER = 'alice'
# A message only UTF-8 queries find: its subject is RFC 2047 encoded, its
# body 8-bit UTF-8.
UTF8_MSG = (
    'From: Jürgen Groß <jg@example.org>\r\n'
    'To: alice@example.org\r\n'
    'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n'
    'Date: Mon, 01 Apr 2024 10:00:00 +0000\r\n'
    'Message-ID: <utf8-search@example.org>\r\n'
    'MIME-Version: 1.0\r\n'
    'Content-Type: text/plain; charset=utf-8\r\n'
    'Content-Transfer-Encoding: 8bit\r\n'
    '\r\n'
    'Die Rechnung liegt in der Straße bei.\r\n').encode('utf-8')
# Body fetches (a listing fetches only the Message-ID header field).
BODY_FETCH = re.compile(
    r'BODY(\.PEEK)?\[(TEXT|\d[\d.]*|)\]|\bBINARY(\.PEEK)?\[|'
    r'\bRFC822(\.TEXT)?\b(?!\.SIZE)',
    re.I)


def mount_path(folder, sep='.'):
    return folder.replace(sep, '/')


class SearchTest(unittest.TestCase):
    """alice has the standard layout (nested folders, non-ASCII folder
    names) without the big message, plus UTF8_MSG in INBOX and in
    Archive/2024."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(rawlog=True).start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.layout = corpus.populate_standard(cls.server, USER, big=False)
        cls.server.append(USER, 'INBOX', UTF8_MSG)
        cls.server.append(USER, cls.layout['names']['archive_2024'],
                          UTF8_MSG)
        cls.cache = tempfile.mkdtemp(prefix='mailfs-search-cache-')
        cls.addClassCleanup(shutil.rmtree, cls.cache, True)
        cls.m = Mount('imaps://%s@localhost:%d' % (USER,
                                                   cls.server.imaps_port),
                      cls.server.users[USER], cafile=cls.server.cafile,
                      foreground=True, env={'XDG_CACHE_HOME': cls.cache})
        cls.m.start()
        cls.addClassCleanup(cls.m.umount)

    # What an independent client finds.

    def server_search(self, folder, args, literal=None):
        """UIDs that imaplib's UID SEARCH finds in folder."""
        imap = self.server.imap(USER)
        try:
            typ, _ = imap.select('"%s"' % mutf7_encode(folder),
                                 readonly=True)
            if typ != 'OK':
                return None
            if literal is not None:
                imap.literal = literal
            typ, data = imap.uid('SEARCH', *args)
            self.assertEqual(typ, 'OK')
            return {int(x) for x in data[0].split()}
        finally:
            imap.logout()

    def names_by_uid(self, folder):
        """uid -> file name in the mount's listing of folder."""
        d = self.m.p(mount_path(folder))
        return {int(os.getxattr(os.path.join(d, n), 'user.mail.uid')): n
                for n in os.listdir(d)
                if os.path.isfile(os.path.join(d, n))}

    def expected(self, folder, args, literal=None):
        uids = self.server_search(folder, args, literal)
        names = self.names_by_uid(folder)
        return {names[u] for u in uids}

    def links(self, top):
        """relative path -> target of every symlink below top."""
        out = {}
        for root, dirs, files in os.walk(top):
            for n in files + dirs:
                p = os.path.join(root, n)
                if os.path.islink(p):
                    out[os.path.relpath(p, top)] = os.readlink(p)
        return out

    def searchable(self):
        return [f for f in self.layout['folders']]

    # One folder.

    def test_folder_ascii_queries_match_uid_search(self):
        cases = [
            ('TEXT invoice', ['TEXT', 'invoice']),
            ('OR SEEN FLAGGED', ['OR', 'SEEN', 'FLAGGED']),
            ('NOT SEEN SUBJECT "invoice"',
             ['NOT', 'SEEN', 'SUBJECT', 'invoice']),
            ('since 1-jan-2000 LARGER 10', ['SINCE', '1-Jan-2000',
                                           'LARGER', '10']),
        ]
        for query, args in cases:
            with self.subTest(query=query):
                want = self.expected('INBOX', args)
                top = self.m.p('INBOX', '.search', query)
                self.assertTrue(os.path.isdir(top))
                got = self.links(top)
                self.assertEqual(set(got), want)
                self.assertTrue(want)
                for name, target in got.items():
                    self.assertEqual(target, '../../' + name)
        # A query matching nothing is an empty directory.
        self.assertEqual(os.listdir(self.m.p('INBOX', '.search',
                                             'SUBJECT zzqqxxnothing')), [])

    def test_folder_utf8_queries_match_uid_search(self):
        for key, word in [('SUBJECT', 'Grüße'), ('BODY', 'Straße'),
                          ('FROM', 'Groß')]:
            with self.subTest(key=key):
                want = self.expected('INBOX', ['CHARSET', 'UTF-8', key],
                                     literal=word.encode('utf-8'))
                self.assertTrue(want)
                top = self.m.p('INBOX', '.search', '%s %s' % (key, word))
                self.assertEqual(set(os.listdir(top)), want)

    def test_nested_folder(self):
        folder = self.layout['names']['archive_2024']
        want = self.expected(folder, ['SINCE', '1-Jan-2024'])
        self.assertTrue(want)
        top = self.m.p(mount_path(folder), '.search', 'SINCE 1-Jan-2024')
        self.assertEqual(set(self.links(top)), want)

    def test_slash_and_percent_are_decoded(self):
        want = self.expected('INBOX', ['OR', 'SUBJECT', 'a/b%c',
                                       'TEXT', 'invoice'])
        top = self.m.p('INBOX', '.search',
                       'OR SUBJECT a%2Fb%25c TEXT invoice')
        self.assertEqual(set(os.listdir(top)), want)

    # Across the account.

    def account_expected(self, args, literal=None):
        want = {}
        for folder in self.searchable():
            uids = self.server_search(folder, args, literal)
            if not uids:
                continue
            names = self.names_by_uid(folder)
            mp = mount_path(folder)
            for u in uids:
                want[mp + '/' + names[u]] = (
                    '../' * (3 + mp.count('/')) + mp + '/' + names[u])
        return want

    def test_account_wide_ascii(self):
        want = self.account_expected(['TEXT', 'invoice'])
        self.assertTrue(any(k.count('/') > 1 for k in want))  # nested
        got = self.links(self.m.p('.search', 'TEXT invoice'))
        self.assertEqual(got, want)
        # Folders without hits are absent.
        tops = set(os.listdir(self.m.p('.search', 'TEXT invoice')))
        self.assertEqual(tops, {k.split('/')[0] for k in want})
        self.assertNotIn('Empty', tops)

    def test_account_wide_utf8(self):
        want = self.account_expected(['CHARSET', 'UTF-8', 'SUBJECT'],
                                     literal='Köln'.encode('utf-8'))
        got = self.links(self.m.p('.search', 'SUBJECT Köln'))
        self.assertEqual(got, want)
        inbox = self.layout['names']['archive_2024']
        self.assertIn('INBOX', {k.split('/')[0] for k in got})
        self.assertIn(mount_path(inbox), {k.rsplit('/', 1)[0] for k in got})
        found = 0
        for rel in got:
            with open(self.m.p('.search', 'SUBJECT Köln', rel), 'rb') as f:
                data = f.read()
            with open(self.m.p(rel), 'rb') as f:
                self.assertEqual(data, f.read())
            found += data == UTF8_MSG
        self.assertEqual(found, 2)

    # Tools.

    def test_cat_grep_cp_on_results(self):
        top = self.m.p('INBOX', '.search', 'SUBJECT invoice')
        names = sorted(os.listdir(top))
        self.assertTrue(names)
        cat = subprocess.run(['cat', os.path.join(top, names[0])],
                             capture_output=True, check=True).stdout
        with open(self.m.p('INBOX', names[0]), 'rb') as f:
            self.assertEqual(cat, f.read())
        grep = subprocess.run(['grep', '-l', 'invoice'] + names, cwd=top,
                              capture_output=True, text=True)
        self.assertEqual(sorted(grep.stdout.split()), names)
        dest = tempfile.mkdtemp(prefix='mailfs-search-cp-')
        self.addCleanup(shutil.rmtree, dest, True)
        subprocess.run(['cp', '-L', '-r', top, dest], check=True)
        copied = os.path.join(dest, os.path.basename(top))
        self.assertEqual(sorted(os.listdir(copied)), names)
        for n in names:
            self.assertFalse(os.path.islink(os.path.join(copied, n)))
            with open(os.path.join(copied, n), 'rb') as a, \
                    open(self.m.p('INBOX', n), 'rb') as b:
                self.assertEqual(a.read(), b.read())

    # The wire.

    def commands(self):
        return [c for sess in self.server.rawlog_sessions(USER, 'imap')
                for c in sess.commands]

    def test_listing_fetches_no_body(self):
        os.listdir(self.m.p('INBOX'))  # a listing made before
        self.server.clear_rawlog(USER)
        q = 'OR BODY invoice SUBJECT x%d' % time.monotonic_ns()
        names = os.listdir(self.m.p('INBOX', '.search', q))
        self.assertTrue(names)
        names2 = os.listdir(self.m.p('.search', q))
        self.assertTrue(names2)
        cmds = self.commands()
        searches = [c for c in cmds if c.upper().startswith('UID SEARCH')]
        self.assertTrue(searches, cmds)
        # ESEARCH is offered by Dovecot: the compact answer is asked for.
        self.assertTrue(all('RETURN (ALL)' in c for c in searches))
        self.assertEqual([c for c in cmds if BODY_FETCH.search(c)], [])
        # The second listing within 5 s comes from the kept result.
        self.server.clear_rawlog(USER)
        os.listdir(self.m.p('INBOX', '.search', q))
        os.lstat(self.m.p('INBOX', '.search', q, names[0]))
        self.assertEqual([c for c in self.commands()
                          if 'SEARCH' in c.upper()], [])

    def test_results_are_refreshed_after_5s(self):
        word = 'fresh%d' % time.monotonic_ns()
        top = self.m.p('INBOX', '.search', 'SUBJECT ' + word)
        self.assertEqual(os.listdir(top), [])
        self.server.append(USER, 'INBOX', corpus.text_message(
            777, subject='Now ' + word))
        self.assertEqual(os.listdir(top), [])  # kept for 5 s
        time.sleep(5.5)
        got = os.listdir(top)
        self.assertEqual(len(got), 1)
        self.assertTrue(os.path.isfile(self.m.p('INBOX', got[0])))

    def test_injection_is_sent_as_data(self):
        before = self.server.list_folders(USER)
        attempts = [
            'SUBJECT "x\r\nA1 DELETE INBOX"',
            'SUBJECT x\r\nA2 DELETE INBOX',
            'BODY "{5}\r\nhello"',
            'SUBJECT {5}',
            'SUBJECT "a\\" SEEN"',
        ]
        for q in attempts:
            with self.subTest(q=q):
                self.server.clear_rawlog(USER)
                try:
                    os.listdir(self.m.p('INBOX', '.search', q))
                except OSError as e:
                    # Refused by mailfs's own parser: nothing is sent.
                    self.assertEqual(e.errno, errno.EINVAL)
                    self.assertEqual([c for c in self.commands()
                                      if 'SEARCH' in c.upper()], [])
                    continue
                cmds = self.commands()
                searches = [c for c in cmds if 'SEARCH' in c.upper()]
                self.assertEqual(len(searches), 1, cmds)
                self.assertFalse([c for c in cmds
                                  if re.search(r'DELETE|LOGOUT|NOOP', c)])
                data_in = b''.join(s.data_in for s in
                                   self.server.rawlog_sessions(USER))
                # Strings with CR/LF travel as literals.
                if '\r' in q:
                    self.assertRegex(data_in, rb'\{\d+\+?\}\r\n')
        self.assertEqual(self.server.list_folders(USER), before)
        self.assertTrue(self.server.folder_uids(USER, 'INBOX'))

    def test_parser_refuses_bad_query(self):
        for q in ['FOO bar', 'SINCE 2024-01-01', 'OR SEEN', '(SEEN']:
            with self.subTest(q=q):
                self.server.clear_rawlog(USER)
                top = self.m.p('INBOX', '.search', q)
                self.assertTrue(os.path.isdir(top))  # lookup succeeds
                with self.assertRaises(OSError) as cm:
                    os.listdir(top)
                self.assertEqual(cm.exception.errno, errno.EINVAL)
                self.assertEqual([c for c in self.commands()
                                  if 'SEARCH' in c.upper()], [])
        self.assertIn('unknown search key "FOO"', self.m.stderr())

    # The walkers.

    def test_find_and_ls_never_see_search(self):
        os.listdir(self.m.p('INBOX', '.search', 'ALL'))
        out = subprocess.run(['find', self.m.path], capture_output=True,
                             text=True, check=True).stdout
        self.assertNotIn('.search', out)
        self.assertNotIn('.search', os.listdir(self.m.p('INBOX')))
        self.assertNotIn('.search', os.listdir(self.m.path))
        # Reachable by name, and read-only.
        self.assertTrue(os.path.isdir(self.m.p('.search')))
        with self.assertRaises(OSError) as cm:
            os.mkdir(self.m.p('INBOX', '.search', 'ALL', 'x'))
        self.assertEqual(cm.exception.errno, errno.EROFS)
        with self.assertRaises(OSError) as cm:
            os.unlink(self.m.p('INBOX', '.search', 'ALL',
                               os.listdir(self.m.p('INBOX', '.search',
                                                   'ALL'))[0]))
        self.assertEqual(cm.exception.errno, errno.EROFS)

    def test_maildir_layout(self):
        cache = tempfile.mkdtemp(prefix='mailfs-search-cache-')
        self.addCleanup(shutil.rmtree, cache, True)
        with Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                   self.server.users[USER], cafile=self.server.cafile,
                   options=['layout=maildir'],
                   env={'XDG_CACHE_HOME': cache}) as m:
            cur = m.p('INBOX', 'cur')
            by_uid = {int(os.getxattr(os.path.join(cur, n),
                                      'user.mail.uid')): n
                      for n in os.listdir(cur)}
            uids = self.server_search('INBOX', ['TEXT', 'invoice'])
            top = m.p('INBOX', '.search', 'TEXT invoice')
            got = self.links(top)
            self.assertEqual(got, {by_uid[u]: '../../cur/' + by_uid[u]
                                   for u in uids})
            for name in got:
                self.assertTrue(os.path.isfile(os.path.join(top, name)))
            inbox = self.links(m.p('.search', 'TEXT invoice', 'INBOX'))
            self.assertEqual(inbox, {n: '../../../INBOX/cur/' + n
                                     for n in got})

    def test_no_search_in_a_folder_without_messages(self):
        # A missing folder has no .search.
        self.assertFalse(os.path.exists(self.m.p('Nope', '.search', 'ALL')))


class RefusedSearchTest(unittest.TestCase):
    """A server that refuses long commands (imap_max_line_length): a
    query mailfs accepts but the server answers BAD."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(
            rawlog=True, extra_conf='imap_max_line_length = 150\n').start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        cls.server.append(USER, 'INBOX', corpus.text_message(1))
        cls.server.append(USER, 'Other', corpus.text_message(2))
        cls.cache = tempfile.mkdtemp(prefix='mailfs-search-cache-')
        cls.addClassCleanup(shutil.rmtree, cls.cache, True)
        cls.m = Mount('imaps://%s@localhost:%d' % (USER,
                                                   cls.server.imaps_port),
                      cls.server.users[USER], cafile=cls.server.cafile,
                      foreground=True, env={'XDG_CACHE_HOME': cls.cache})
        cls.m.start()
        cls.addClassCleanup(cls.m.umount)

    def test_server_refusal_is_einval_with_its_text(self):
        q = 'SUBJECT ' + 'a' * 200
        for top in (self.m.p('INBOX', '.search', q),
                    self.m.p('.search', q)):
            with self.subTest(top=top):
                with self.assertRaises(OSError) as cm:
                    os.listdir(top)
                self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertRegex(self.m.stderr(),
                         r'search refused by the server: Error in IMAP '
                         r'command UID SEARCH: Too long argument')
        # The mount goes on working.
        self.assertEqual(len(os.listdir(self.m.p('INBOX', '.search',
                                                 'ALL'))), 1)
        self.assertEqual(len(os.listdir(self.m.p('.search', 'ALL'))), 2)


class PlainSearchTest(unittest.TestCase):
    """A server without ESEARCH and LITERAL+: plain "* SEARCH" answers,
    and a non-ASCII string as a synchronising literal (one folder at a
    time, since such a command cannot be pipelined)."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(
            rawlog=True, imap_capability='IMAP4rev1 SASL-IR IDLE UIDPLUS '
            'MOVE CONDSTORE SPECIAL-USE LIST-EXTENDED UNSELECT').start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.addClassCleanup(cls.server.stop)
        for i in range(6):
            cls.server.append(USER, 'INBOX', corpus.text_message(i))
        cls.server.append(USER, 'INBOX', UTF8_MSG)
        cls.server.append(USER, 'A.B', UTF8_MSG)
        cls.server.append(USER, 'A.B', corpus.text_message(9))
        cls.cache = tempfile.mkdtemp(prefix='mailfs-search-cache-')
        cls.addClassCleanup(shutil.rmtree, cls.cache, True)
        cls.m = Mount('imaps://%s@localhost:%d' % (USER,
                                                   cls.server.imaps_port),
                      cls.server.users[USER], cafile=cls.server.cafile,
                      foreground=True, env={'XDG_CACHE_HOME': cls.cache})
        cls.m.start()
        cls.addClassCleanup(cls.m.umount)

    def test_plain_search_and_synchronising_literal(self):
        self.server.clear_rawlog(USER)
        top = self.m.p('INBOX', '.search', 'OR SUBJECT Köln TEXT invoice')
        got = set(os.listdir(top))
        names = {int(os.getxattr(self.m.p('INBOX', n), 'user.mail.uid')): n
                 for n in os.listdir(self.m.p('INBOX'))}
        imap = self.server.imap(USER)
        imap.select('INBOX', readonly=True)
        imap.literal = 'Köln'.encode()
        typ, data = imap.uid('SEARCH', 'CHARSET', 'UTF-8', 'OR', 'TEXT',
                             'invoice', 'SUBJECT')
        imap.logout()
        want = {names[int(u)] for u in data[0].split()}
        self.assertEqual(got, want)
        self.assertEqual(len(want), 3)  # two invoices and UTF8_MSG
        data_in = b''.join(s.data_in
                           for s in self.server.rawlog_sessions(USER))
        self.assertIn(b'UID SEARCH CHARSET UTF-8 OR SUBJECT {5}\r\n' +
                      'Köln'.encode(), data_in)
        # Across the account: one folder at a time, same answers.
        got = set()
        for root, dirs, files in os.walk(self.m.p('.search', 'SUBJECT Köln')):
            got |= {os.path.relpath(os.path.join(root, f),
                                    self.m.p('.search', 'SUBJECT Köln'))
                    for f in files}
        self.assertEqual({os.path.dirname(g) for g in got}, {'INBOX', 'A/B'})
        for g in got:
            with open(self.m.p('.search', 'SUBJECT Köln', g), 'rb') as f:
                self.assertEqual(f.read(), UTF8_MSG)


class Pop3SearchTest(unittest.TestCase):
    """POP3 has no server-side search: .search does not exist there."""

    def test_pop3_has_no_search(self):
        with MailServer() as server:
            server.start()
            server.append(USER, 'INBOX', corpus.text_message(1))
            tmp = tempfile.mkdtemp(prefix='mailfs-search-pop3-')
            self.addCleanup(shutil.rmtree, tmp, True)
            with Mount('pop3s://%s@localhost:%d' % (USER,
                                                    server.pop3s_port),
                       server.users[USER], cafile=server.cafile,
                       options=['store=' + os.path.join(tmp, 'store')],
                       env={'XDG_CACHE_HOME': tmp}) as m:
                self.assertFalse(os.path.exists(m.p('.search', 'ALL')))
                with self.assertRaises(FileNotFoundError):
                    os.listdir(m.p('.search', 'ALL'))


if __name__ == '__main__':
    unittest.main()
