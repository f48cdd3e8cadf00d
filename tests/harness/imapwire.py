"""A small IMAP client on a raw socket, plus modified UTF-7 for mailbox names.

The harness uses it instead of imaplib where imaplib gets in the way:
imaplib rewrites line endings in APPEND (so byte-exact tests could not
trust it), cannot pipeline, and leaves FETCH responses half parsed.  This
client sends LITERAL+ literals, does MULTIAPPEND, and parses responses into
nested Python lists, with literals kept as exact bytes.

It only has to talk to Dovecot on loopback, so it is strict and simple: any
NO/BAD raises ImapError.
"""

import base64
import re
import socket

__all__ = ['mutf7_encode', 'mutf7_decode', 'quote', 'ImapError', 'ImapWire',
           'parse_uid_set']


# ---------------------------------------------------------------- names

def mutf7_encode(name):
    """Encode a Unicode mailbox name to IMAP modified UTF-7 (RFC 3501 5.1.3).

    Printable ASCII stays as is, '&' becomes '&-', and every run of other
    characters becomes '&' + base64 of its UTF-16BE form (',' instead of
    '/', no '=' padding) + '-'.
    """
    out = []
    run = []

    def flush():
        """Emit the pending run of non-ASCII characters."""
        if run:
            raw = ''.join(run).encode('utf-16-be')
            b64 = base64.b64encode(raw).decode('ascii').rstrip('=')
            out.append('&' + b64.replace('/', ',') + '-')
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            run.append(ch)
    flush()
    return ''.join(out)


def mutf7_decode(name):
    """Decode modified UTF-7 back to Unicode (inverse of mutf7_encode)."""
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != '&':
            out.append(ch)
            i += 1
            continue
        end = name.index('-', i)
        chunk = name[i + 1:end]
        if not chunk:
            out.append('&')
        else:
            b64 = chunk.replace(',', '/')
            b64 += '=' * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode('utf-16-be'))
        i = end + 1
    return ''.join(out)


def quote(text):
    """Return `text` (str or bytes) as an IMAP quoted string, as bytes."""
    if isinstance(text, str):
        text = text.encode('utf-8')
    return b'"' + text.replace(b'\\', b'\\\\').replace(b'"', b'\\"') + b'"'


def parse_uid_set(text):
    """Expand an IMAP sequence set such as '1:3,7' to [1, 2, 3, 7]."""
    uids = []
    for part in text.split(','):
        if ':' in part:
            lo, hi = (int(x) for x in part.split(':'))
            if lo > hi:
                lo, hi = hi, lo
            uids.extend(range(lo, hi + 1))
        elif part:
            uids.append(int(part))
    return uids


# ---------------------------------------------------------------- parsing

class ImapError(Exception):
    """A command got NO or BAD, or the server closed the connection."""


class Literal(bytes):
    """Marks a command argument to be sent as an IMAP literal."""


_LITERAL_AT_END = re.compile(rb'~?\{(\d+)\+?\}\r\n$')


def _tokenize(text, literals):
    """Turn response text into nested lists.

    `text` is the response with each literal replaced by '\\0N\\0' (N its
    index in `literals`); server lines never contain NUL, so the marker is
    unambiguous.  Atoms and quoted strings come back as str, NIL as None,
    literals as bytes, parenthesised lists as lists.  An atom that contains
    '[' runs to the matching ']' so that BODY[HEADER.FIELDS (A B)] stays one
    token.
    """
    stack = [[]]
    pos = 0
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == ' ':
            pos += 1
        elif c == '(':
            stack.append([])
            pos += 1
        elif c == ')':
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif c == '"':
            pos += 1
            chars = []
            while text[pos] != '"':
                if text[pos] == '\\':
                    pos += 1
                chars.append(text[pos])
                pos += 1
            pos += 1
            stack[-1].append(''.join(chars))
        elif c == '\0':
            end = text.index('\0', pos + 1)
            stack[-1].append(literals[int(text[pos + 1:end])])
            pos = end + 1
        else:
            start = pos
            depth = 0
            while pos < n:
                c = text[pos]
                if c == '[':
                    depth += 1
                elif c == ']':
                    depth -= 1
                elif depth == 0 and c in ' ()':
                    break
                pos += 1
            atom = text[start:pos]
            stack[-1].append(None if atom.upper() == 'NIL' else atom)
    return stack[0]


class Response:
    """One server response: `line` (text with literal markers), `literals`,
    `tokens` (parsed), and `tag` ('*', '+' or the command tag)."""

    def __init__(self, text, literals):
        """Build from text (latin-1 str with markers) and literal bytes."""
        self.text = text
        self.literals = literals
        self.tag = text.split(' ', 1)[0]
        self._tokens = None

    @property
    def tokens(self):
        """The response parsed by _tokenize, computed on first use."""
        if self._tokens is None:
            self._tokens = _tokenize(self.text.rstrip('\r\n'),
                                     self.literals)
        return self._tokens

    def __repr__(self):
        return '<Response %r>' % self.text[:120]


def fetch_items(resp):
    """For an untagged '* N FETCH (...)' response, return (N, dict).

    The dict maps upper-case item names ('UID', 'FLAGS', 'BODY[]', ...) to
    their values.  Returns None for any other response.
    """
    toks = resp.tokens
    if len(toks) < 4 or toks[0] != '*' or str(toks[2]).upper() != 'FETCH':
        return None
    items = toks[3]
    out = {}
    for i in range(0, len(items) - 1, 2):
        out[str(items[i]).upper()] = items[i + 1]
    return int(toks[1]), out


# ---------------------------------------------------------------- client

class ImapWire:
    """A minimal synchronous IMAP client on one socket.

    `sock` may already be TLS-wrapped.  `command()` sends one command and
    returns (untagged responses, tagged response text); it raises ImapError
    on NO/BAD.  Literals are sent non-synchronising when the server offers
    LITERAL+, else it waits for each '+' continuation.
    """

    def __init__(self, sock, timeout=60):
        """Take over a connected socket and read the greeting."""
        self.sock = sock
        self.sock.settimeout(timeout)
        self.file = sock.makefile('rb', buffering=1 << 16)
        self._tagnum = 0
        self.capabilities = set()
        greeting = self.read_response()
        if not greeting.text.startswith('* OK'):
            raise ImapError('bad greeting: %r' % greeting.text)
        self._caps_from(greeting.text)

    @classmethod
    def connect(cls, host, port, ssl_context=None,
                server_hostname='localhost', timeout=60):
        """Open a TCP (optionally implicit TLS) connection to host:port."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock,
                                           server_hostname=server_hostname)
        return cls(sock, timeout)

    def _caps_from(self, text):
        """Record capabilities from a '[CAPABILITY ...]' code or response."""
        m = re.search(r'\[CAPABILITY ([^\]]*)\]', text)
        if m is None:
            m = re.match(r'\* CAPABILITY (.*)', text)
        if m is not None:
            self.capabilities = set(m.group(1).upper().split())

    # -- reading

    def _readline(self):
        """Read one CRLF-terminated line; raise ImapError on EOF."""
        line = self.file.readline()
        if not line:
            raise ImapError('connection closed by server')
        return line

    def read_response(self):
        """Read one complete response, including any literals in it."""
        parts = []
        literals = []
        while True:
            line = self._readline()
            m = _LITERAL_AT_END.search(line)
            if m is None:
                parts.append(line.decode('latin-1'))
                break
            size = int(m.group(1))
            data = self.file.read(size)
            if len(data) != size:
                raise ImapError('connection closed inside a literal')
            parts.append(line[:m.start()].decode('latin-1'))
            parts.append('\0%d\0' % len(literals))
            literals.append(data)
        return Response(''.join(parts), literals)

    # -- writing

    def _next_tag(self):
        """Return a fresh command tag."""
        self._tagnum += 1
        return 'H%04d' % self._tagnum

    def command(self, *args):
        """Send one command built from `args` and wait for its completion.

        Each argument is bytes/str (sent verbatim, space-separated) or a
        Literal (sent as a literal).  Returns (untagged, tagged_text).
        """
        tag = self._next_tag()
        self._send(tag, args)
        return self.wait(tag)

    def _send(self, tag, args):
        """Write a command; handle literal continuation if needed."""
        nonsync = 'LITERAL+' in self.capabilities
        buf = tag.encode()
        for arg in args:
            if isinstance(arg, Literal):
                if nonsync:
                    buf += b' {%d+}\r\n' % len(arg) + arg
                else:
                    buf += b' {%d}\r\n' % len(arg)
                    self.sock.sendall(buf)
                    buf = b''
                    resp = self.read_response()
                    if resp.tag != '+':
                        raise ImapError('literal refused: %r' % resp.text)
                    buf = bytes(arg)
            else:
                if isinstance(arg, str):
                    arg = arg.encode('utf-8')
                buf += b' ' + arg
        # The first argument follows the tag with one space; a literal
        # directly after another literal needs none extra (handled above).
        self.sock.sendall(buf + b'\r\n')

    def wait(self, tag):
        """Read responses until `tag` completes; return (untagged, text)."""
        untagged = []
        while True:
            resp = self.read_response()
            if resp.tag == tag:
                status = resp.text.split(' ', 2)[1].upper()
                if status != 'OK':
                    raise ImapError(resp.text.strip())
                self._caps_from(resp.text)
                return untagged, resp.text
            if resp.tag == '*':
                self._caps_from(resp.text)
            untagged.append(resp)

    # -- conveniences

    def login(self, user, password):
        """LOGIN with quoted strings; refreshes capabilities."""
        self.command(b'LOGIN', quote(user), quote(password))
        if not self.capabilities or 'AUTH=PLAIN' in self.capabilities:
            self.command(b'CAPABILITY')

    def logout(self):
        """LOGOUT and close the socket, ignoring errors."""
        try:
            self.command(b'LOGOUT')
        except (ImapError, OSError):
            pass
        self.close()

    def close(self):
        """Close the socket."""
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.logout()
