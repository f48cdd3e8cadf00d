"""The baseline of the benchmark: the least an IMAP client can do to grep
a folder.

It connects over implicit TLS, logs in, then sends EXAMINE and one
`UID FETCH 1:* (BODY.PEEK[])` in a single write (pipelined: one round trip
for both) and reads every body as it streams in.  grep_folder() times all
of it; grep_folder_logged_in() logs in first and times only what follows
(what a client already connected, as a mounted mailfs is, has left to
do).  Plain sockets and ssl,
nothing else, so the numbers say what the network and the server cost,
without any client-side cleverness or overhead to hide behind.
"""

import re
import socket
import ssl

# A line that announces a literal: "... {123}\r\n".
_LITERAL = re.compile(rb'\{(\d+)\}\r\n\Z')
_UID = re.compile(rb'\bUID (\d+)')


class RawImapError(RuntimeError):
    """The server said NO/BAD, or closed the connection."""


def _quoted(text):
    """An IMAP quoted string for text (str)."""
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


class RawImap:
    """One IMAP session over implicit TLS."""

    def __init__(self, host, port, cafile, timeout=300):
        ctx = ssl.create_default_context(cafile=cafile)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = ctx.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.reader = self.sock.makefile('rb', buffering=1 << 20)
        self.counter = 0
        self.commands = 0
        text, _ = self.read_response()
        if not text.startswith(b'* OK'):
            raise RawImapError('greeting: %r' % text[:200])

    def read_response(self):
        """One complete server response: (text, literals).  `text` keeps
        the "{N}" markers in place of each literal's bytes."""
        parts = []
        literals = []
        while True:
            line = self.reader.readline()
            if not line:
                raise RawImapError('connection closed by the server')
            m = _LITERAL.search(line)
            if m is None:
                parts.append(line.rstrip(b'\r\n'))
                return b''.join(parts), literals
            parts.append(line[:-2])
            size = int(m.group(1))
            data = self.reader.read(size)
            if len(data) != size:
                raise RawImapError('connection closed inside a literal')
            literals.append(data)

    def send(self, *commands):
        """Writes the commands in one go (a pipeline); returns their tags."""
        tags = []
        out = []
        for cmd in commands:
            self.counter += 1
            tag = 'r%d' % self.counter
            tags.append(tag)
            out.append(('%s %s\r\n' % (tag, cmd)).encode())
        self.sock.sendall(b''.join(out))
        self.commands += len(commands)
        return tags

    def wait(self, tag, untagged=None):
        """Reads responses up to the tagged answer for `tag`, passing each
        untagged one to untagged(text, literals).  Raises on NO/BAD."""
        want = tag.encode() + b' '
        while True:
            text, literals = self.read_response()
            if text.startswith(want):
                status = text[len(want):].split(b' ', 1)[0].upper()
                if status != b'OK':
                    raise RawImapError(text.decode('utf-8', 'replace'))
                return text
            if untagged is not None and text.startswith(b'* '):
                untagged(text, literals)

    def login(self, user, password):
        tag, = self.send('LOGIN %s %s' % (_quoted(user), _quoted(password)))
        self.wait(tag)

    def fetch_folder(self, folder):
        """EXAMINE folder and UID FETCH 1:* (BODY.PEEK[]), pipelined;
        returns {uid: body bytes}.  folder must be plain ASCII."""
        bodies = {}

        def on_fetch(text, literals):
            if b' FETCH ' not in text or not literals:
                return
            m = _UID.search(text)
            if m is None:
                raise RawImapError('FETCH without UID: %r' % text[:200])
            bodies[int(m.group(1))] = literals[0]

        examine, fetch = self.send('EXAMINE %s' % _quoted(folder),
                                   'UID FETCH 1:* (BODY.PEEK[])')
        self.wait(examine)
        self.wait(fetch, on_fetch)
        return bodies

    def logout(self):
        """Sends LOGOUT and closes without waiting for the answer: a user
        of the bodies would not wait for it either."""
        try:
            self.send('LOGOUT')
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass


def grep_folder(host, port, cafile, user, password, folder, word):
    """The whole baseline: connect, log in, fetch every body of folder,
    and return ({uid: body}, set of uids whose body contains word)."""
    client = RawImap(host, port, cafile)
    try:
        client.login(user, password)
        bodies = client.fetch_folder(folder)
    finally:
        client.logout()
    hits = {uid for uid, body in bodies.items() if word in body}
    return bodies, hits


def grep_folder_logged_in(host, port, cafile, user, password, folder, word,
                          clock):
    """The baseline after the login: connect and log in (not timed), then
    EXAMINE, fetch every body of folder and grep them.  Returns
    ({uid: body}, set of uids whose body contains word, seconds from the
    EXAMINE sent to the grep done, by clock())."""
    client = RawImap(host, port, cafile)
    try:
        client.login(user, password)
        t0 = clock()
        bodies = client.fetch_folder(folder)
        hits = {uid for uid, body in bodies.items() if word in body}
        took = clock() - t0
    finally:
        client.logout()
    return bodies, hits, took
