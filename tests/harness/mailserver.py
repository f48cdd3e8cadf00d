"""A private Dovecot IMAP/POP3 server for integration tests and benchmarks.

`MailServer` writes a complete Dovecot configuration into a fresh temporary
directory (own base_dir, state_dir, log file, passwd-file, maildirs and TLS
certificates), starts `dovecot -F` on four free loopback ports, and offers
helpers to put mail in and read it back independently of mailfs.

Notes learned on Debian 12 / Dovecot 2.3.19 (see _write_config):
  * login processes may not run as root: default_login_user = dovenull,
    default_internal_user = dovecot; the mail user is the `dovecot` uid/gid,
    so first_valid_uid/gid are lowered to it.
  * auth failures are slowed by anvil's auth penalty (2 s, 4 s, ... per
    client IP); the harness removes base_dir/anvil-auth-penalty after start,
    which makes the auth process disable the penalty.  With
    auth_failure_delay = 0 a failed login still takes up to 0.5 s (the
    auth process flushes failures on a 500 ms timer).
  * Dovecot treats a loopback connection (rip == lip) as "secured", so
    plaintext LOGIN works on the plain ports whatever
    disable_plaintext_auth says, and LOGINDISABLED is never advertised
    there (a FakeServer is needed to test that).
  * no ssl_dh is needed: 2.3.19 starts and serves TLS (ECDHE) without it.
  * SIGTERM to the master alone leaves imap/pop3 (and TLS-proxying login)
    processes serving their clients after the master exits, and the master
    itself lingers ~1 s (6 s with a half-open login): stop() signals the
    whole process group instead.
  * rawlog files (rawlog_dir) get "SECONDS.USEC " before every line; only
    the post-login part of a session is recorded.
  * passwd-file changes are noticed at most once per second.
  * a plain FETCH BODY[] of a maildir file shows NUL as 0x80 and bare LF
    as CRLF; RFC822.SIZE equals the length of what BODY[] returns.
  * AUTH=XOAUTH2 / AUTH=OAUTHBEARER are offered only with an oauth2 passdb.
    Its local validation (introspection_mode = local) checks JWTs against
    keys in a dict: with fs:posix:prefix=DIR/ the HS256 key (base64) of
    a token without "azp" and "kid" is the file DIR/default/HS256/default
    (the dict key is "shared/default/HS256/default", and dict-fs drops
    "shared/").  The token needs "sub" (the user, with username_attribute
    = sub) and "exp".  A failure is a challenge, {"status":"401",...} for
    XOAUTH2 and {"status":"invalid_token"} for OAUTHBEARER, which the
    client must answer before the NO.
  * the login processes (chrooted to base_dir/login) write a pre-login
    rawlog with `executable = imap-login -R rawlogs` into
    base_dir/login/rawlogs, which must exist and belong to dovenull
    beforehand; TLS sessions are not decrypted there.  The auth log says
    method=PLAIN for the LOGIN command too, so only this rawlog tells
    LOGIN from AUTHENTICATE PLAIN.
"""

import atexit
import base64
import datetime
import hashlib
import hmac
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import string
import subprocess
import tempfile
import threading
import time
import imaplib
import poplib

from .certs import CertAuthority
from .imapwire import (ImapError, ImapWire, Literal, fetch_items,
                       mutf7_decode, mutf7_encode, parse_uid_set, quote)

__all__ = ['MailServer', 'RawlogSession', 'PreloginSession',
           'MailServerError']

DOVECOT = shutil.which('dovecot') or '/usr/sbin/dovecot'
SETPRIV = shutil.which('setpriv')

# Servers still running, stopped at interpreter exit so that a test that
# forgot stop() leaves no Dovecot behind.  (If the interpreter is killed,
# setpriv --pdeathsig makes the kernel send SIGTERM instead.)
_LIVE = set()


@atexit.register
def _stop_all():
    """Stop (and clean up) servers a test forgot, at interpreter exit."""
    for server in list(_LIVE):
        try:
            server.stop()
            server.cleanup()
        except Exception:
            pass


class MailServerError(RuntimeError):
    """Dovecot could not be configured, started or stopped."""


def _free_ports(count):
    """Return `count` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_bindable(port):
    """True if nothing listens on 127.0.0.1:port any more."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _imap_date(date):
    """Format a datetime (naive = UTC) or epoch number as IMAP date-time."""
    if isinstance(date, (int, float)):
        date = datetime.datetime.fromtimestamp(date, datetime.timezone.utc)
    if date.tzinfo is None:
        date = date.replace(tzinfo=datetime.timezone.utc)
    months = ('Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec').split()
    off = date.utcoffset().total_seconds() // 60
    sign = '-' if off < 0 else '+'
    off = abs(int(off))
    return '"%2d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        date.day, months[date.month - 1], date.year, date.hour,
        date.minute, date.second, sign, off // 60, off % 60)


def message_base_name(internaldate, size, msgid_field):
    """The name of a message without '-N' and '.eml' (see message_names)."""
    when = datetime.datetime.strptime(internaldate.strip(), '%d-%b-%Y %H:%M:%S %z')
    if isinstance(msgid_field, str):
        msgid_field = msgid_field.encode()
    value = b''
    m = re.match(rb'(?is)message-id[ \t]*:(.*?)(?:\r?\n(?![ \t])|$)',
                 msgid_field)
    if m:
        value = re.sub(rb'[\r\n]', b'', m.group(1)).strip(b' \t')
    return '%s-%d-%s' % (
        when.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ'),
        size, hashlib.sha256(value).hexdigest()[:8])


def _flag_list(flags):
    """Turn '\\Seen \\Flagged', a list or a set into b'(\\Seen \\Flagged)'."""
    if not flags:
        return None
    if isinstance(flags, (bytes, str)):
        flags = flags.decode() if isinstance(flags, bytes) else flags
        flags = flags.strip('()').split()
    return ('(' + ' '.join(sorted(flags)) + ')').encode()


# ---------------------------------------------------------------- rawlog

_TS = re.compile(rb'^\d+\.\d{6} ')
_CMD_LITERAL = re.compile(rb'~?\{(\d+)(\+?)\}\r?\n$')


class RawlogSession:
    """One post-login session recorded by Dovecot's rawlog_dir.

    Attributes:
      protocol   'imap' or 'pop3'
      path       the .in file (the .out file sits beside it)
      start      time of the first recorded byte (epoch seconds)
      commands   client command lines, IMAP tag stripped, literal payloads
                 left out (the '{N+}' marker stays); IMAP 'DONE' after IDLE
                 appears as its own entry
      timed_commands  [(epoch_seconds, command)] in the same order
      bytes_in   bytes client -> server (timestamps removed)
      bytes_out  bytes server -> client
      data_in, data_out  the exact byte streams
    The login command itself is not part of it (Dovecot starts the log when
    the mail process takes over from the login process).
    """

    def __init__(self, protocol, in_path, in_from=0, out_from=0):
        """Parse the .in/.out pair; bytes before the offsets (raw file
        positions, see MailServer.clear_rawlog) do not count."""
        self.protocol = protocol
        self.path = in_path
        out_path = in_path[:-3] + '.out'
        lines_in = self._read_lines(in_path, in_from)
        lines_out = self._read_lines(out_path, out_from)
        self.data_in = b''.join(body[old:] for _, body, old in lines_in)
        self.data_out = b''.join(body[old:] for _, body, old in lines_out)
        self.bytes_in = len(self.data_in)
        self.bytes_out = len(self.data_out)
        stamps = [t for t, body, old in lines_in + lines_out
                  if old < len(body) and t is not None]
        self.start = min(stamps) if stamps else None
        if protocol == 'imap':
            self.timed_commands = self._imap_commands(lines_in)
        else:
            self.timed_commands = [
                (t, body.rstrip(b'\r\n').decode('latin-1'))
                for t, body, old in lines_in if old == 0]
        self.commands = [c for _, c in self.timed_commands]

    @staticmethod
    def _read_lines(path, baseline):
        """Return [(timestamp or None, line without timestamp, old)].

        Dovecot writes "SECONDS.USEC " before every line of the stream (a
        line written in pieces gets one).  `old` is how many leading bytes
        of the line lie before `baseline` (a raw file offset): 0 for a line
        wholly after it, len(line) for one wholly before.
        """
        try:
            with open(path, 'rb') as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        out = []
        pos = 0
        # Split after each LF only: a lone CR inside a literal is data.
        for line in re.findall(rb'[^\n]*\n|[^\n]+$', raw):
            start = pos
            pos += len(line)
            m = _TS.match(line)
            stamp = None
            body = line
            if m:
                stamp = float(line[:m.end() - 1])
                body = line[m.end():]
            prefix = len(line) - len(body)
            old = min(len(body), max(0, baseline - start - prefix))
            out.append((stamp, body, old))
        return out

    @staticmethod
    def _imap_commands(lines):
        """Reassemble IMAP commands from client lines, skipping literals.

        Returns [(timestamp, command)] for commands that start after the
        baseline.
        """
        cmds = []
        skip = 0          # literal bytes still to skip
        current = None    # [timestamp, text, counted] of the open command
        prev_verb = ''
        for stamp, line, old in lines:
            if skip:
                if len(line) <= skip:
                    skip -= len(line)
                    continue
                line = line[skip:]
                skip = 0
                if current is None:
                    continue
                current[1] += line.rstrip(b'\r\n')
            elif current is not None:
                current[1] += line.rstrip(b'\r\n')
            else:
                text = line.rstrip(b'\r\n')
                if prev_verb == 'IDLE' and text.upper() == b'DONE':
                    if old == 0:
                        cmds.append((stamp, 'DONE'))
                    prev_verb = ''
                    continue
                parts = text.split(b' ', 1)
                current = [stamp, parts[1] if len(parts) > 1 else b'',
                           old == 0]
            m = _CMD_LITERAL.search(line)
            if m:
                skip = int(m.group(1))
                continue
            if not line.endswith(b'\n'):
                continue          # the command line is still being written
            _, text, counted = current
            current = None
            text = text.decode('utf-8', 'replace')
            words = text.split()
            prev_verb = words[0].upper() if words else ''
            if prev_verb == 'UID' and len(words) > 1:
                prev_verb = words[1].upper()
            if counted:
                cmds.append((stamp, text))
        return cmds

    def __repr__(self):
        return '<RawlogSession %s %d cmds in=%d out=%d>' % (
            self.protocol, len(self.commands), self.bytes_in, self.bytes_out)


class PreloginSession:
    """One connection as a login process recorded it (prelogin_rawlog):
    what happened before the mail process took over, login included.

    Attributes: protocol ('imap' or 'pop3', told by the greeting), path
    (the .in file), lines_in / lines_out (lines without timestamps and
    line ends, as bytes).  Sessions over TLS record nothing readable.
    """

    def __init__(self, in_path):
        """Read the .in/.out pair of one login connection."""
        self.path = in_path
        self.lines_in = self._lines(in_path)
        self.lines_out = self._lines(in_path[:-3] + '.out')
        first = self.lines_out[0] if self.lines_out else b''
        self.protocol = 'pop3' if first.startswith(b'+OK') else 'imap'

    @staticmethod
    def _lines(path):
        """The lines of a rawlog file without "SECONDS.USEC " and CRLF
        (an empty line the peer sent stays, as b'')."""
        try:
            with open(path, 'rb') as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        lines = raw.split(b'\n')
        if lines and not lines[-1]:
            lines.pop()
        return [_TS.sub(b'', line, count=1).rstrip(b'\r') for line in lines]

    def __repr__(self):
        return '<PreloginSession %s %r>' % (self.protocol, self.lines_in)


def _b64url(data):
    """Base64url without padding, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


# ---------------------------------------------------------------- server

class MailServer:
    """A private Dovecot on 127.0.0.1 with IMAP, IMAPS, POP3 and POP3S.

    Use as a context manager (or call start()/stop()).  Attributes after
    start: imap_port, imaps_port, pop3_port, pop3s_port, cafile (CA that
    signed the server certificate), other_cafile (an unrelated CA),
    certfile/keyfile (server pair), log_path, tmpdir, users (name ->
    password), separator, mail_uid, mail_gid.
    """

    def __init__(self, users=None, separator='.', imap_capability=None,
                 rawlog=False, pop3=True, extra_conf='', oauth2=False,
                 prelogin_rawlog=False):
        """Prepare (but do not start) a server.

        users: {name: password}; default alice and bob, random passwords.
        separator: '.' (maildir++ layout) or '/' (maildir LAYOUT=fs, where
          folder names may contain '.').
        imap_capability: replaces the advertised capability list (Dovecot's
          imap_capability; a leading '+' adds to the default instead).
        rawlog: record post-login traffic per user (see rawlog_sessions).
        pop3: also run POP3/POP3S listeners.
        extra_conf: text appended to dovecot.conf (later settings win).
        oauth2: also offer XOAUTH2 and OAUTHBEARER, checking access tokens
          locally: JWTs signed (HS256) with self.oauth2_key, as
          oauth2_token() makes them.  Passwords keep working (PLAIN,
          LOGIN) and are not accepted as tokens.
        prelogin_rawlog: record every connection up to its login (see
          prelogin_sessions); only cleartext connections are readable.
        """
        if separator not in ('.', '/'):
            raise ValueError("separator must be '.' or '/'")
        if users is None:
            rnd = random.SystemRandom()
            users = {name: ''.join(rnd.choice(string.ascii_letters +
                                              string.digits)
                                   for _ in range(16))
                     for name in ('alice', 'bob')}
        self.users = dict(users)
        self.separator = separator
        self.imap_capability = imap_capability
        self.rawlog = rawlog
        self.pop3_enabled = pop3
        self.extra_conf = extra_conf
        self.oauth2 = oauth2
        self.oauth2_key = os.urandom(32)
        self.prelogin_rawlog = prelogin_rawlog
        pw = pwd.getpwnam('dovecot')
        self.mail_uid, self.mail_gid = pw.pw_uid, pw.pw_gid
        self.tmpdir = None
        self.proc = None
        self.imap_port = self.imaps_port = None
        self.pop3_port = self.pop3s_port = None
        self._rawlog_base = {}
        self._lock = threading.Lock()
        self._seq = 0                 # maildir file name counter

    # -------------------------------------------------------- paths

    def home(self, user):
        """The user's home directory."""
        return os.path.join(self.tmpdir, 'home', user)

    def maildir_path(self, user):
        """The user's Maildir root (INBOX lives here)."""
        return os.path.join(self.home(user), 'Maildir')

    def folder_path(self, user, folder):
        """Directory of `folder` (a UTF-8 name using self.separator)."""
        if folder.upper() == 'INBOX':
            return self.maildir_path(user)
        parts = [mutf7_encode(p) for p in folder.split(self.separator)]
        if self.separator == '.':
            return os.path.join(self.maildir_path(user),
                                '.' + '.'.join(parts))
        return os.path.join(self.maildir_path(user), *parts)

    def folder_name(self, *parts):
        """Join hierarchy levels with the server's separator."""
        return self.separator.join(parts)

    def _prelogin_dir(self):
        """Where the login processes write their rawlogs."""
        return os.path.join(self.tmpdir, 'run', 'login', 'rawlogs')

    def _rawlog_dir(self, protocol, user):
        """Where Dovecot writes `user`'s rawlog files for `protocol`."""
        return os.path.join(self.tmpdir, 'rawlog', protocol, user)

    # -------------------------------------------------------- lifecycle

    def _prepare_tmpdir(self):
        """Create the temp tree, users, certificates (first start only)."""
        base = None
        # Unix socket paths must stay short (108 bytes); prefer /tmp when
        # TMPDIR is long.
        if len(tempfile.gettempdir()) > 40:
            base = '/tmp'
        self.tmpdir = tempfile.mkdtemp(prefix='mailfs-dc-', dir=base)
        os.chmod(self.tmpdir, 0o755)
        for sub in ('run', 'state', 'tls', 'home', 'rawlog'):
            os.makedirs(os.path.join(self.tmpdir, sub), exist_ok=True)
        self.log_path = os.path.join(self.tmpdir, 'dovecot.log')
        self.conf_path = os.path.join(self.tmpdir, 'dovecot.conf')
        self.passwd_path = os.path.join(self.tmpdir, 'passwd')
        tls = os.path.join(self.tmpdir, 'tls')
        ca = CertAuthority(tls, 'mailfs test CA')
        self.ca = ca
        self.cafile = ca.cafile
        self.certfile, self.keyfile = ca.issue('localhost')
        self.other_cafile = CertAuthority(tls, 'unrelated CA').cafile
        for proto in ('imap', 'pop3'):
            os.makedirs(os.path.join(self.tmpdir, 'rawlog', proto))
            os.chmod(os.path.join(self.tmpdir, 'rawlog', proto), 0o755)
        self._write_passwd()

    def _write_config(self):
        """Write dovecot.conf for the current settings and ports."""
        t = self.tmpdir
        if self.separator == '.':
            location = 'maildir:~/Maildir'
        else:
            location = 'maildir:~/Maildir:LAYOUT=fs'
        protocols = 'imap pop3' if self.pop3_enabled else 'imap'
        lines = [
            '# Written by tests/harness/mailserver.py; private test server.',
            'protocols = %s' % protocols,
            'listen = 127.0.0.1',
            'base_dir = %s/run' % t,
            'state_dir = %s/state' % t,
            'log_path = %s' % self.log_path,
            'info_log_path = %s' % self.log_path,
            'debug_log_path = %s' % self.log_path,
            # Dovecot refuses to run login processes as root.
            'default_login_user = dovenull',
            'default_internal_user = dovecot',
            'first_valid_uid = %d' % self.mail_uid,
            'first_valid_gid = %d' % self.mail_gid,
            'disable_plaintext_auth = no',
            'auth_mechanisms = plain login%s' % (
                ' xoauth2 oauthbearer' if self.oauth2 else ''),
            'auth_failure_delay = 0',
            'auth_verbose = yes',
            'ssl = yes',
            'ssl_cert = <%s' % self.certfile,
            'ssl_key = <%s' % self.keyfile,
            'mail_location = %s' % location,
            # Test data is throwaway: skip fsync for fast bulk APPEND.
            'mail_fsync = never',
            # mailfs pools plus test clients exceed the default of 10.
            'mail_max_userip_connections = 200',
            'passdb {',
            '  driver = passwd-file',
            '  args = scheme=PLAIN %s' % self.passwd_path,
        ] + (['  mechanisms = plain login'] if self.oauth2 else []) + [
            '}',
        ] + self._oauth2_conf() + [
            'userdb {',
            '  driver = passwd-file',
            '  args = %s' % self.passwd_path,
            '}',
            'namespace inbox {',
            '  inbox = yes',
            '  prefix =',
            '  separator = %s' % self.separator,
            '  mailbox Trash {',
            '    special_use = \\Trash',
            '    auto = create',
            '  }',
            '}',
            # "inet_listener x { port = N }" on one line is rejected.
            'service imap-login {',
        ] + self._prelogin_conf('imap') + [
            '  inet_listener imap {',
            '    address = 127.0.0.1',
            '    port = %d' % self.imap_port,
            '  }',
            '  inet_listener imaps {',
            '    address = 127.0.0.1',
            '    port = %d' % self.imaps_port,
            '    ssl = yes',
            '  }',
            '}',
        ]
        if self.pop3_enabled:
            lines += [
                'service pop3-login {',
            ] + self._prelogin_conf('pop3') + [
                '  inet_listener pop3 {',
                '    address = 127.0.0.1',
                '    port = %d' % self.pop3_port,
                '  }',
                '  inet_listener pop3s {',
                '    address = 127.0.0.1',
                '    port = %d' % self.pop3s_port,
                '    ssl = yes',
                '  }',
                '}',
            ]
        else:
            # Keep the default pop3 listeners from grabbing port 110/995.
            lines += ['service pop3-login {',
                      '  inet_listener pop3 {', '    port = 0', '  }',
                      '  inet_listener pop3s {', '    port = 0', '  }',
                      '}']
        lines.append('protocol imap {')
        if self.imap_capability:
            lines.append('  imap_capability = %s' % self.imap_capability)
        if self.rawlog:
            lines.append('  rawlog_dir = %s/rawlog/imap/%%u' % t)
        lines.append('}')
        if self.pop3_enabled:
            lines.append('protocol pop3 {')
            if self.rawlog:
                lines.append('  rawlog_dir = %s/rawlog/pop3/%%u' % t)
            lines.append('}')
        if self.extra_conf:
            lines.append(self.extra_conf)
        with open(self.conf_path, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def _prelogin_conf(self, protocol):
        """The login service's executable line for prelogin_rawlog."""
        if not self.prelogin_rawlog:
            return []
        return ['  executable = %s-login -R rawlogs' % protocol]

    def _oauth2_conf(self):
        """The oauth2 passdb (local JWT validation) and its key file."""
        if not self.oauth2:
            return []
        keys = os.path.join(self.tmpdir, 'oauth2-keys')
        os.makedirs(os.path.join(keys, 'default', 'HS256'), exist_ok=True)
        with open(os.path.join(keys, 'default', 'HS256', 'default'),
                  'w') as f:
            f.write(base64.b64encode(self.oauth2_key).decode('ascii'))
        for root, dirs, files in os.walk(keys):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        ext = os.path.join(self.tmpdir, 'dovecot-oauth2.conf.ext')
        with open(ext, 'w') as f:
            f.write('introspection_mode = local\n'
                    'local_validation_key_dict = fs:posix:prefix=%s/\n'
                    'username_attribute = sub\n' % keys)
        return ['passdb {',
                '  driver = oauth2',
                '  mechanisms = xoauth2 oauthbearer',
                '  args = %s' % ext,
                '}']

    def oauth2_token(self, user, lifetime=3600, key=None):
        """An access token for `user` that the oauth2 passdb accepts: a
        JWT signed with HS256 by self.oauth2_key (or `key`), valid for
        `lifetime` seconds (negative: already expired)."""
        now = int(time.time())
        header = {'alg': 'HS256', 'typ': 'JWT'}
        claims = {'sub': user, 'iat': now - 5, 'nbf': now - 5,
                  'exp': now + lifetime}
        signed = '%s.%s' % (_b64url(json.dumps(header).encode()),
                            _b64url(json.dumps(claims).encode()))
        sig = hmac.new(key or self.oauth2_key, signed.encode('ascii'),
                       hashlib.sha256).digest()
        return signed + '.' + _b64url(sig)

    def prelogin_sessions(self, protocol=None):
        """Login connections recorded since the last
        clear_prelogin_rawlog(), oldest first (needs prelogin_rawlog)."""
        if not self.prelogin_rawlog:
            raise MailServerError('server started without prelogin_rawlog')
        d = self._prelogin_dir()
        paths = sorted((os.path.getmtime(os.path.join(d, n)), n)
                       for n in os.listdir(d) if n.endswith('.in'))
        sessions = [PreloginSession(os.path.join(d, n)) for _, n in paths]
        return [s for s in sessions if s.lines_out and
                (protocol is None or s.protocol == protocol)]

    def clear_prelogin_rawlog(self):
        """Forget the login connections recorded so far."""
        d = self._prelogin_dir()
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))

    def log_tail(self, nlines=30):
        """The last lines of the Dovecot log (and of its stdout/stderr)."""
        text = ''
        for path in (getattr(self, 'log_path', None),
                     self.tmpdir and os.path.join(self.tmpdir, 'stdout')):
            if path and os.path.exists(path):
                with open(path, errors='replace') as f:
                    text += ''.join(f.readlines()[-nlines:])
        return text

    def start(self):
        """Start Dovecot and wait until every listener answers.

        Ports are chosen on the first start and kept by restart(), so a
        client (or mailfs) can reconnect to the same address.  Raises
        MailServerError with the log tail if Dovecot does not come up.
        """
        if self.proc is not None:
            return self
        if self.tmpdir is None:
            self._prepare_tmpdir()
        keep_ports = self.imap_port is not None
        last_error = None
        for attempt in range(3):
            if not keep_ports or attempt > 0:
                (self.imap_port, self.imaps_port, self.pop3_port,
                 self.pop3s_port) = _free_ports(4)
            self._write_config()
            if self.prelogin_rawlog:
                self._make_prelogin_dir()
            try:
                self._launch()
                _LIVE.add(self)
                return self
            except MailServerError as e:
                last_error = e
                if 'in use' not in str(e):
                    break
        raise last_error

    def _make_prelogin_dir(self):
        """Create base_dir/login/rawlogs for the login processes (they
        check it when they start, one per connection)."""
        d = self._prelogin_dir()
        os.makedirs(d, exist_ok=True)
        os.chmod(os.path.dirname(d), 0o755)
        pw = pwd.getpwnam('dovenull')
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o700)

    def _launch(self):
        """Run `dovecot -F` and poll until ready (one attempt)."""
        t0 = time.monotonic()
        out = open(os.path.join(self.tmpdir, 'stdout'), 'ab')
        try:
            # -F keeps the master in the foreground as our child, so we can
            # wait() for it; its output must not go to a pipe we never read.
            cmd = [DOVECOT, '-F', '-c', self.conf_path]
            # If the test process dies without stopping us (SIGKILL, CI
            # timeout), the kernel sends SIGTERM to Dovecot.  The signal is
            # tied to the thread that forked, so only use it from the main
            # thread.
            if SETPRIV and threading.current_thread() is \
                    threading.main_thread():
                cmd = [SETPRIV, '--pdeathsig', 'TERM'] + cmd
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        finally:
            out.close()
        ports = [self.imap_port, self.imaps_port]
        if self.pop3_enabled:
            ports += [self.pop3_port, self.pop3s_port]
        # The auth process, started on the first login connection, gives up
        # auth penalty (growing delays after failed logins from one IP) if
        # this socket is missing.  The master creates it together with the
        # listeners, so remove it before anything connects.
        penalty = os.path.join(self.tmpdir, 'run', 'anvil-auth-penalty')
        pending = [penalty] + list(ports)
        deadline = time.monotonic() + 15
        while pending:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                tail = self.log_tail()
                raise MailServerError(
                    'dovecot exited with %s during start%s:\n%s' % (
                        rc, ' (address in use)' if 'in use' in tail else '',
                        tail))
            if time.monotonic() > deadline:
                self._kill_group()
                self.proc = None
                raise MailServerError('dovecot did not open its ports:\n' +
                                      self.log_tail())
            try:
                if pending[0] == penalty:
                    os.unlink(penalty)
                else:
                    socket.create_connection(('127.0.0.1', pending[0]),
                                             timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.01)
        # Make sure a login process really answers.
        with socket.create_connection(('127.0.0.1', self.imap_port),
                                      timeout=10) as s:
            greeting = s.recv(200)
        if not greeting.startswith(b'* OK'):
            self._kill_group()
            self.proc = None
            raise MailServerError('unexpected greeting %r\n%s' % (
                greeting, self.log_tail()))
        self.start_seconds = time.monotonic() - t0

    def _kill_group(self):
        """SIGKILL the whole Dovecot process group and reap the master."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def kill(self):
        """Crash the server: SIGKILL every Dovecot process at once.

        Clients see their connections drop without a BYE.  start() brings
        the server back on the same ports with the same mail.
        """
        if self.proc is None:
            return
        self._kill_group()
        self.proc = None
        _LIVE.discard(self)
        self._wait_ports_free(10)

    @staticmethod
    def _group_members(pgid):
        """{pid: command line} of live processes in process group `pgid`
        (Dovecot runs in its own session: the group id is the master's
        pid)."""
        members = {}
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % entry) as f:
                    stat = f.read()
                with open('/proc/%s/cmdline' % entry, 'rb') as f:
                    cmd = f.read().replace(b'\0', b' ').decode(
                        'latin-1').strip()
            except OSError:
                continue
            # Fields after the ")" that closes the command name.
            fields = stat.rsplit(')', 1)[1].split()
            if fields[2] == str(pgid) and fields[0] != 'Z':
                members[int(entry)] = cmd
        return members

    def stop(self, timeout=10):
        """Shut Dovecot down and wait until its ports are free again.

        Every process of the server gets SIGTERM: on this machine the
        master alone leaves imap/pop3 processes (and the login processes
        that proxy their TLS) serving open connections after it exits.  So
        clients are disconnected (IMAP ones get "* BYE Server shutting
        down.").  Once all processes but the master and its log process
        are gone (their log lines are written by then), and at the latest
        after `timeout`, whatever is left gets SIGKILL.
        """
        if self.proc is None:
            return
        proc = self.proc
        deadline = time.monotonic() + timeout
        signalled = set()
        quiet_since = None
        while proc.poll() is None:
            now = time.monotonic()
            members = self._group_members(proc.pid)
            rest = [pid for pid, cmd in members.items()
                    if pid != proc.pid and not cmd.endswith('/log')]
            for pid in [proc.pid] + rest:
                if pid not in signalled:
                    signalled.add(pid)
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            if rest:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            if now > deadline or (quiet_since is not None and
                                  now - quiet_since > 0.05):
                break
            time.sleep(0.01)
        # Whatever remains (master waiting for its log, orphans): SIGKILL.
        self._kill_group()
        self.proc = None
        _LIVE.discard(self)
        self._wait_ports_free(timeout)

    def _wait_ports_free(self, timeout):
        """Wait until nothing listens on our ports any more."""
        ports = [p for p in (self.imap_port, self.imaps_port,
                             self.pop3_port, self.pop3s_port) if p]
        deadline = time.monotonic() + timeout
        while not all(_port_bindable(p) for p in ports):
            if time.monotonic() > deadline:
                raise MailServerError('ports still in use after stop')
            time.sleep(0.02)

    def _write_passwd(self):
        """(Re)write the passwd-file from self.users; create new homes.

        Dovecot re-reads the file when it changes (no auth cache is
        configured), so this takes effect without a restart.
        """
        tmp = self.passwd_path + '.new'
        with open(tmp, 'w') as f:
            for user, password in self.users.items():
                f.write('%s:{PLAIN}%s:%d:%d::%s::\n' % (
                    user, password, self.mail_uid, self.mail_gid,
                    self.home(user)))
        os.chmod(tmp, 0o644)
        # Dovecot notices a changed passwd-file by its mtime in whole
        # seconds: make sure the new one differs from the old one.
        try:
            old = int(os.stat(self.passwd_path).st_mtime)
            new = max(int(time.time()), old + 1)
            os.utime(tmp, (new, new))
        except FileNotFoundError:
            pass
        os.replace(tmp, self.passwd_path)
        for user in self.users:
            for path in (self.home(user),
                         self._rawlog_dir('imap', user),
                         self._rawlog_dir('pop3', user)):
                if not os.path.isdir(path):
                    os.makedirs(path)
                    os.chown(path, self.mail_uid, self.mail_gid)

    def set_password(self, user, password):
        """Add `user` or change its password, without a restart.

        Dovecot's auth process looks at the passwd-file at most once per
        second (per whole second of its clock), so this returns only once
        the next second has begun: from then on the change is in effect.
        """
        self.users[user] = password
        if self.tmpdir is not None:
            self._write_passwd()
            now = time.time()
            time.sleep(int(now) + 1 - now + 0.02)

    def restart(self, **changes):
        """Stop, apply attribute changes (e.g. imap_capability=...), start.

        Mail, users' passwords file, certificates and ports are kept.
        Accepts: imap_capability, rawlog, pop3, extra_conf.
        """
        allowed = {'imap_capability', 'rawlog', 'pop3', 'extra_conf'}
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError('cannot change %s' % ', '.join(sorted(unknown)))
        self.stop()
        for key, value in changes.items():
            setattr(self, 'pop3_enabled' if key == 'pop3' else key, value)
        self.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()

    def cleanup(self):
        """Remove the temp dir unless MAILFS_KEEP_TMP=1."""
        if self.tmpdir and os.environ.get('MAILFS_KEEP_TMP') != '1':
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    # -------------------------------------------------------- clients

    def ssl_context(self, cafile=None):
        """A client SSLContext that trusts `cafile` (default: self.cafile)
        and checks host names."""
        ctx = ssl.create_default_context(cafile=cafile or self.cafile)
        ctx.check_hostname = True
        return ctx

    def imap(self, user, tls='imaps', password=None):
        """Return a logged-in imaplib client.

        tls: 'imaps' (implicit TLS port), 'starttls' (plain port, then
        STARTTLS) or 'plain'/'none' (no TLS).  Certificates are verified
        against cafile for host name 'localhost'.
        """
        password = self.users[user] if password is None else password
        if tls == 'imaps':
            m = imaplib.IMAP4_SSL('localhost', self.imaps_port,
                                  ssl_context=self.ssl_context(), timeout=60)
        elif tls in ('starttls', 'plain', 'none'):
            m = imaplib.IMAP4('localhost', self.imap_port, timeout=60)
        else:
            raise ValueError('tls must be imaps, starttls or plain')
        try:
            if tls == 'starttls':
                m.starttls(self.ssl_context())
            m.login(user, password)
        except BaseException:
            m.shutdown()
            raise
        return m

    def pop3(self, user, tls='pop3s', password=None):
        """Return a logged-in poplib client.

        tls: 'pop3s' (or 'imaps' for symmetry: implicit TLS), 'starttls'
        (STLS on the plain port) or 'plain'/'none'.
        """
        password = self.users[user] if password is None else password
        if tls in ('pop3s', 'imaps', 'tls'):
            p = poplib.POP3_SSL('localhost', self.pop3s_port,
                                context=self.ssl_context(), timeout=60)
        elif tls in ('starttls', 'stls', 'plain', 'none'):
            p = poplib.POP3('localhost', self.pop3_port, timeout=60)
        else:
            raise ValueError('tls must be pop3s, starttls or plain')
        try:
            if tls in ('starttls', 'stls'):
                p.stls(self.ssl_context())
            p.user(user)
            p.pass_(password)
        except BaseException:
            p.close()
            raise
        return p

    def wire(self, user):
        """A logged-in ImapWire (raw IMAP client) on the plain port."""
        w = ImapWire.connect('127.0.0.1', self.imap_port)
        w.login(user, self.users[user])
        return w

    # -------------------------------------------------------- mail in

    def create_folder(self, user, name, subscribe=True):
        """Create folder `name` (UTF-8, self.separator); no error if it
        exists.  Parents are created by Dovecot as needed."""
        with self.wire(user) as w:
            self._create(w, name, subscribe)

    def _create(self, w, name, subscribe=True):
        """CREATE (and SUBSCRIBE) on an open ImapWire; existing is fine."""
        if name.upper() == 'INBOX':
            return
        box = quote(mutf7_encode(name))
        try:
            w.command(b'CREATE', box)
        except ImapError as e:
            if 'ALREADYEXISTS' not in str(e) and 'exists' not in str(e):
                raise
        if subscribe:
            w.command(b'SUBSCRIBE', box)

    def append(self, user, folder, raw, flags='', date=None):
        """APPEND one message (bytes, sent exactly as given) to `folder`,
        creating it if missing.  Returns the UID from APPENDUID."""
        with self.wire(user) as w:
            self._create(w, folder)
            return self._append(w, folder, [(raw, flags, date)])[0]

    def append_many(self, user, folder, messages, flags='', batch=500):
        """APPEND a list of messages on one connection.

        Each item is raw bytes (stored with `flags`) or a tuple
        (raw, flags, date).  Uses MULTIAPPEND with LITERAL+ (one command
        per `batch` messages, no round trip per message).  Returns the list
        of new UIDs in order.
        """
        uids = []
        with self.wire(user) as w:
            self._create(w, folder)
            chunk = []
            size = 0
            for item in messages:
                if isinstance(item, (bytes, bytearray)):
                    item = (bytes(item), flags, None)
                raw = item[0]
                chunk.append(tuple(item))
                size += len(raw)
                if len(chunk) >= batch or size > 64 << 20:
                    uids += self._append(w, folder, chunk)
                    chunk, size = [], 0
            if chunk:
                uids += self._append(w, folder, chunk)
        return uids

    def _append(self, w, folder, items):
        """One (MULTI)APPEND command; items are (raw, flags, date)."""
        args = [b'APPEND', quote(mutf7_encode(folder))]
        for raw, flags, date in items:
            fl = _flag_list(flags)
            if fl:
                args.append(fl)
            if date is not None:
                args.append(_imap_date(date).encode())
            args.append(Literal(raw))
        _, text = w.command(*args)
        m = re.search(r'\[APPENDUID \d+ ([\d:,]+)\]', text)
        if m is None:
            raise ImapError('no APPENDUID in %r' % text)
        return parse_uid_set(m.group(1))

    def deliver_maildir(self, user, folder, raw, flags='', sync=True):
        """Write a message file straight into the folder's maildir.

        For content IMAP APPEND cannot carry (NUL bytes, bare LF).  The
        file is written to tmp/ and renamed into new/ (or cur/ with the
        maildir info ':2,<flags>' when flags are given, e.g. 'S' or
        '\\Seen'), owned by the mail uid.  The folder is created over IMAP
        if missing.  With sync=True the folder is then opened over IMAP so
        Dovecot assigns a UID, which is returned (else returns the path).
        """
        path = self.folder_path(user, folder)
        if not os.path.isdir(os.path.join(path, 'cur')):
            if folder.upper() == 'INBOX':
                self.folder_uids(user, 'INBOX')   # Dovecot creates it
            else:
                self.create_folder(user, folder)
        before = set(self.folder_uids(user, folder)) if sync else None
        letters = {'\\draft': 'D', '\\flagged': 'F', '\\answered': 'R',
                   '\\seen': 'S', '\\deleted': 'T'}
        if isinstance(flags, str) and '\\' not in flags:
            info = ''.join(sorted(set(flags)))
        else:
            words = flags.split() if isinstance(flags, str) else flags
            info = ''.join(sorted(letters[f.lower()] for f in words))
        with self._lock:
            self._seq += 1
            seq = self._seq
        now = time.time()
        base = '%d.M%dP%dQ%d.%s,S=%d' % (
            int(now), int(now * 1e6) % 1000000, os.getpid(), seq,
            socket.gethostname().replace('/', '_').replace(':', '_'),
            len(raw))
        tmp = os.path.join(path, 'tmp', base)
        with open(tmp, 'wb') as f:
            f.write(raw)
        os.chown(tmp, self.mail_uid, self.mail_gid)
        os.chmod(tmp, 0o600)
        if flags:
            final = os.path.join(path, 'cur', base + ':2,' + info)
        else:
            final = os.path.join(path, 'new', base)
        os.rename(tmp, final)
        if not sync:
            return final
        new = sorted(set(self.folder_uids(user, folder)) - before)
        if len(new) != 1:
            raise MailServerError('expected one new UID, got %r' % new)
        return new[0]

    # -------------------------------------------------------- mail out

    def _examine(self, w, folder):
        """EXAMINE `folder`; return its EXISTS count."""
        untagged, _ = w.command(b'EXAMINE', quote(mutf7_encode(folder)))
        exists = 0
        for resp in untagged:
            m = re.match(r'\* (\d+) EXISTS', resp.text)
            if m:
                exists = int(m.group(1))
        return exists

    def folder_uids(self, user, folder):
        """Sorted list of UIDs in `folder`."""
        with self.wire(user) as w:
            if not self._examine(w, folder):
                return []
            untagged, _ = w.command(b'UID SEARCH ALL')
            uids = []
            for resp in untagged:
                if resp.text.startswith('* SEARCH'):
                    uids += [int(x) for x in resp.text.split()[2:]]
            return sorted(uids)

    def _fetch(self, user, folder, items, key):
        """UID FETCH 1:* `items`; return {uid: value of item `key`}."""
        out = {}
        with self.wire(user) as w:
            if not self._examine(w, folder):
                return out
            untagged, _ = w.command(b'UID FETCH 1:*', items)
            for resp in untagged:
                parsed = fetch_items(resp)
                if parsed is None:
                    continue
                _, data = parsed
                out[int(data['UID'])] = data[key]
        return out

    def message_names(self, user, folder):
        """{uid: file name} as the mount should name each message,
        computed here independently of mailfs: INTERNALDATE in UTC,
        RFC822.SIZE, the first 8 hex digits of the SHA-256 of the
        unfolded, trimmed Message-ID value, '-N' for the N-th message
        (ascending UID) that shares all three."""
        out = {}
        with self.wire(user) as w:
            if not self._examine(w, folder):
                return out
            untagged, _ = w.command(
                b'UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE '
                b'BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
            rows = []
            for resp in untagged:
                parsed = fetch_items(resp)
                if parsed is None:
                    continue
                _, data = parsed
                hdr = [v for k, v in data.items()
                       if k.startswith('BODY[HEADER.FIELDS')]
                rows.append((int(data['UID']), str(data['INTERNALDATE']),
                             int(data['RFC822.SIZE']),
                             hdr[0] if hdr and hdr[0] is not None else b''))
        seen = {}
        for uid, date, size, hdr in sorted(rows):
            base = message_base_name(date, size, hdr)
            n = seen.get(base, 0) + 1
            seen[base] = n
            out[uid] = base + ('-%d' % n if n > 1 else '') + '.eml'
        return out

    def fetch_all(self, user, folder):
        """{uid: bytes of BODY.PEEK[]} for every message (no \\Seen set)."""
        return self._fetch(user, folder, b'(UID BODY.PEEK[])', 'BODY[]')

    def flags(self, user, folder):
        """{uid: set of flag strings} for every message."""
        got = self._fetch(user, folder, b'(UID FLAGS)', 'FLAGS')
        return {uid: set(fl) for uid, fl in got.items()}

    def sizes(self, user, folder):
        """{uid: RFC822.SIZE}."""
        got = self._fetch(user, folder, b'(UID RFC822.SIZE)', 'RFC822.SIZE')
        return {uid: int(v) for uid, v in got.items()}

    def list_folders(self, user):
        """Names (decoded UTF-8) of all folders, as LIST "" "*" gives."""
        names = []
        with self.wire(user) as w:
            untagged, _ = w.command(b'LIST "" "*"')
            for resp in untagged:
                toks = resp.tokens
                if len(toks) >= 5 and toks[1] == 'LIST':
                    name = toks[4]
                    if isinstance(name, bytes):
                        name = name.decode('latin-1')
                    names.append(mutf7_decode(name))
        return names

    # -------------------------------------------------------- rawlog

    def _rawlog_files(self, user):
        """Yield (protocol, path of .in file) for every recorded session."""
        for proto in ('imap', 'pop3'):
            d = self._rawlog_dir(proto, user)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                if name.endswith('.in'):
                    yield proto, os.path.join(d, name)

    def rawlog_sessions(self, user, protocol=None):
        """Sessions recorded for `user` since the last clear_rawlog(),
        oldest first; requires rawlog=True.  protocol: None, 'imap', 'pop3'.
        """
        if not self.rawlog:
            raise MailServerError('server started without rawlog=True')
        sessions = []
        for proto, path in self._rawlog_files(user):
            if protocol and proto != protocol:
                continue
            base_in, base_out = self._rawlog_base.get(path, (0, 0))
            s = RawlogSession(proto, path, base_in, base_out)
            if s.bytes_in or s.bytes_out:
                sessions.append(s)
        sessions.sort(key=lambda s: (s.start or 0, s.path))
        return sessions

    def drop_rawlog_files(self, user):
        """Deletes `user`'s rawlog files without reading them (a session
        that fetched gigabytes); only for sessions already closed."""
        for _, path in self._rawlog_files(user):
            for p in (path, path[:-3] + '.out'):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            self._rawlog_base.pop(path, None)

    def clear_rawlog(self, user):
        """Forget what was recorded so far for `user`.

        Files of sessions still open keep growing, so the current sizes are
        remembered as a baseline rather than deleting anything.
        """
        for _, path in self._rawlog_files(user):
            out = path[:-3] + '.out'
            size_out = os.path.getsize(out) if os.path.exists(out) else 0
            self._rawlog_base[path] = (os.path.getsize(path), size_out)

    def __repr__(self):
        return '<MailServer %s imap=%s imaps=%s pop3=%s pop3s=%s>' % (
            self.tmpdir, self.imap_port, self.imaps_port, self.pop3_port,
            self.pop3s_port)
