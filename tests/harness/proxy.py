"""A userspace TCP proxy for latency emulation and fault injection.

The kernel on the test machines has no netem, so tests put this proxy
between mailfs and the server.  It runs an asyncio loop in a background
thread and forwards bytes unchanged (TLS passes through untouched).

Latency: every chunk read in either direction is written out rtt/2 after it
arrived.  Reading never waits for writing, so N pipelined commands cost one
round trip, not N; order is kept per direction.  Opening the upstream
connection also waits rtt/2, so a server greeting reaches the client one
RTT after it connected (a real network needs about two: the TCP handshake
is not emulated).

Faults: cut_when() closes a connection when a byte pattern passes,
stall()/unstall() pause forwarding with sockets left open, drop_all()
closes every current connection, refuse() makes new connections fail.
"""

import asyncio
import socket
import struct
import threading

__all__ = ['Proxy', 'CutRule']

_EOF = object()


def _norm_direction(direction):
    """Map the accepted spellings of a direction to 'up' or 'down'."""
    d = direction.lower()
    if d in ('up', 'c2s', 'client', 'to_server', 'upstream'):
        return 'up'
    if d in ('down', 's2c', 'server', 'to_client', 'downstream'):
        return 'down'
    raise ValueError('direction must be up (client->server) or down')


class CutRule:
    """A pending cut_when() rule.

    `fired` is a threading.Event set when it triggered; `count` says how
    often.  wait(timeout) waits for the first time.
    """

    def __init__(self, direction, pattern, after, once, reset):
        """See Proxy.cut_when."""
        self.direction = direction
        self.pattern = pattern
        self.after = after
        self.once = once
        self.reset = reset
        self.count = 0
        self.fired = threading.Event()

    def wait(self, timeout=None):
        """Block until the rule has fired; return True if it did."""
        return self.fired.wait(timeout)

    def __repr__(self):
        return '<CutRule %s %r after=%s count=%d>' % (
            self.direction, self.pattern, self.after, self.count)


class _Cut:
    """Queue marker: close the link here (after forwarding `chunk`)."""

    def __init__(self, rule, chunk):
        self.rule = rule
        self.chunk = chunk


class _Link:
    """One proxied connection: the two stream writers and their tasks."""

    def __init__(self, client_writer):
        self.client = client_writer
        self.server = None
        self.tasks = []
        self.closed = False
        self.eof = set()
        self.pumps = {}
        # Set by the server-side reader whenever the server sends (or
        # closes); used by cut_when(after=True) going up.
        self.answered = asyncio.Event()

    @staticmethod
    def _shut(writer, reset):
        """Close one side; with reset, send RST instead of FIN."""
        if writer is None:
            return
        sock = writer.get_extra_info('socket')
        if reset and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack('ii', 1, 0))
            except OSError:
                pass
            writer.transport.abort()
        else:
            writer.close()

    def close(self, reset=False):
        """Close both sides and cancel the pump tasks."""
        if self.closed:
            return
        self.closed = True
        self._shut(self.client, reset)
        self._shut(self.server, reset)
        current = asyncio.current_task()
        for t in self.tasks:
            if t is not current:
                t.cancel()


class Proxy:
    """TCP proxy on 127.0.0.1:`port` forwarding to upstream_host:port.

    Counters (read any time): connections (accepted so far), bytes_up
    (client -> server, forwarded), bytes_down (server -> client), active
    (open connections).
    """

    def __init__(self, upstream_port, upstream_host='127.0.0.1', rtt_ms=0,
                 listen_host='127.0.0.1', port=0, rate_bps=None):
        """Prepare the proxy; start() opens the listening socket.
        rate_bps: a bandwidth cap in bits per second, each direction one
        link that every connection shares (a slow line), or None."""
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self.port = port
        self.rtt = rtt_ms / 1000.0
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._rules = []
        self._rules_lock = threading.Lock()
        self._links = set()
        self._loop = None
        self._thread = None
        self._server = None
        self._flowing = {}
        self._reset_new = False
        self.rate = rate_bps / 8.0 if rate_bps else None  # bytes/s
        self._free_at = {'up': 0.0, 'down': 0.0}

    # ------------------------------------------------------------ control

    def start(self):
        """Start the loop thread and listen; returns self."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure = []

        def run():
            """Thread body: own event loop, listen, serve until stop()."""
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._flowing = {'up': asyncio.Event(),
                                 'down': asyncio.Event()}
                for ev in self._flowing.values():
                    ev.set()
                self._loop.run_until_complete(self._listen())
            except Exception as e:         # report to start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name='proxy-%d' %
                                        self.upstream_port, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self):
        """Close everything and stop the thread."""
        if self._thread is None:
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _call(self, fn, *args):
        """Run fn(*args) in the loop thread and return its result."""
        async def wrapper():
            """Await fn's result if it is a coroutine."""
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        fut = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return fut.result(10)

    def set_rtt(self, ms):
        """Change the emulated round-trip time for chunks read from now."""
        self.rtt = ms / 1000.0

    def set_upstream(self, port, host=None):
        """Send new connections to another server (open ones stay)."""
        self.upstream_port = port
        if host is not None:
            self.upstream_host = host

    @property
    def active(self):
        """Number of currently open proxied connections."""
        return len(self._links)

    def cut_when(self, direction, pattern, after=False, once=True,
                 reset=False):
        """Close a connection when `pattern` (bytes) passes.

        direction: 'up' (client -> server; also 'c2s') or 'down'
          (server -> client; also 's2c').
        after=False: the chunk holding the pattern is not forwarded; both
          sides are closed once everything before it was delivered.
        after=True: that chunk is forwarded first.  Going up, the client
          side closes at once (the client never sees a reply) and the
          server side stays open until the server answers something (at
          most 2 s), so the server really executes the command.
        once: remove the rule after it fired (default); else keep it.
        reset: close with TCP RST instead of FIN.
        Returns a CutRule; rule.wait(timeout) blocks until it fired.
        """
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rule = CutRule(_norm_direction(direction), pattern, after, once,
                       reset)
        with self._rules_lock:
            self._rules.append(rule)
        return rule

    def clear_rules(self):
        """Forget all cut_when() rules that have not fired."""
        with self._rules_lock:
            self._rules.clear()

    def stall(self, direction='both'):
        """Stop forwarding ('up', 'down' or 'both'); sockets stay open and
        data is still read and queued."""
        for d in self._dirs(direction):
            self._call(self._flowing[d].clear)

    def unstall(self, direction='both'):
        """Resume forwarding; queued data whose delay passed goes at once."""
        for d in self._dirs(direction):
            self._call(self._flowing[d].set)

    @staticmethod
    def _dirs(direction):
        """Directions meant by 'both', 'up' or 'down'."""
        if direction == 'both':
            return ('up', 'down')
        return (_norm_direction(direction),)

    def drop_all(self, reset=False):
        """Close every current connection (FIN, or RST with reset=True).
        Returns how many were closed."""
        def drop():
            """Close all links (runs in the loop thread)."""
            links = list(self._links)
            for link in links:
                link.close(reset)
            return len(links)
        return self._call(drop)

    def reset_new(self, flag=True):
        """While set, every new connection is accepted and reset at once
        (RST before any byte), as a network that has gone away answers
        through a NAT or firewall; existing ones are left alone."""
        self._reset_new = flag

    def cut_network(self):
        """The network goes away: every connection is reset and new ones
        are reset as they come.  restore_network() undoes it."""
        self.reset_new(True)
        self.drop_all(reset=True)

    def restore_network(self):
        self.reset_new(False)

    def refuse(self, flag=True):
        """While refused, the listening socket is closed: connecting gets
        ECONNREFUSED.  refuse(False) listens again on the same port."""
        if flag:
            self._call(self._close_server)
        else:
            self._call(self._listen)

    # ------------------------------------------------------------ loop side

    async def _listen(self):
        """(Re)open the listening socket on self.port (0 = pick one)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, self.listen_host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self):
        """Close the listener and every link; wait for all their tasks."""
        await self._close_server()
        for link in list(self._links):
            link.close()
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _close_server(self):
        """Stop accepting (existing connections are left alone)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @staticmethod
    def _nodelay(writer):
        """Disable Nagle: delays must come from the emulation only."""
        sock = writer.get_extra_info('socket')
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    async def _handle(self, creader, cwriter):
        """Serve one client connection."""
        self.connections += 1
        link = _Link(cwriter)
        if self._reset_new:
            link.close(reset=True)
            return
        self._links.add(link)
        link.tasks.append(asyncio.current_task())
        self._nodelay(cwriter)
        try:
            if self.rtt > 0:
                await asyncio.sleep(self.rtt / 2)
            try:
                sreader, swriter = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port)
            except OSError:
                link.close()
                return
            if link.closed:
                swriter.close()
                return
            link.server = swriter
            self._nodelay(swriter)
            up, down = asyncio.Queue(), asyncio.Queue()
            link.pumps = {
                'up_r': self._reader(link, creader, up, 'up'),
                'up_w': self._writer(link, up, swriter, 'up'),
                'down_r': self._reader(link, sreader, down, 'down'),
                'down_w': self._writer(link, down, cwriter, 'down')}
            for name, coro in link.pumps.items():
                link.pumps[name] = asyncio.ensure_future(coro)
            link.tasks.extend(link.pumps.values())
            await asyncio.gather(*link.pumps.values(),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            link.close()
            self._links.discard(link)

    def _match(self, direction, window):
        """Return the first rule whose pattern occurs in `window`."""
        with self._rules_lock:
            for rule in self._rules:
                if rule.direction == direction and rule.pattern in window:
                    if rule.once:
                        self._rules.remove(rule)
                    return rule
        return None

    async def _reader(self, link, reader, queue, direction):
        """Read chunks as fast as they come; stamp each with its due time."""
        loop = asyncio.get_running_loop()
        tail = b''
        try:
            while True:
                data = await reader.read(65536)
                if direction == 'down':
                    link.answered.set()
                if not data:
                    break
                due = loop.time() + self.rtt / 2
                rule = self._match(direction, tail + data) \
                    if self._rules else None
                if rule is not None:
                    await queue.put((due, _Cut(rule, data)))
                    return
                keep = max((len(r.pattern) for r in self._rules), default=1)
                tail = (tail + data)[-max(keep - 1, 0):] if keep > 1 else b''
                await queue.put((due, data))
        except (ConnectionError, OSError):
            pass
        await queue.put((None, _EOF))

    async def _writer(self, link, queue, writer, direction):
        """Deliver queued chunks in order, each at its due time."""
        loop = asyncio.get_running_loop()
        while True:
            due, item = await queue.get()
            if due is not None:
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            await self._flowing[direction].wait()
            if item is _EOF:
                link.eof.add(direction)
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                if len(link.eof) == 2:
                    link.close()
                return
            if isinstance(item, _Cut):
                await self._do_cut(link, item, writer, direction)
                return
            if self.rate:
                # The line is busy with earlier chunks (of any
                # connection) until _free_at; this one takes its own
                # length's time after that.
                now = loop.time()
                start = max(now, self._free_at[direction])
                self._free_at[direction] = start + len(item) / self.rate
                if self._free_at[direction] > now:
                    await asyncio.sleep(self._free_at[direction] - now)
            try:
                writer.write(item)
                await writer.drain()
            except (ConnectionError, OSError, RuntimeError):
                link.close()
                return
            if direction == 'up':
                self.bytes_up += len(item)
            else:
                self.bytes_down += len(item)

    async def _do_cut(self, link, cut, writer, direction):
        """Carry out a cut_when() rule on `link`."""
        rule = cut.rule
        if rule.after:
            link.answered.clear()
            try:
                writer.write(cut.chunk)
                await writer.drain()
                if direction == 'up':
                    self.bytes_up += len(cut.chunk)
                else:
                    self.bytes_down += len(cut.chunk)
            except (ConnectionError, OSError, RuntimeError):
                pass
        rule.count += 1
        rule.fired.set()
        if rule.after and direction == 'up':
            # The client must not see the reply, but the server should get
            # to run the command: close the client now and the server side
            # once it has answered (or after 2 s).
            link._shut(link.client, rule.reset)
            link.client = None
            link.pumps['down_w'].cancel()
            try:
                await asyncio.wait_for(link.answered.wait(), 2)
            except asyncio.TimeoutError:
                pass
        link.close(rule.reset)
