"""A scripted TCP server for behaviour no real server shows on demand.

Malformed replies, endless literals, stalls, wrong greetings: a test gives
either a handler function, called in its own thread for every connection,
or a script of (expected line regex, reply) steps.

    def handler(conn):
        conn.send(b'* OK fake\\r\\n')
        line = conn.recv_line()
        ...
    with FakeServer(handler) as fake:
        ... connect to 127.0.0.1:fake.port ...

    script = [(None, b'* OK hi\\r\\n'),
              (rb'^(?P<tag>\\S+) CAPABILITY', b'* CAPABILITY IMAP4rev1\\r\\n'
                                             b'{tag} OK done\\r\\n')]
    with FakeServer(script=script) as fake: ...

In a script, None as the regex means "send without waiting"; a reply may
be bytes (b'{tag}' is replaced by the regex group 'tag') or a callable
(conn, match) -> bytes or None.  After the last step the connection stays
open until the client closes it (close_after_script=True closes it).
"""

import re
import socket
import ssl
import threading
import time

__all__ = ['FakeServer', 'FakeConn']


class FakeConn:
    """One accepted connection as seen by a handler."""

    def __init__(self, server, sock, addr):
        """Wrap an accepted socket (already TLS-wrapped if implicit TLS)."""
        self.server = server
        self.sock = sock
        self.addr = addr
        self._buf = b''
        self.received = []          # every line read by recv_line
        self.closed = False

    def send(self, data):
        """Send bytes (str is UTF-8 encoded); False if the peer is gone."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline):
        """Read more data into the buffer; False on EOF."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError('no data from client')
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError('no data from client') from None
        except OSError:
            chunk = b''
        if not chunk:
            return False
        self._buf += chunk
        return True

    def recv_line(self, timeout=10):
        """Return the next line including its line end; b'' on EOF.
        Raises TimeoutError if none arrives within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b'\n' not in self._buf:
            if not self._fill(deadline):
                line, self._buf = self._buf, b''
                break
        else:
            line, self._buf = self._buf.split(b'\n', 1)
            line += b'\n'
        if line:
            self.received.append(line)
            with self.server.lock:
                self.server.received.append(line)
        return line

    def recv_exact(self, n, timeout=10):
        """Return exactly n bytes (fewer only on EOF), e.g. a literal."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buf) < n:
            if not self._fill(deadline):
                break
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def starttls(self):
        """Upgrade to TLS as the server side (after replying to STARTTLS)."""
        self.sock.settimeout(10)
        self.sock = self.server.ssl_context.wrap_socket(self.sock,
                                                        server_side=True)

    def close(self):
        """Close the connection."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FakeServer:
    """Threaded scripted server on 127.0.0.1 (free port, see `.port`).

    handler(conn) or script=[(regex or None, reply)], not both.
    tls: None, 'implicit' (TLS from the first byte) or 'starttls' (plain;
      the handler calls conn.starttls()).  cert: (certfile, keyfile), e.g.
      from CertAuthority.issue() or a MailServer's (certfile, keyfile).
    Attributes: port, connections (count), received (all lines, in
    order), errors (script mismatches and handler exceptions).
    """

    def __init__(self, handler=None, script=None, tls=None, cert=None,
                 close_after_script=False):
        """Prepare the server; start() begins listening."""
        if (handler is None) == (script is None):
            raise ValueError('give exactly one of handler and script')
        if tls and cert is None:
            raise ValueError('tls needs cert=(certfile, keyfile)')
        self.handler = handler or self._run_script
        self.script = script
        self.tls = tls
        self.close_after_script = close_after_script
        self.ssl_context = None
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self.ssl_context = ctx
        self.lock = threading.Lock()
        self.connections = 0
        self.received = []
        self.errors = []
        self.conns = []
        self._sock = None
        self._thread = None
        self.port = None

    def start(self):
        """Listen on a free loopback port and accept in a thread."""
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(('127.0.0.1', 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop,
                                        daemon=True, name='fakeserver')
        self._thread.start()
        return self

    def stop(self):
        """Stop accepting and close every connection."""
        if self._sock is None:
            return
        sock, self._sock = self._sock, None
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        with self.lock:
            conns = list(self.conns)
        for conn in conns:
            conn.close()
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        """Accept connections until stop(); one thread per connection."""
        while self._sock is not None:
            try:
                sock, addr = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock, addr),
                             daemon=True).start()

    def _serve(self, sock, addr):
        """Run the handler for one connection, recording failures."""
        with self.lock:
            self.connections += 1
        conn = None
        try:
            if self.tls == 'implicit':
                sock.settimeout(10)
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            conn = FakeConn(self, sock, addr)
            with self.lock:
                self.conns.append(conn)
            self.handler(conn)
        except Exception as e:        # keep serving other connections
            with self.lock:
                self.errors.append(repr(e))
        finally:
            # Returning from the handler ends the connection.
            try:
                sock.close()
                if conn is not None and not conn.closed:
                    conn.close()
            except OSError:
                pass

    def _run_script(self, conn):
        """Handler that plays self.script."""
        for pattern, reply in self.script:
            match = None
            if pattern is not None:
                line = conn.recv_line(timeout=30)
                if not line:
                    return
                if isinstance(pattern, str):
                    pattern = pattern.encode()
                match = re.search(pattern, line)
                if match is None:
                    with self.lock:
                        self.errors.append('expected %r, got %r' %
                                           (pattern, line))
                    conn.close()
                    return
            if callable(reply):
                reply = reply(conn, match)
            if reply:
                if match is not None and 'tag' in match.re.groupindex:
                    reply = reply.replace(b'{tag}', match.group('tag'))
                conn.send(reply)
        if self.close_after_script:
            conn.close()
            return
        while conn.recv_line(timeout=None):
            pass
