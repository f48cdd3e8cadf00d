"""A private Cyrus IMAP 3.6 server on loopback, beside Dovecot, for tests.

Cyrus offers what the harness's Dovecot does not: OBJECTID (RFC 8474:
EMAILID, THREADID), DIGEST=SHA1, and COMPRESS=DEFLATE without a plugin.
Its Debian packages conflict with Dovecot's (both provide imap-server),
so they are never installed: `make deps` (packaging/deps.sh) fetches
them with `apt-get download` and unpacks them with `dpkg-deb -x` into
/var/cache/mailfs-test/cyrus/root (MAILFS_CYRUS_DIR moves it), and
`CyrusServer` runs its `master` from there with LD_LIBRARY_PATH.

Notes learned on Debian 12 / Cyrus 3.6.1:
  * master refuses to run as root: it takes `cyrus_user` (here `mail`),
    which must own the config and partition folders and be able to read
    the TLS key; master stays in the foreground with -D.
  * logins go through SASL auxprop with a private sasldb made by
    saslpasswd2 (from sasl2-bin, unpacked beside Cyrus); a user's INBOX
    must be made by an admin (CREATE user.NAME) before the user logs in.
  * folders sit under INBOX with '.' as separator: INBOX.Src.
  * EMAILID is "M" and 24 hex digits of the message's SHA-1 (its
    DIGEST.SHA1): the same bytes appended twice get the same EMAILID, a
    COPY or MOVE keeps it.
  * Cyrus logs through syslog only; there is no log file to read.
"""

import imaplib
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

from .certs import CertAuthority
from .imapwire import ImapError, ImapWire, Literal, parse_uid_set, quote
# One registry of servers a test forgot, stopped at interpreter exit by
# mailserver's handler.
from .mailserver import _LIVE, _free_ports, _imap_date, _port_bindable

__all__ = ['CyrusServer', 'CyrusError', 'cyrus_root', 'cyrus_available']

SETPRIV = shutil.which('setpriv')


class CyrusError(RuntimeError):
    """Cyrus could not be configured, started or stopped."""


def cyrus_root():
    """The folder `make deps` unpacked Cyrus into."""
    base = os.environ.get('MAILFS_CYRUS_DIR', '/var/cache/mailfs-test/cyrus')
    return os.path.join(base, 'root')


def cyrus_available():
    """'' when Cyrus is unpacked and can run here, else why not."""
    root = cyrus_root()
    if not os.path.exists(os.path.join(root, '.unpacked')):
        return 'Cyrus IMAP is not unpacked in %s (run make deps)' % root
    if not os.path.exists(os.path.join(root, 'usr/lib/cyrus/bin/master')):
        return 'no Cyrus master in %s' % root
    if os.geteuid() != 0:
        return 'Cyrus runs as its own user: the tests need root'
    return ''


def _flag_list(flags):
    """'\\Seen x' -> b'(\\Seen x)', '' -> b''."""
    words = flags.split() if isinstance(flags, str) else list(flags)
    return ('(%s)' % ' '.join(words)).encode() if words else b''


class CyrusServer:
    """Cyrus IMAP on 127.0.0.1: IMAP (imap_port) and IMAPS (imaps_port).

    Use as a context manager, or start() / stop() / cleanup().  Users are
    made at start() with their passwords (`users`), each with an INBOX.
    Attributes after start: imap_port, imaps_port, cafile (the CA of the
    server's certificate, tests/harness/certs.py), certfile, keyfile,
    tmpdir, users, separator ('.'), admin, admin_password.
    """

    separator = '.'

    def __init__(self, users=None, suppress=()):
        """Prepare (but do not start) a server.

        users: {name: password}; default alice, with a random password.
        suppress: capabilities Cyrus is to hide (suppress_capabilities),
          e.g. ('COMPRESS=DEFLATE',) or ('OBJECTID',).
        """
        rnd = random.SystemRandom()

        def secret():
            return ''.join(rnd.choice(string.ascii_letters + string.digits)
                           for _ in range(16))

        self.users = dict(users) if users else {'alice': secret()}
        self.admin = 'cyrus'
        self.admin_password = secret()
        self.suppress = tuple(suppress)
        self.root = cyrus_root()
        pw = pwd.getpwnam('mail')
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.tmpdir = None
        self.proc = None
        self.imap_port = self.imaps_port = None

    # -------------------------------------------------------- lifecycle

    def _bin(self, name):
        return os.path.join(self.root, 'usr/lib/cyrus/bin', name)

    def _env(self):
        env = dict(os.environ)
        env['LD_LIBRARY_PATH'] = os.path.join(self.root,
                                              'usr/lib/x86_64-linux-gnu')
        return env

    def _prepare_tmpdir(self):
        """The private tree: config, partition, sockets, TLS, sasldb."""
        why = cyrus_available()
        if why:
            raise CyrusError(why)
        self.tmpdir = tempfile.mkdtemp(prefix='mailfs-cyrus-', dir='/tmp')
        os.chmod(self.tmpdir, 0o755)
        for sub in ('conf', 'part', 'sock', 'run', 'tls'):
            os.makedirs(os.path.join(self.tmpdir, sub))
        ca = CertAuthority(os.path.join(self.tmpdir, 'tls'), 'mailfs test CA')
        self.ca = ca
        self.cafile = ca.cafile
        self.certfile, self.keyfile = ca.issue('localhost')
        self.sasldb = os.path.join(self.tmpdir, 'sasldb2')
        accounts = dict(self.users)
        accounts[self.admin] = self.admin_password
        for user, password in accounts.items():
            subprocess.run(
                [os.path.join(self.root, 'usr/sbin/saslpasswd2'), '-p', '-f',
                 self.sasldb, '-c', '-u', 'localhost', user],
                input=password.encode(), env=self._env(), check=True,
                capture_output=True)
        for dirpath, dirnames, filenames in os.walk(self.tmpdir):
            for name in [dirpath] + [os.path.join(dirpath, n)
                                     for n in filenames]:
                os.chown(name, self.uid, self.gid)

    def _write_config(self):
        d = self.tmpdir
        self.conf_path = os.path.join(d, 'imapd.conf')
        self.cyrus_conf = os.path.join(d, 'cyrus.conf')
        conf = {
            'configdirectory': os.path.join(d, 'conf'),
            'partition-default': os.path.join(d, 'part'),
            'servername': 'localhost',
            'cyrus_user': 'mail',
            'admins': self.admin,
            'sasl_pwcheck_method': 'auxprop',
            'sasl_auxprop_plugin': 'sasldb',
            'sasl_sasldb_path': self.sasldb,
            'sasl_mech_list': 'PLAIN LOGIN',
            'allowplaintext': 'yes',
            'tls_server_cert': self.certfile,
            'tls_server_key': self.keyfile,
            'lmtpsocket': os.path.join(d, 'sock', 'lmtp'),
            'idlesocket': os.path.join(d, 'sock', 'idle'),
            'notifysocket': os.path.join(d, 'sock', 'notify'),
            'syslog_prefix': 'mailfs-test-cyrus',
            'altnamespace': 'no',
            'unixhierarchysep': 'no',
            'virtdomains': 'off',
        }
        if self.suppress:
            conf['suppress_capabilities'] = ' '.join(self.suppress)
        with open(self.conf_path, 'w') as f:
            for k, v in conf.items():
                f.write('%s: %s\n' % (k, v))
        imapd, conf = self._bin('imapd'), self.conf_path
        with open(self.cyrus_conf, 'w') as f:
            f.write('START {\n  recover cmd="%s -r -C %s"\n}\n'
                    % (self._bin('ctl_cyrusdb'), conf))
            f.write('SERVICES {\n')
            f.write('  imap cmd="%s -C %s" listen="127.0.0.1:%d" '
                    'prefork=0\n' % (imapd, conf, self.imap_port))
            f.write('  imaps cmd="%s -s -C %s" listen="127.0.0.1:%d" '
                    'prefork=0\n' % (imapd, conf, self.imaps_port))
            f.write('}\nEVENTS {\n}\nDAEMON {\n}\n')
        for p in (self.conf_path, self.cyrus_conf):
            os.chown(p, self.uid, self.gid)

    def start(self):
        """Start Cyrus, wait until both ports greet, and make the users'
        INBOXes. Raises CyrusError if it does not come up."""
        if self.proc is not None:
            return self
        if self.tmpdir is None:
            self._prepare_tmpdir()
        last = None
        for _ in range(3):
            self.imap_port, self.imaps_port = _free_ports(2)
            self._write_config()
            try:
                self._launch()
                break
            except CyrusError as e:
                last = e
        else:
            raise last
        _LIVE.add(self)
        for user in self.users:
            self._make_user(user)
        return self

    def _launch(self):
        cmd = [self._bin('master'), '-D', '-C', self.conf_path,
               '-M', self.cyrus_conf,
               '-p', os.path.join(self.tmpdir, 'run', 'master.pid')]
        if SETPRIV and threading.current_thread() is threading.main_thread():
            cmd = [SETPRIV, '--pdeathsig', 'TERM'] + cmd
        out = open(os.path.join(self.tmpdir, 'master.log'), 'ab')
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out,
                                         env=self._env(),
                                         start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + 20
        for port, tls in ((self.imap_port, False), (self.imaps_port, True)):
            while True:
                if self.proc.poll() is not None:
                    self.proc = None
                    raise CyrusError('master exited at start: %s'
                                     % self._log_tail())
                try:
                    self._greeting(port, tls)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self._kill_group()
                        raise CyrusError('Cyrus did not answer on port %d'
                                         % port)
                    time.sleep(0.05)

    def _greeting(self, port, tls):
        """Reads the greeting on port (raises OSError until it comes)."""
        with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
            if tls:
                with self.ssl_context().wrap_socket(
                        s, server_hostname='localhost') as t:
                    line = t.recv(200)
            else:
                line = s.recv(200)
        if not line.startswith(b'* OK'):
            raise OSError('no greeting yet: %r' % line)

    def _log_tail(self):
        try:
            with open(os.path.join(self.tmpdir, 'master.log'), 'rb') as f:
                return f.read()[-2000:].decode(errors='replace')
        except OSError:
            return ''

    def _make_user(self, user):
        """CREATE user.NAME as the admin (the user's INBOX)."""
        c = self._login(self.admin, self.admin_password)
        try:
            typ, data = c.create('user.%s' % user)
            if typ != 'OK' and b'exists' not in b' '.join(
                    d for d in data if d).lower():
                raise CyrusError('cannot make user %s: %r' % (user, data))
        finally:
            c.logout()

    def _kill_group(self):
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
        self.proc = None

    def stop(self, timeout=10):
        """SIGTERM to Cyrus's processes (clients are cut off), SIGKILL to
        what is left after `timeout`; returns once the ports are free."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self._kill_group()
        _LIVE.discard(self)
        deadline = time.monotonic() + timeout
        while not all(_port_bindable(p)
                      for p in (self.imap_port, self.imaps_port)):
            if time.monotonic() > deadline:
                raise CyrusError('ports still in use after stop')
            time.sleep(0.02)

    def cleanup(self):
        """Removes the private tree unless MAILFS_KEEP_TMP=1."""
        if self.tmpdir and os.environ.get('MAILFS_KEEP_TMP') != '1':
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()

    # -------------------------------------------------------- clients

    def ssl_context(self):
        """A client context that trusts cafile and checks host names."""
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = True
        return ctx

    def _login(self, user, password):
        c = imaplib.IMAP4_SSL('localhost', self.imaps_port,
                              ssl_context=self.ssl_context(), timeout=60)
        try:
            c.login(user, password)
        except BaseException:
            c.shutdown()
            raise
        return c

    def imap(self, user, password=None):
        """A logged-in imaplib client over implicit TLS."""
        return self._login(user, self.users[user] if password is None
                           else password)

    def wire(self, user):
        """A logged-in ImapWire (raw client) over implicit TLS."""
        w = ImapWire.connect('127.0.0.1', self.imaps_port,
                             ssl_context=self.ssl_context())
        w.login(user, self.users[user])
        return w

    @staticmethod
    def folder_name(*parts):
        """A folder under INBOX: folder_name('Src') == 'INBOX.Src'."""
        return '.'.join(('INBOX',) + parts)

    def capabilities(self, user):
        """The capabilities Cyrus announces after login."""
        c = self.imap(user)
        try:
            return set(c.capability()[1][0].decode().upper().split())
        finally:
            c.logout()

    # -------------------------------------------------------- mail in

    def create_folder(self, user, name):
        """CREATE name (a full name: INBOX.X); no error if it exists."""
        if name.upper() == 'INBOX':
            return
        c = self.imap(user)
        try:
            typ, data = c.create(quote(name).decode())
            if typ != 'OK' and not any(
                    d and b'exist' in d.lower() for d in data):
                raise CyrusError('CREATE %s: %r' % (name, data))
            c.subscribe(quote(name).decode())
        finally:
            c.logout()

    def append(self, user, folder, raw, flags='', date=None):
        """APPEND one message (bytes as given) to folder, made if missing;
        returns its UID (APPENDUID)."""
        return self.append_many(user, folder, [(raw, flags, date)])[0]

    def append_many(self, user, folder, messages, flags='', batch=200):
        """MULTIAPPEND messages (bytes, or (raw, flags, date)) to folder,
        made if missing, `batch` a command; returns their UIDs in order."""
        self.create_folder(user, folder)
        uids = []
        with self.wire(user) as w:
            chunk = []
            for item in messages:
                if isinstance(item, (bytes, bytearray)):
                    item = (bytes(item), flags, None)
                chunk.append(item)
                if len(chunk) >= batch:
                    uids += self._append(w, folder, chunk)
                    chunk = []
            if chunk:
                uids += self._append(w, folder, chunk)
        return uids

    @staticmethod
    def _append(w, folder, items):
        args = [b'APPEND', quote(folder)]
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

    def copy_folder(self, user, src, dst, move=False):
        """A server-side UID COPY (or UID MOVE) of every message of src to
        dst (made if missing) with imaplib; returns {src uid: dst uid}
        from COPYUID."""
        self.create_folder(user, dst)
        c = self.imap(user)
        try:
            typ, _ = c.select(quote(src).decode())
            if typ != 'OK':
                raise CyrusError('SELECT %s failed' % src)
            typ, data = c.uid('MOVE' if move else 'COPY', '1:*',
                              quote(dst).decode())
            if typ != 'OK':
                raise CyrusError('UID COPY to %s: %r' % (dst, data))
            _, codes = c.response('COPYUID')
            text = b' '.join(x for x in codes if x).decode()
            m = re.search(r'\d+ ([\d:,]+) ([\d:,]+)', text)
            if m is None:
                raise CyrusError('no COPYUID: %r' % (data,))
            return dict(zip(parse_uid_set(m.group(1)),
                            parse_uid_set(m.group(2))))
        finally:
            c.logout()

    # -------------------------------------------------------- mail out

    def _fetch(self, user, folder, items):
        """[(uid, {item: value})] of UID FETCH 1:* items, with imaplib."""
        c = self.imap(user)
        try:
            typ, data = c.select(quote(folder).decode(), readonly=True)
            if typ != 'OK':
                raise CyrusError('EXAMINE %s failed: %r' % (folder, data))
            if int(data[0]) == 0:
                return []
            typ, data = c.uid('FETCH', '1:*', items)
            if typ != 'OK':
                raise CyrusError('FETCH failed: %r' % data)
            out = []
            for item in data:
                head, body = (item if isinstance(item, tuple)
                              else (item, None))
                if not head or head == b')':
                    continue
                head = head.decode('latin-1')
                uid = int(re.search(r'UID (\d+)', head).group(1))
                out.append((uid, head, body))
            return out
        finally:
            c.logout()

    def fetch_all(self, user, folder):
        """{uid: BODY.PEEK[] bytes}, as imaplib fetches them."""
        return {uid: body for uid, _, body in
                self._fetch(user, folder, '(UID BODY.PEEK[])')}

    def sizes(self, user, folder):
        """{uid: RFC822.SIZE}."""
        return {uid: int(re.search(r'RFC822\.SIZE (\d+)', h).group(1))
                for uid, h, _ in self._fetch(user, folder,
                                             '(UID RFC822.SIZE)')}

    def emailids(self, user, folder):
        """{uid: EMAILID} (RFC 8474)."""
        return {uid: re.search(r'EMAILID \(([^)]*)\)', h).group(1)
                for uid, h, _ in self._fetch(user, folder, '(UID EMAILID)')}

    def folder_uids(self, user, folder):
        """The UIDs of folder, ascending."""
        return sorted(uid for uid, _, _ in
                      self._fetch(user, folder, '(UID)'))

    def __repr__(self):
        return '<CyrusServer imap=%s imaps=%s %s>' % (
            self.imap_port, self.imaps_port, self.tmpdir)
