"""OAuth2 logins (XOAUTH2, OAUTHBEARER) through oauth2_command, and the
forced ways of logging in (-o auth=plain|login), against a real Dovecot
whose oauth2 passdb checks JWT access tokens locally (the harness signs
them with HS256; see MailServer(oauth2=True)).

What went over the wire before login is read from the login processes'
rawlog (MailServer(prelogin_rawlog=True)), which records cleartext
connections only: those tests use imap:// and pop3:// with tls=none
(Dovecot counts loopback as secure)."""

import base64
import os
import re
import shutil
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount, is_mounted

USER = 'alice'


def wait_for(pred, seconds=10, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class TokenHelper:
    """A token command as a user would have one (like oama or
    mutt_oauth2.py): a script printing a token. The N-th run prints
    tokens[N-1], later runs the last one; runs are counted in a file."""

    def __init__(self, directory, tokens, fail=None):
        self.dir = tempfile.mkdtemp(prefix='helper-', dir=directory)
        for i, tok in enumerate(tokens):
            with open(os.path.join(self.dir, 'tok.%d' % (i + 1)), 'w') as f:
                f.write(tok + '\n')
        self.last = os.path.join(self.dir, 'tok.%d' % len(tokens))
        self.path = os.path.join(self.dir, 'token-helper')
        with open(self.path, 'w') as f:
            f.write('#!/bin/sh\n')
            if fail:
                f.write('echo "token-helper: %s" >&2\nexit 3\n' % fail)
            f.write('d=%s\n'
                    'n=$(($(cat "$d/runs" 2>/dev/null || echo 0) + 1))\n'
                    # a new file renamed in: a reader never sees it
                    # half written (empty)
                    'echo $n > "$d/runs.$$" && mv "$d/runs.$$" "$d/runs"\n'
                    'if [ -f "$d/tok.$n" ]; then cat "$d/tok.$n"\n'
                    'else cat "%s"; fi\n' % (self.dir, self.last))
        os.chmod(self.path, 0o700)

    def runs(self):
        try:
            with open(os.path.join(self.dir, 'runs')) as f:
                return int(f.read())
        except FileNotFoundError:
            return 0


class OAuthTest(unittest.TestCase):
    """One server offering PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer(oauth2=True, prelogin_rawlog=True).start()
        cls.message = corpus.text_message(1)
        cls.server.append(USER, 'INBOX', cls.message)
        cls.body = cls.server.fetch_all(USER, 'INBOX')[1]
        cls.name = cls.server.message_names(USER, 'INBOX')[1]
        cls.tmp = tempfile.mkdtemp(prefix='mailfs-oauth-')

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def url(self, scheme, port=None):
        ports = {'imaps': self.server.imaps_port, 'imap': self.server.imap_port,
                 'pop3s': self.server.pop3s_port,
                 'pop3': self.server.pop3_port}
        return '%s://%s@localhost:%d' % (scheme, USER, port or ports[scheme])

    def mount(self, url, auth, helper=None, options=(), **kw):
        """A Mount logging in with -o auth=auth (and helper's command)."""
        # connections=2: no push session, so that logins are counted
        # exactly (push idles on a connection of its own from 3 on).
        opts = ['auth=' + auth, 'connections=2'] + list(options)
        if helper:
            opts.append('oauth2_command=' + helper.path)
        if url.startswith('pop3'):
            # keep: the other tests need the message on the server.
            opts += ['store=' + tempfile.mkdtemp(dir=self.tmp), 'keep']
        if '://' in url and url.split(':')[0] in ('imap', 'pop3'):
            opts.append('tls=none')
        password = None if helper else self.server.users[USER]
        m = Mount(url, password, cafile=self.server.cafile, options=opts,
                  **kw)
        self.addCleanup(m.umount)
        return m

    def read_inbox(self, m, imap):
        """The test message's bytes, read through the mount."""
        path = m.p('INBOX', self.name) if imap else None
        if path is None:
            self.assertTrue(wait_for(lambda: len(os.listdir(m.path)) == 1))
            path = m.p(os.listdir(m.path)[0])
        with open(path, 'rb') as f:
            return f.read()

    def logins(self, method):
        """Dovecot's count of successful logins with a SASL method."""
        with open(self.server.log_path) as f:
            return len(re.findall(r'-login: Info: Login: user=<%s>, '
                                  r'method=%s,' % (USER, method), f.read()))

    def client_lines(self, protocol):
        """What mailfs sent before login, connection by connection."""
        return [s.lines_in for s in self.server.prelogin_sessions(protocol)
                if s.lines_in]

    # ---- logging in with a token

    def test_imap_oauth_logins(self):
        """XOAUTH2 and OAUTHBEARER over IMAPS with SASL-IR: mounted, the
        message reads back; the -d trace hides the token."""
        for mech in ('XOAUTH2', 'OAUTHBEARER'):
            with self.subTest(mech=mech):
                token = self.server.oauth2_token(USER)
                helper = TokenHelper(self.tmp, [token])
                before = self.logins(mech)
                m = self.mount(self.url('imaps'), mech.lower(), helper,
                               debug=True).start()
                self.assertEqual(self.read_inbox(m, True), self.body)
                m.umount()
                trace = m.stderr()
                self.assertIn('AUTHENTICATE %s <credentials hidden>' % mech,
                              trace)
                self.assertNotIn(token, trace)
                self.assertNotIn(token.split('.')[2], trace)
                self.assertEqual(self.logins(mech), before + 1)
                self.assertEqual(helper.runs(), 1)

    def test_pop3_oauth_logins(self):
        """XOAUTH2 and OAUTHBEARER over POP3: a JWT makes the AUTH line
        longer than 255 bytes, so the response follows the server's "+"
        (RFC 5034); what went over the wire is checked in the rawlog."""
        for mech in ('XOAUTH2', 'OAUTHBEARER'):
            with self.subTest(mech=mech):
                token = self.server.oauth2_token(USER)
                helper = TokenHelper(self.tmp, [token])
                self.server.clear_prelogin_rawlog()
                before = self.logins(mech)
                m = self.mount(self.url('pop3'), mech.lower(), helper,
                               debug=True).start()
                self.assertEqual(self.read_inbox(m, False), self.message)
                m.umount()
                self.assertNotIn(token, m.stderr())
                sessions = self.client_lines('pop3')
                self.assertGreaterEqual(len(sessions), 2)  # check, worker
                for lines in sessions:
                    auth = lines.index(b'AUTH ' + mech.encode())
                    sent = base64.b64decode(lines[auth + 1])
                    self.assertIn(b'auth=Bearer ' + token.encode() +
                                  b'\x01\x01', sent)
                # One run of the helper per login.
                self.assertEqual(helper.runs(), self.logins(mech) - before)

    def test_imap_token_command_runs_at_every_login(self):
        """Each new IMAP connection runs oauth2_command again and uses
        what it prints: after the connection drops, the second token (a
        bad one) fails that login with the server's error, and the third
        one logs in again."""
        good = self.server.oauth2_token(USER)
        bad = self.server.oauth2_token(USER, key=b'not the key')
        helper = TokenHelper(self.tmp, [good, bad, good])
        proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(proxy.stop)
        m = self.mount(self.url('imaps', proxy.port), 'xoauth2', helper,
                       foreground=True).start()
        self.assertEqual(helper.runs(), 1)
        proxy.drop_all()
        with self.assertRaises(OSError):
            os.listdir(m.p('INBOX'))
        self.assertEqual(helper.runs(), 2)
        self.assertTrue(wait_for(
            lambda: 'XOAUTH2 error status: 401' in m.stderr()), m.stderr())
        self.assertEqual(self.read_inbox(m, True), self.body)
        self.assertEqual(helper.runs(), 3)
        self.assertNotIn(good, m.stderr())
        self.assertNotIn(bad, m.stderr())

    def test_pop3_token_command_runs_at_every_login(self):
        """POP3 logs in at start-up and at each poll, running the command
        every time: a bad second token fails that poll, the next one
        logs in again."""
        good = self.server.oauth2_token(USER)
        bad = self.server.oauth2_token(USER, lifetime=-60)
        helper = TokenHelper(self.tmp, [good, bad, good])
        m = self.mount(self.url('pop3s'), 'oauthbearer', helper,
                       options=['refresh=1'], foreground=True).start()
        self.assertTrue(wait_for(lambda: helper.runs() >= 3), m.stderr())
        self.assertIn('OAUTHBEARER error status: invalid_token', m.stderr())
        self.assertEqual(self.read_inbox(m, False), self.message)

    # ---- failures

    def fails(self, m, *texts):
        """m's mailfs exits 1 with one line holding every text; nothing
        stays mounted. Returns stderr."""
        rc, err, secs = m.run()
        self.assertEqual(rc, 1, err)
        lines = [l for l in err.splitlines() if l.startswith('mailfs:')]
        self.assertEqual(len(lines), 1, err)
        for text in texts:
            self.assertIn(text, lines[0])
        self.assertLess(secs, 10)
        self.assertFalse(is_mounted(m.path))
        return err

    def test_refused_token_fails_the_mount(self):
        """An expired token (IMAP, XOAUTH2) or one signed by someone else
        (POP3, OAUTHBEARER): exit 1 and one line with the server's error
        status; the token never shows."""
        expired = self.server.oauth2_token(USER, lifetime=-60)
        err = self.fails(
            self.mount(self.url('imaps'), 'xoauth2',
                       TokenHelper(self.tmp, [expired])),
            'mailfs: login as alice on localhost failed (XOAUTH2 error '
            'status: 401)', 'Authentication failed')
        self.assertNotIn(expired, err)
        forged = self.server.oauth2_token(USER, key=b'x' * 32)
        err = self.fails(
            self.mount(self.url('pop3s'), 'oauthbearer',
                       TokenHelper(self.tmp, [forged])),
            'mailfs: login as alice on localhost failed (OAUTHBEARER error '
            'status: invalid_token)')
        self.assertNotIn(forged, err)

    def test_error_challenge_is_acknowledged(self):
        """On the wire (IMAP, cleartext): after the error challenge the
        client sends "AQ==" (a lone ^A, RFC 7628 3.2.3) for OAUTHBEARER
        and an empty line for XOAUTH2, and the server then says NO."""
        expired = self.server.oauth2_token(USER, lifetime=-60)
        for mech, ack in (('OAUTHBEARER', b'AQ=='), ('XOAUTH2', b'')):
            with self.subTest(mech=mech):
                self.server.clear_prelogin_rawlog()
                m = self.mount(self.url('imap'), mech.lower(),
                               TokenHelper(self.tmp, [expired]))
                rc, err, _ = m.run()
                self.assertEqual(rc, 1, err)
                lines = self.client_lines('imap')[-1]
                self.assertRegex(lines[-2].decode(),
                                 r'^M\d+ AUTHENTICATE %s \S+$' % mech)
                self.assertEqual(lines[-1], ack)

    def test_failing_token_command(self):
        """A token command that fails: its own message (stderr passed
        through), then one line from mailfs; nothing mounted."""
        err = self.fails(
            self.mount(self.url('imaps'), 'oauthbearer',
                       TokenHelper(self.tmp, [], fail='no refresh token')),
            'mailfs: oauth2_command failed (exit status 3)')
        self.assertIn('token-helper: no refresh token', err)

    def test_oauth_options_refused(self):
        """auth=xoauth2 without oauth2_command, and the reverse, are
        refused at start-up in one line."""
        m = self.mount(self.url('imaps'), 'xoauth2')
        self.fails(m, '-o auth=xoauth2 needs -o oauth2_command=CMD')
        m = self.mount(self.url('imaps'), 'plain',
                       options=['oauth2_command=/bin/true'])
        self.fails(m, '-o oauth2_command needs -o auth=xoauth2 or -o '
                      'auth=oauthbearer')

    # ---- forced ways with a password

    def test_forced_ways_on_the_wire(self):
        """auth=plain is AUTHENTICATE PLAIN / AUTH PLAIN; auth=login is
        the IMAP LOGIN command / POP3 USER and PASS; the default is
        SASL PLAIN. Checked in the login rawlog."""
        cases = [
            ('imap', 'plain', rb'^M\d+ AUTHENTICATE PLAIN \S+$'),
            ('imap', 'login', rb'^M\d+ LOGIN "?alice"? '),
            ('pop3', 'plain', rb'^AUTH PLAIN \S+$'),
            ('pop3', 'login', rb'^USER alice$'),
        ]
        for proto, auth, want in cases:
            with self.subTest(proto=proto, auth=auth):
                self.server.clear_prelogin_rawlog()
                m = self.mount(self.url(proto), auth).start()
                self.assertEqual(self.read_inbox(m, proto == 'imap'),
                                 self.body if proto == 'imap'
                                 else self.message)
                m.umount()
                sessions = self.client_lines(proto)
                self.assertTrue(sessions)
                for lines in sessions:
                    hits = [l for l in lines if re.match(want, l)]
                    self.assertEqual(len(hits), 1, lines)
                    self.assertFalse(
                        [l for l in lines if re.search(
                            rb'AUTHENTICATE|^AUTH |^USER ', l) and
                         not re.match(want, l)], lines)


class NoOAuthServerTest(unittest.TestCase):
    """A server that offers no OAuth2 (the default harness), and one
    without SASL-IR, which must get the initial response after "+"."""

    def test_forced_mechanism_not_offered(self):
        with MailServer() as server:
            helper = TokenHelper(server.tmpdir, ['tok'])
            for scheme, port, want in (
                    ('imaps', server.imaps_port,
                     'localhost does not offer AUTH=XOAUTH2 (-o '
                     'auth=xoauth2); it offers PLAIN LOGIN'),
                    ('pop3s', server.pop3s_port,
                     'localhost does not offer SASL XOAUTH2 (-o '
                     'auth=xoauth2); it offers PLAIN LOGIN')):
                m = Mount('%s://%s@localhost:%d' % (scheme, USER, port),
                          None, cafile=server.cafile,
                          options=['auth=xoauth2',
                                   'oauth2_command=' + helper.path,
                                   'store=' + server.tmpdir + '/store'])
                self.addCleanup(m.umount)
                rc, err, _ = m.run()
                self.assertEqual(rc, 1, err)
                self.assertEqual(err.strip(), 'mailfs: ' + want)
                self.assertFalse(is_mounted(m.path))
                # Refused before the token was asked for.
                self.assertEqual(helper.runs(), 0)

    def test_imap_without_sasl_ir(self):
        """Without SASL-IR, AUTHENTICATE goes alone and the response
        follows the server's "+"."""
        with MailServer(oauth2=True, prelogin_rawlog=True,
                        imap_capability='IMAP4rev1 LITERAL+') as server:
            server.append(USER, 'INBOX', corpus.text_message(1))
            names = list(server.message_names(USER, 'INBOX').values())
            server.clear_prelogin_rawlog()
            token = server.oauth2_token(USER)
            helper = TokenHelper(server.tmpdir, [token])
            m = Mount('imap://%s@localhost:%d' % (USER, server.imap_port),
                      None, options=['auth=oauthbearer', 'tls=none',
                                     'oauth2_command=' + helper.path])
            self.addCleanup(m.umount)
            m.start()
            self.assertEqual(os.listdir(m.p('INBOX')), names)
            m.umount()
            lines = [s.lines_in for s in server.prelogin_sessions('imap')
                     if s.lines_in][0]
            i = [n for n, l in enumerate(lines)
                 if re.match(rb'^M\d+ AUTHENTICATE OAUTHBEARER$', l)][0]
            self.assertTrue(base64.b64decode(lines[i + 1]).startswith(
                b'n,a=alice,\x01host=localhost\x01port=%d\x01auth=Bearer '
                % server.imap_port))


if __name__ == '__main__':
    unittest.main()
