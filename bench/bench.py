#!/usr/bin/env python3
"""mailfs benchmark: listing, partial read, grep and cached grep, and a
POP3 download, against a private Dovecot, at several emulated round-trip
times.

Run with `make bench`, or
    MAILFS=build/mailfs python3 bench/bench.py [--rtt 0,40] [--runs 3]
    [--quick] [--no-mbsync] [--no-pop3] [--pop3-messages N]
    [-o MOUNT_OPTION ...]

One Dovecot (rawlog on) gets three folders:
  Small  10,000 small text messages (--quick: 1,000)
  Grep   2,000 text messages of varied size, ~6.8 KB on average, every
         fifth mentioning "invoice" (--quick: 200)
  Big    one 20 MB message
For each RTT, mailfs is mounted through a latency-emulating proxy, and
every measurement uses a fresh mount (cold cache).  IMAP commands and
bytes are counted from Dovecot's rawlog, FUSE requests from the mount's
status (fuse_requests in user.mail.status).  Baselines for the first
grep, through the same proxy: a minimal pipelined client
(bench/rawimap.py), timed once as a whole session (connect, TLS, login,
EXAMINE + UID FETCH 1:* BODY.PEEK[] pipelined, grep) and once logged in
first (only EXAMINE, the FETCH and the grep timed, as a mount has logged
in before its grep), and, when installed, mbsync followed by grep on the
local Maildir.

Cached mail: a local copy of Grep (a Maildir of the messages as Dovecot
gives them, written once, not measured) is the baseline of grep -rl
  - again on the same mount (page cache warm), against grep of the copy
    in memory;
  - right after a remount over the disk cache (the mount's page cache
    cold, the disk cache's files in memory), against the same;
  - on a third mount after dropping the disk cache's files from the page
    cache (all from the disk), against grep of the copy after dropping
    its page cache (posix_fadvise DONTNEED, checked with fincore).
Between mailfs and the copy sits the FUSE floor, bench/fusefloor.c (built
by `make bench`; $FUSEFLOOR names another binary): the fastest read-only
FUSE file system, on libfuse's low-level API, mounted over the copy in
the same three states, served by 16 threads as mailfs is and by one,
with its FUSE requests; and the floor of a writable mount, which must
hear of every close to report a failed store: OPEN and RELEASE answered
(fusefloor -O, as mailfs's writable mount), or FLUSH answered with no
OPEN (-F, the kernel's one close signal for no-open writes).

notmuch (when installed): `notmuch new` over the Grep folder of a fresh
mount in the Maildir layout (-o layout=maildir), against `notmuch new`
over mbsync's local Maildir of the same folder (after its sync).  With
the disk cache (unless --no-diskcache): `notmuch new` and `mu index`
(when installed) over a second mount in the Maildir layout, after a
first one read every message, against the same over the local copy
(in memory, as the disk cache's files are).  Each database lives outside the mount and
must hold every message and find the ones that mention "invoice".

Search (unless --no-search): a fourth folder, Search, gets
--search-messages small text messages (default 100,000; --quick: 2,000),
every fifth mentioning "invoice".  Each run lists
Search/.search/BODY invoice on a fresh mount (the server searches; the
folder's listing is made for the names) and, on another fresh mount,
runs grep -rl invoice over Search; both hit sets must equal the corpus's.
A grep that takes longer than --search-timeout seconds (default 900) is
cut off and reported with the bytes the proxy passed until then.
--search-only skips every other measurement (and the other folders).

POP3 (unless --no-pop3): a second user's INBOX gets 1,000 text messages
of the Grep folder's size mix (--quick: 100).  For each RTT, through a
second proxy in front of Dovecot's POP3S port, each run mounts
pop3s://bob with -o keep on a fresh local store and times until every
message is in STORE/cur, then cats every file through the mount and
compares it with what poplib got for its UIDL; a second mount on the same
store must list everything without a single RETR.  Baseline: poplib
(bench/popdl.py) downloading the same maildrop, one RETR after another.
POP3 commands and bytes are counted from Dovecot's rawlog as well.

Every result is checked (listing names, bytes read, grep hit sets of the
mount and of each baseline against the corpus, hence against each other);
a mismatch fails the run.  Tables
go to stdout (Markdown), progress to stderr, everything as JSON to
build/bench-results.json.
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import poplib
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.harness import corpus  # noqa: E402
from tests.harness.mailserver import MailServer  # noqa: E402
from tests.harness.proxy import Proxy  # noqa: E402
from tests.integration import mount as mountmod  # noqa: E402
from tests.integration.mount import Mount, is_mounted  # noqa: E402

import floor  # noqa: E402  (bench/ is sys.path[0])
import popdl  # noqa: E402
import rawimap  # noqa: E402

USER = 'alice'
POP3_USER = 'bob'        # a maildrop of its own: alice's figures stay as
                         # they are
WORD = 'invoice'
SMALL, GREP, BIG = 'Small', 'Grep', 'Big'
SEARCH = 'Search'
SEARCH_QUERY = 'BODY ' + WORD
RESULTS = os.path.join(ROOT, 'build', 'bench-results.json')
# Run environment of every tool: byte-wise, no locale surprises.
TOOL_ENV = dict(os.environ, LC_ALL='C')


class BenchError(RuntimeError):
    """mailfs (or a baseline) gave a wrong answer, or a tool failed."""


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr,
          flush=True)


def run_tool(argv, timeout=600):
    """Runs a command; returns (seconds, CompletedProcess).  A command
    that hangs (a stuck mount) fails the bench instead of blocking it."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, env=TOOL_ENV,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError('%s did not finish within %d s' % (
            ' '.join(argv), timeout)) from None
    return time.monotonic() - t0, p


def check(cond, msg):
    if not cond:
        raise BenchError(msg)


# ----------------------------------------------------------- corpus


def grep_sizes(n, seed='mailfs-bench'):
    """Deterministic message sizes for the grep folder: uniform in
    600..13,000 bytes (mean 6,800)."""
    rnd = random.Random(seed)
    return [rnd.randint(600, 13000) for _ in range(n)]


def populate(server, n_small, n_grep):
    """Fills the three folders; returns what the checks need."""
    t0 = time.monotonic()
    small = [corpus.text_message(100000 + k) for k in range(n_small)]
    small_uids = server.append_many(USER, SMALL, small)
    check(len(small_uids) == n_small, 'APPEND of %s lost messages' % SMALL)
    del small
    log('%s: %d messages appended (%.1f s)' %
        (SMALL, n_small, time.monotonic() - t0))

    t0 = time.monotonic()
    sizes = grep_sizes(n_grep)
    raws = [corpus.text_message(k, size=s) for k, s in enumerate(sizes)]
    grep_uids = server.append_many(USER, GREP, raws)
    check(len(grep_uids) == n_grep, 'APPEND of %s lost messages' % GREP)
    index_of = dict(zip(grep_uids, range(n_grep)))
    expected = {k for k in range(n_grep) if corpus.has_invoice(k)}
    # The generator promises it; make sure, since every check relies on it.
    actual = {k for k, raw in enumerate(raws) if WORD.encode() in raw}
    check(actual == expected, 'corpus: "%s" is not where has_invoice says'
          % WORD)
    grep_bytes = sum(len(r) for r in raws)
    del raws
    log('%s: %d messages, %.1f MB appended (%.1f s)' %
        (GREP, n_grep, grep_bytes / 1e6, time.monotonic() - t0))

    t0 = time.monotonic()
    big = corpus.big_message(corpus.BIG_SIZE)
    big_uid = server.append(USER, BIG, big)
    log('%s: one %.1f MB message appended (%.1f s)' %
        (BIG, len(big) / 1e6, time.monotonic() - t0))
    return {
        'small_names': set(server.message_names(USER, SMALL).values()),
        'grep_index': index_of,           # uid -> message number
        'grep_uid_of': {n: u for u, n in
                        server.message_names(USER, GREP).items()},
        'grep_hits': expected,            # message numbers with WORD
        'grep_bytes': grep_bytes,
        'big_uid': big_uid,
        'big_name': server.message_names(USER, BIG)[big_uid],
        'big_size': len(big),
        'big_head': big[:4096],
        'big_sha256': hashlib.sha256(big).hexdigest(),
    }


def populate_search(server, n):
    """Fills the Search folder with n small text messages (about 1.7 KB
    each); returns the checks' data: file name -> message number, and
    the numbers that mention WORD."""
    t0 = time.monotonic()
    uids = []
    for start in range(0, n, 5000):
        chunk = [corpus.text_message(200000 + k)
                 for k in range(start, min(n, start + 5000))]
        uids += server.append_many(USER, SEARCH, chunk)
    check(len(uids) == n, 'APPEND of %s lost messages' % SEARCH)
    number = dict(zip(uids, range(n)))
    names = server.message_names(USER, SEARCH)
    log('%s: %d messages appended (%.1f s)' %
        (SEARCH, n, time.monotonic() - t0))
    return {
        'number_of': {name: number[uid] for uid, name in names.items()},
        'hits': {k for k in range(n) if corpus.has_invoice(200000 + k)},
        'n': n,
    }


def populate_pop3(server, n):
    """Fills POP3_USER's INBOX with n text messages of the Grep folder's
    size mix, then takes the reference for every check: what poplib gets
    for each UIDL, straight from Dovecot (not measured; this first POP3
    session also makes Dovecot index the maildrop, so that no measured
    client pays for it)."""
    t0 = time.monotonic()
    sizes = grep_sizes(n, seed='mailfs-bench-pop3')
    raws = [corpus.text_message(500000 + k, size=s)
            for k, s in enumerate(sizes)]
    uids = server.append_many(POP3_USER, 'INBOX', raws)
    check(len(uids) == n, 'APPEND to %s\'s INBOX lost messages' % POP3_USER)
    mail = {}
    p = server.pop3(POP3_USER)
    try:
        for line in p.uidl()[1]:
            num, uidl = line.decode('ascii').split()
            lines = p.retr(int(num))[1]
            mail[uidl] = b''.join(ln + b'\r\n' for ln in lines)
    finally:
        p.quit()
    check(len(mail) == n, 'POP3: UIDL lists %d messages, %d appended' % (
        len(mail), n))
    digests = sorted(hashlib.sha256(r).digest() for r in raws)
    check(sorted(hashlib.sha256(m).digest() for m in mail.values()) ==
          digests, 'POP3: what RETR gives is not what was appended')
    total = sum(len(r) for r in raws)
    log('POP3 maildrop of %s: %d messages, %.1f MB (%.1f s)' % (
        POP3_USER, n, total / 1e6, time.monotonic() - t0))
    return {'messages': n, 'bytes': total, 'mail': mail}


_MSGID = re.compile(rb'^Message-ID: <(\d+)\.[0-9a-f]+@mailfs\.test>',
                    re.MULTILINE | re.IGNORECASE)


def message_number(raw):
    """The corpus number of a message, from its Message-ID."""
    m = _MSGID.search(raw[:4096])
    if m is None:
        raise BenchError('no corpus Message-ID in a message')
    return int(m.group(1))


def drop_page_cache(root):
    """Drops the page cache of every file below root: what
    `echo 1 > /proc/sys/vm/drop_caches` does, for these files only
    (posix_fadvise DONTNEED; the rest of the machine keeps its cache).
    When fincore is installed, checks that no page stayed."""
    paths = []
    for top, _, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # dirty pages would stay
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            paths.append(path)
    if not shutil.which('fincore'):
        return
    for start in range(0, len(paths), 1000):
        p = subprocess.run(['fincore', '--bytes', '--noheadings', '--raw',
                            '--output', 'RES', '--'] +
                           paths[start:start + 1000],
                           capture_output=True, text=True, env=TOOL_ENV)
        cached = sum(int(x) for x in p.stdout.split() if x.isdigit())
        check(p.returncode == 0 and cached == 0,
              'page cache of %s not dropped: %d bytes stay (%s)' % (
                  root, cached, p.stderr.strip()[:200]))


# ----------------------------------------------------------- FUSE requests


def mailfs_requests(point):
    """The FUSE requests the mailfs mounted at point has served, by kind
    (the fuse_requests line of its status; the GETXATTR that reads it
    included)."""
    text = os.getxattr(point, 'user.mail.status').decode()
    for line in text.splitlines():
        if line.startswith('fuse_requests='):
            return floor.parse_requests(line.split('=', 1)[1])
    raise BenchError('no fuse_requests line in the status of ' + point)


class RequestCount:
    """The FUSE requests a command costs a mount, by kind: read(point)
    (mailfs_requests or floor.requests) before it and after it, less the
    GETXATTRs the reading itself costs (found by reading twice first)."""

    def __init__(self, read, point):
        self.read = read
        self.point = point
        first = read(point)
        self.base = read(point)
        self.own = self.base.get('GETXATTR', 0) - first.get('GETXATTR', 0)

    def delta(self):
        after = self.read(self.point)
        out = {k: v - self.base.get(k, 0) for k, v in after.items()}
        out['GETXATTR'] = out.get('GETXATTR', 0) - self.own
        return {k: v for k, v in out.items() if v}


def per_file(requests, n):
    """{kind: requests per file} and their sum, for n files."""
    kinds = {k: v / n for k, v in requests.items()}
    return kinds, sum(kinds.values())


# ----------------------------------------------------------- rawlog


class Traffic:
    """What Dovecot recorded for `user` over `protocol` since `clear()`:
    read it once all connections of the measured client are closed."""

    def __init__(self, server, proxy, user=USER, protocol='imap'):
        self.server = server
        self.proxy = proxy
        self.user = user
        self.protocol = protocol
        self.bytes_down = 0

    def clear(self):
        self.server.clear_rawlog(self.user)
        self.bytes_down = self.proxy.bytes_down

    def wire_bytes_down(self):
        """Bytes the proxy passed from server to client since clear():
        TLS records, greeting and login included (settle() first)."""
        return self.proxy.bytes_down - self.bytes_down

    def settle(self, timeout=15):
        """Waits until the proxy has no open connection left and Dovecot
        has had a moment to write the end of its rawlogs."""
        deadline = time.monotonic() + timeout
        while self.proxy.active and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)

    def collect(self):
        """[(session)] since clear(); then drops their files, so later
        reads of the rawlog stay fast (the sessions are closed)."""
        self.settle()
        sessions = self.server.rawlog_sessions(self.user, self.protocol)
        for s in sessions:
            for path in (s.path, s.path[:-3] + '.out'):
                with contextlib.suppress(OSError):
                    os.unlink(path)
        return sessions


def verb(command):
    """'UID FETCH 1:* (...)' -> 'UID FETCH'; 'EXAMINE "x"' -> 'EXAMINE'."""
    words = command.split()
    if not words:
        return ''
    if words[0].upper() == 'UID' and len(words) > 1:
        return 'UID ' + words[1].upper()
    return words[0].upper()


def is_fetch(command):
    return verb(command) in ('FETCH', 'UID FETCH')


def is_body_fetch(command):
    """A FETCH of message bodies (not a listing's Message-ID field)."""
    return (is_fetch(command) and 'BODY' in command.upper() and
            'HEADER.FIELDS' not in command.upper())


def commands_between(sessions, t0, t1):
    """Client commands Dovecot received in [t0, t1] (epoch seconds)."""
    return [c for s in sessions for t, c in s.timed_commands
            if t is not None and t0 - 0.002 <= t <= t1 + 0.002]


def timeline(sessions, t0, only=is_fetch):
    """[(seconds since t0, session number, command)] of the commands
    `only` accepts, in time order: shows which round trips were serial."""
    out = [(round(t - t0, 4), n, c[:100])
           for n, s in enumerate(sessions) for t, c in s.timed_commands
           if t is not None and only(c)]
    return sorted(out)


def all_commands(sessions):
    return [c for s in sessions for c in s.commands]


def verb_counts(commands):
    out = {}
    for c in commands:
        v = verb(c)
        out[v] = out.get(v, 0) + 1
    return out


def pop3_verb_counts(commands):
    """{'RETR': 1000, 'UIDL': 1, ...} of POP3 command lines."""
    out = {}
    for c in commands:
        words = c.split()
        v = words[0].upper() if words else ''
        out[v] = out.get(v, 0) + 1
    return out


def pop3_session_end(sessions):
    """Epoch time of the QUIT of the first session that listed the
    maildrop (UIDL) and ended with QUIT, else None.  mailfs logs in once
    before mounting (to report a wrong password at once); its worker
    session is the one that lists."""
    for s in sessions:
        verbs = [c.split()[0].upper() if c.split() else ''
                 for c in s.commands]
        if 'UIDL' in verbs and verbs[-1] == 'QUIT':
            return s.timed_commands[-1][0]
    return None


# ----------------------------------------------------------- mailfs


class Bench:
    def __init__(self, args):
        self.args = args
        self.server = None
        self.proxy = None
        self.pop3_proxy = None
        self.mounts = []       # live Mount objects, unmounted on exit
        self.corp = None
        self.pop3 = None       # populate_pop3()
        self.search = None     # populate_search()
        self.local = None      # make_local_copy()
        self.tmp = tempfile.mkdtemp(prefix='mailfs-bench-')

    # -- lifecycle

    def cleanup(self):
        for m in list(self.mounts):
            with contextlib.suppress(Exception):
                m.umount()
        self.mounts.clear()
        for attr in ('proxy', 'pop3_proxy'):
            if getattr(self, attr) is not None:
                with contextlib.suppress(Exception):
                    getattr(self, attr).stop()
                setattr(self, attr, None)
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop()
            with contextlib.suppress(Exception):
                self.server.cleanup()
            self.server = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mounted(self, result):
        """A fresh mount through the proxy; puts its start-up time in
        result['mount_s']."""
        url = 'imaps://%s@localhost:%d' % (USER, self.proxy.port)
        return self.mount_of(url, USER, self.args.mount_option, result)

    def pop3_mounted(self, store, result):
        """A POP3 mount of POP3_USER through the POP3 proxy, on the local
        store `store`, with -o keep (the maildrop stays as it is)."""
        url = 'pop3s://%s@localhost:%d' % (POP3_USER, self.pop3_proxy.port)
        return self.mount_of(url, POP3_USER, ['store=' + store, 'keep'] +
                             self.args.mount_option, result)

    @contextlib.contextmanager
    def mount_of(self, url, user, options, result, cache_home=None):
        """Mounts url as user (a context manager); puts the seconds
        mailfs took to log in and mount in result['mount_s']. Each mount
        has its own empty disk cache (Mount gives it an empty
        XDG_CACHE_HOME) unless cache_home names one to keep."""
        m = Mount(url, self.server.users[user], cafile=self.server.cafile,
                  options=options, timeout=60,
                  env={'XDG_CACHE_HOME': cache_home} if cache_home
                  else None)
        self.mounts.append(m)
        try:
            t0 = time.monotonic()
            m.start()
            result['mount_s'] = time.monotonic() - t0
            yield m
        finally:
            m.umount()
            self.mounts.remove(m)
            check(not is_mounted(m.path), 'could not unmount ' + m.path)
            shutil.rmtree(m.tmp, ignore_errors=True)

    # -- measurements

    def measure_ls(self, tr):
        r = {}
        tr.clear()
        with self.mounted(r) as m:
            d = m.p(SMALL)
            w0 = time.time()
            r['seconds'], p = run_tool(['ls', '-l', '--', d])
            w1 = time.time()
        check(p.returncode == 0, 'ls -l failed: %s' % p.stderr.decode())
        lines = p.stdout.decode().splitlines()
        check(lines and lines[0].startswith('total '),
              'ls -l: unexpected output %r' % lines[:2])
        names = {ln.split()[-1] for ln in lines[1:]}
        check(len(lines) - 1 == len(self.corp['small_names']) and
              names == self.corp['small_names'],
              'ls -l %s: %d entries, expected %d (%d missing, %d extra)' % (
                  SMALL, len(lines) - 1, len(self.corp['small_names']),
                  len(self.corp['small_names'] - names),
                  len(names - self.corp['small_names'])))
        sessions = tr.collect()
        cmds = commands_between(sessions, w0, w1)
        r['commands'] = len(cmds)
        r['command_verbs'] = verb_counts(cmds)
        r['mount_commands'] = len(all_commands(sessions))
        r['mount_command_verbs'] = verb_counts(all_commands(sessions))
        r['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        return r

    def cached_mount(self, result, cache_home, options=()):
        """A mount through the proxy over the disk cache in cache_home
        (kept between mounts)."""
        url = 'imaps://%s@localhost:%d' % (USER, self.proxy.port)
        return self.mount_of(url, USER, list(options) +
                             self.args.mount_option, result, cache_home)

    def measure_remount(self, tr):
        """Disk cache: ls -l Small and grep -rl Grep on a first mount
        (cold cache), then on a second mount over the same cache (the
        cache's files still in the page cache), then grep -rl on a third
        after dropping the page cache of the cache's files (everything
        read from the disk, as after a reboot); FUSE requests of each
        grep."""
        home = tempfile.mkdtemp(prefix='cache-', dir=self.tmp)
        first, r = {}, {}
        try:
            with self.cached_mount(first, home) as m:
                run_tool(['ls', '-l', '--', m.p(SMALL)])
                run_tool(['grep', '-rl', WORD, m.p(GREP)])
            tr.clear()
            with self.cached_mount(r, home) as m:
                w0 = time.time()
                r['ls_seconds'], p = run_tool(['ls', '-l', '--',
                                               m.p(SMALL)])
                w1 = time.time()
                check(p.returncode == 0 and
                      len(p.stdout.decode().splitlines()) - 1 ==
                      len(self.corp['small_names']),
                      'ls -l on the cached mount: wrong listing')
                rc = RequestCount(mailfs_requests, m.path)
                g0 = time.time()
                r['grep_seconds'], p = run_tool(['grep', '-rl', WORD,
                                                 m.p(GREP)])
                g1 = time.time()
                r['grep_requests'] = rc.delta()
                check(self.mount_hits(p.stdout, m.p(GREP)) ==
                      self.corp['grep_hits'],
                      'grep -rl on the cached mount: wrong hits')
            sessions = tr.collect()
            r['ls_commands'] = len(commands_between(sessions, w0, w1))
            r['ls_command_verbs'] = verb_counts(
                commands_between(sessions, w0, w1))
            r['grep_fetch_commands'] = sum(
                map(is_fetch, commands_between(sessions, g0, g1)))
            (r['grep_requests_per_file'],
             r['grep_requests_per_file_all']) = per_file(
                r['grep_requests'], len(self.corp['grep_index']))

            cold = r['dropped'] = {}
            drop_page_cache(home)
            tr.clear()
            with self.cached_mount({}, home) as m:
                rc = RequestCount(mailfs_requests, m.path)
                cold['grep_seconds'], p = run_tool(['grep', '-rl', WORD,
                                                    m.p(GREP)])
                cold['grep_requests'] = rc.delta()
                check(p.returncode == 0 and
                      self.mount_hits(p.stdout, m.p(GREP)) ==
                      self.corp['grep_hits'],
                      'grep -rl on the cached mount, page cache dropped: '
                      'wrong hits')
            cold['fetch_commands'] = sum(map(is_fetch, all_commands(
                tr.collect())))
            (cold['grep_requests_per_file'],
             cold['grep_requests_per_file_all']) = per_file(
                cold['grep_requests'], len(self.corp['grep_index']))

            # A read-only mount (-o ro: no OPEN, FLUSH or RELEASE): the
            # grep right after mounting (the disk cache's files in
            # memory again after the first grep above read them), then
            # again on the same mount.
            ro = r['ro'] = {}
            with self.cached_mount({}, home, ['ro']) as m:
                for key in ('fresh', 'again'):
                    rc = RequestCount(mailfs_requests, m.path)
                    ro[key + '_seconds'], p = run_tool(
                        ['grep', '-rl', WORD, m.p(GREP)])
                    ro[key + '_requests'] = rc.delta()
                    check(p.returncode == 0 and
                          self.mount_hits(p.stdout, m.p(GREP)) ==
                          self.corp['grep_hits'],
                          'grep -rl on a read-only mount: wrong hits')
                    (ro[key + '_requests_per_file'],
                     ro[key + '_requests_per_file_all']) = per_file(
                        ro[key + '_requests'], len(self.corp['grep_index']))
            return r
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def measure_prefetch(self, tr):
        """-o prefetch=Grep on an empty cache: seconds from the mount's
        start until the status says done."""
        home = tempfile.mkdtemp(prefix='cache-', dir=self.tmp)
        r = {}
        try:
            tr.clear()
            t0 = time.monotonic()
            with self.cached_mount(r, home, ['prefetch=' + GREP]) as m:
                while True:
                    out = subprocess.run(
                        ['getfattr', '--only-values', '-n',
                         'user.mail.status', m.path],
                        capture_output=True, text=True).stdout
                    st = dict(l.split('=', 1) for l in out.splitlines()
                              if '=' in l)
                    if st.get('prefetch') == 'done':
                        break
                    check(time.monotonic() - t0 < 600,
                          'prefetch did not finish: %r' % st)
                    time.sleep(0.05)
                r['seconds'] = time.monotonic() - t0
                done, total = st['prefetch_messages'].split('/')
                check(done == total and int(total) ==
                      len(self.corp['grep_index']),
                      'prefetch: %s messages' % st['prefetch_messages'])
            sessions = tr.collect()
            r['fetch_commands'] = sum(map(is_fetch,
                                          all_commands(sessions)))
            r['sessions'] = len(sessions)
            return r
        finally:
            shutil.rmtree(home, ignore_errors=True)

    def big_path(self, m):
        return m.p(BIG, self.corp['big_name'])

    def measure_head(self, tr):
        r = {}
        tr.clear()
        with self.mounted(r) as m:
            w0 = time.time()
            r['seconds'], p = run_tool(['head', '-c', '4096', '--',
                                        self.big_path(m)])
            w1 = time.time()
        check(p.returncode == 0, 'head failed: %s' % p.stderr.decode())
        check(p.stdout == self.corp['big_head'],
              'head -c 4096: %d bytes, not the message\'s first 4096' %
              len(p.stdout))
        sessions = tr.collect()
        r['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        cmds = commands_between(sessions, w0, w1)
        r['commands'] = len(cmds)
        r['fetch_commands'] = sum(map(is_fetch, cmds))
        r['mount_fetch_commands'] = sum(map(is_fetch,
                                            all_commands(sessions)))
        r['fetches'] = [c for c in all_commands(sessions) if is_fetch(c)]
        return r

    def mount_hits(self, stdout, folder_dir):
        """Message numbers of the files grep -rl printed."""
        hits = set()
        for line in stdout.decode().splitlines():
            check(line.startswith(folder_dir + '/') and
                  line.endswith('.eml'), 'grep printed %r' % line)
            uid = self.corp['grep_uid_of'].get(os.path.basename(line))
            check(uid in self.corp['grep_index'],
                  'grep found unknown message %s' % line)
            hits.add(self.corp['grep_index'][uid])
        return hits

    def measure_grep(self, tr):
        """grep -rl on a fresh mount, then again on the same mount (page
        cache warm); the FUSE requests of each."""
        first, second = {}, {}
        tr.clear()
        with self.mounted(first) as m:
            d = m.p(GREP)
            argv = ['grep', '-rl', WORD, d]
            rc = RequestCount(mailfs_requests, m.path)
            a0 = time.time()
            first['seconds'], p1 = run_tool(argv)
            a1 = time.time()
            first['requests'] = rc.delta()
            rc = RequestCount(mailfs_requests, m.path)
            b0 = time.time()
            second['seconds'], p2 = run_tool(argv)
            b1 = time.time()
            second['requests'] = rc.delta()
            hits1 = self.mount_hits(p1.stdout, d)
            hits2 = self.mount_hits(p2.stdout, d)
        for name, p, hits in (('first', p1, hits1), ('second', p2, hits2)):
            check(p.returncode == 0, 'grep -rl (%s) failed (%d): %s' % (
                name, p.returncode, p.stderr.decode()[:500]))
            check(hits == self.corp['grep_hits'],
                  'grep -rl (%s) on the mount: %d hits, expected %d '
                  '(%d missing, %d extra)' % (
                      name, len(hits), len(self.corp['grep_hits']),
                      len(self.corp['grep_hits'] - hits),
                      len(hits - self.corp['grep_hits'])))
        sessions = tr.collect()
        for r, t0, t1 in ((first, a0, a1), (second, b0, b1)):
            r['requests_per_file'], r['requests_per_file_all'] = per_file(
                r['requests'], len(self.corp['grep_index']))
            cmds = commands_between(sessions, t0, t1)
            r['commands'] = len(cmds)
            r['command_verbs'] = verb_counts(cmds)
            r['fetch_commands'] = sum(map(is_fetch, cmds))
            r['body_fetch_commands'] = sum(
                1 for c in cmds if is_body_fetch(c))
            r['hits'] = len(self.corp['grep_hits'])
        first['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        first['mount_fetch_commands'] = sum(map(is_fetch,
                                                all_commands(sessions)))
        first['sessions'] = len(sessions)
        first['fetch_uid_counts'] = [
            fetched_uids(c) for c in all_commands(sessions)
            if is_body_fetch(c)]
        first['timeline'] = timeline(sessions, a0)
        return first, second

    def measure_cat(self, tr):
        r = {}
        tr.clear()
        with self.mounted(r) as m:
            w0 = time.time()
            r['seconds'], p = run_tool(['cat', '--', self.big_path(m)])
            w1 = time.time()
        check(p.returncode == 0, 'cat failed: %s' % p.stderr.decode())
        check(len(p.stdout) == self.corp['big_size'] and
              hashlib.sha256(p.stdout).hexdigest() ==
              self.corp['big_sha256'],
              'cat: %d bytes that are not the message' % len(p.stdout))
        sessions = tr.collect()
        cmds = commands_between(sessions, w0, w1)
        r['commands'] = len(cmds)
        r['fetch_commands'] = sum(map(is_fetch, cmds))
        r['mount_fetch_commands'] = sum(map(is_fetch,
                                            all_commands(sessions)))
        r['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        r['connections'] = len(sessions)
        r['timeline'] = timeline(sessions, w0)
        return r

    # -- POP3

    def pop3_files(self, m):
        """(names, UIDLs) of the files in the POP3 mount, sorted by name;
        checks that they are the maildrop's messages, each once."""
        ref = self.pop3['mail']
        names = sorted(os.listdir(m.path))
        uidls = [os.getxattr(m.p(x), 'user.mail.uidl').decode()
                 for x in names]
        check(len(set(uidls)) == len(uidls),
              'POP3 mount: %d files but %d distinct UIDLs' % (
                  len(uidls), len(set(uidls))))
        missing = set(ref) - set(uidls)
        extra = set(uidls) - set(ref)
        check(not missing and not extra,
              'POP3 mount lists %d files, the maildrop has %d messages '
              '(%d UIDLs missing, %d unknown)' % (
                  len(names), len(ref), len(missing), len(extra)))
        return names, uidls

    def wait_pop3_quit(self, w0, timeout):
        """Seconds from w0 (epoch) to the QUIT of mailfs' worker session,
        from the rawlog; waits for it up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            end = pop3_session_end(
                self.server.rawlog_sessions(POP3_USER, 'pop3'))
            if end is not None:
                return end - w0
            if time.monotonic() > deadline:
                raise BenchError('POP3 mount: no session with UIDL ended '
                                 'with QUIT within %d s' % timeout)
            time.sleep(0.05)

    def pop3_traffic(self, tr, r):
        """Commands and bytes of the sessions since tr.clear() into r."""
        sessions = tr.collect()
        cmds = all_commands(sessions)
        r['sessions'] = len(sessions)
        r['commands'] = len(cmds)
        r['command_verbs'] = pop3_verb_counts(cmds)
        r['retr_commands'] = r['command_verbs'].get('RETR', 0)
        r['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        r['wire_bytes_down'] = tr.wire_bytes_down()
        return r

    def measure_pop3(self, tr, rtt):
        """The POP3 mount on a fresh store: seconds until every message
        is in STORE/cur, then cat of every file through the mount, checked
        against the reference per UIDL.  Then a second mount on the same
        store, with nothing left to download.  Returns (first, again)."""
        ref = self.pop3['mail']
        n = len(ref)
        first, again = {}, {}
        store = tempfile.mkdtemp(prefix='pop3-store-', dir=self.tmp)
        cur = os.path.join(store, 'cur')
        # Generous: a few round trips and some local work per message.
        limit = 120 + n * (0.25 + 3 * rtt / 1000.0)
        try:
            tr.clear()
            w0 = time.time()
            t0 = time.monotonic()
            with self.pop3_mounted(store, first) as m:
                while True:
                    try:
                        have = len(os.listdir(cur))
                    except FileNotFoundError:
                        have = 0
                    if have >= n:
                        break
                    if time.monotonic() - t0 > limit:
                        raise BenchError(
                            'POP3 mount: %d of %d messages in the store '
                            'after %d s' % (have, n, limit))
                    time.sleep(0.01)
                first['seconds'] = time.monotonic() - t0
                check(have == n, 'POP3 mount: %d files in %s, the maildrop '
                      'has %d messages' % (have, cur, n))
                first['session_s'] = self.wait_pop3_quit(w0, 60)
                names, uidls = self.pop3_files(m)
                first['cat_seconds'], p = run_tool(
                    ['cat', '--'] + [m.p(x) for x in names])
            check(p.returncode == 0, 'cat through the POP3 mount failed: '
                  '%s' % p.stderr.decode(errors='replace')[:500])
            pos = 0
            for name, uidl in zip(names, uidls):
                want = ref[uidl]
                check(p.stdout[pos:pos + len(want)] == want,
                      'cat through the POP3 mount: %s is not the message '
                      'poplib got for UIDL %s (%d bytes)' % (
                          name, uidl, len(want)))
                pos += len(want)
            check(pos == len(p.stdout), 'cat through the POP3 mount: %d '
                  'bytes, the messages have %d' % (len(p.stdout), pos))
            first['cat_bytes'] = pos
            self.pop3_traffic(tr, first)
            check(first['retr_commands'] >= n, 'POP3 mount: %d RETR for '
                  '%d messages' % (first['retr_commands'], n))

            tr.clear()
            w0 = time.time()
            t0 = time.monotonic()
            with self.pop3_mounted(store, again) as m:
                while len(os.listdir(m.path)) < n:
                    if time.monotonic() - t0 > 60:
                        raise BenchError(
                            'POP3 remount: %d of %d files listed after '
                            '60 s' % (len(os.listdir(m.path)), n))
                    time.sleep(0.005)
                again['seconds'] = time.monotonic() - t0
                again['session_s'] = self.wait_pop3_quit(w0, 60)
                self.pop3_files(m)
            self.pop3_traffic(tr, again)
            check(again['retr_commands'] == 0, 'POP3 remount on a complete '
                  'store sent %d RETR' % again['retr_commands'])
        finally:
            shutil.rmtree(store, ignore_errors=True)
        return first, again

    # -- baselines

    def measure_poplib(self, tr):
        """poplib downloads the maildrop through the same proxy."""
        r = {}
        ref = self.pop3['mail']
        out = tempfile.mkdtemp(prefix='poplib-', dir=self.tmp)
        try:
            tr.clear()
            t0 = time.monotonic()
            try:
                paths, r['retrs_sent'] = popdl.download(
                    'localhost', self.pop3_proxy.port,
                    self.server.ssl_context(), POP3_USER,
                    self.server.users[POP3_USER], out)
            except (poplib.error_proto, OSError) as e:
                raise BenchError('poplib baseline: %s' % e) from None
            r['seconds'] = time.monotonic() - t0
            check(set(paths) == set(ref), 'poplib: %d messages, the '
                  'maildrop has %d' % (len(paths), len(ref)))
            for uidl, path in paths.items():
                with open(path, 'rb') as f:
                    check(f.read() == ref[uidl], 'poplib: UIDL %s is not '
                          'the reference message' % uidl)
            self.pop3_traffic(tr, r)
            check(r['retr_commands'] == r['retrs_sent'], 'poplib sent %d '
                  'RETR, the rawlog shows %d' % (r['retrs_sent'],
                                                 r['retr_commands']))
            return r
        finally:
            shutil.rmtree(out, ignore_errors=True)


    def measure_raw(self, tr):
        r = {}
        tr.clear()
        t0 = time.monotonic()
        bodies, uids = rawimap.grep_folder(
            'localhost', self.proxy.port, self.server.cafile, USER,
            self.server.users[USER], GREP, WORD.encode())
        r['seconds'] = time.monotonic() - t0
        check(set(bodies) == set(self.corp['grep_index']),
              'raw client: fetched %d messages, expected %d' % (
                  len(bodies), len(self.corp['grep_index'])))
        hits = {self.corp['grep_index'][u] for u in uids}
        check(hits == self.corp['grep_hits'],
              'raw client: %d hits, expected %d' % (
                  len(hits), len(self.corp['grep_hits'])))
        r['hits'] = len(hits)
        sessions = tr.collect()
        cmds = all_commands(sessions)
        r['commands'] = len(cmds)
        r['fetch_commands'] = sum(map(is_fetch, cmds))
        r['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        return r

    def measure_raw_logged_in(self, tr):
        """The raw client, logged in before the clock starts: only EXAMINE,
        the pipelined UID FETCH 1:* BODY.PEEK[] and the grep are timed
        (a mount has logged in before its first grep too)."""
        r = {}
        tr.clear()
        bodies, uids, r['seconds'] = rawimap.grep_folder_logged_in(
            'localhost', self.proxy.port, self.server.cafile, USER,
            self.server.users[USER], GREP, WORD.encode(), time.monotonic)
        check(set(bodies) == set(self.corp['grep_index']),
              'raw client (logged in): fetched %d messages, expected %d' % (
                  len(bodies), len(self.corp['grep_index'])))
        hits = {self.corp['grep_index'][u] for u in uids}
        check(hits == self.corp['grep_hits'],
              'raw client (logged in): %d hits, expected %d' % (
                  len(hits), len(self.corp['grep_hits'])))
        r['hits'] = len(hits)
        cmds = all_commands(tr.collect())
        r['commands'] = len(cmds)
        r['command_verbs'] = verb_counts(cmds)
        return r

    # -- cached mail: the local copy and the FUSE floor

    def make_local_copy(self):
        """A local Maildir of the Grep folder, LOCAL/Grep/cur/UID.bench:2,
        holding each message as the server gives it (fetched straight from
        Dovecot, not measured): the baseline for cached mail, for grep
        and for the FUSE floor, and for notmuch and mu.  Returns the
        folder's directory."""
        folder = os.path.join(self.tmp, 'local', GREP)
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(folder, sub))
        bodies, uids = rawimap.grep_folder(
            'localhost', self.server.imaps_port, self.server.cafile, USER,
            self.server.users[USER], GREP, WORD.encode())
        check(set(bodies) == set(self.corp['grep_index']) and
              {self.corp['grep_index'][u] for u in uids} ==
              self.corp['grep_hits'],
              'local copy: the server gave %d messages, not the corpus' %
              len(bodies))
        for uid, body in bodies.items():
            with open(os.path.join(folder, 'cur', '%d.bench:2,' % uid),
                      'wb') as f:
                f.write(body)
        os.sync()  # clean pages: drop_page_cache() can drop them all
        log('local copy of %s: %d messages in %s' % (GREP, len(bodies),
                                                     folder))
        return folder

    def copy_hits(self, stdout, top):
        """Message numbers of the local copy's files grep -rl printed
        (directly or through a floor mounted at top)."""
        hits = set()
        for line in stdout.decode().splitlines():
            name = os.path.basename(line)
            check(line.startswith(top + '/') and name.endswith('.bench:2,')
                  and name.split('.', 1)[0].isdigit(),
                  'grep printed %r' % line)
            uid = int(name.split('.', 1)[0])
            check(uid in self.corp['grep_index'],
                  'grep found unknown message %s' % line)
            hits.add(self.corp['grep_index'][uid])
        return hits

    def grep_copy(self, top, what):
        """grep -rl over top (the local copy, or a floor over it); checks
        the hits; returns the seconds."""
        took, p = run_tool(['grep', '-rl', WORD, top])
        check(p.returncode == 0, 'grep -rl over %s failed (%d): %s' % (
            what, p.returncode, p.stderr.decode(errors='replace')[:500]))
        hits = self.copy_hits(p.stdout, top)
        check(hits == self.corp['grep_hits'],
              'grep -rl over %s: %d hits, expected %d (%d missing, %d '
              'extra)' % (what, len(hits), len(self.corp['grep_hits']),
                          len(self.corp['grep_hits'] - hits),
                          len(hits - self.corp['grep_hits'])))
        return took

    def floor_grep(self, point, what):
        """grep -rl through a FUSE floor mounted at point: seconds and
        FUSE requests (per file too)."""
        rc = RequestCount(floor.requests, point)
        r = {'seconds': self.grep_copy(point, 'the FUSE floor (%s)' % what)}
        r['requests'] = rc.delta()
        r['requests_per_file'], r['requests_per_file_all'] = per_file(
            r['requests'], len(self.corp['grep_index']))
        return r

    def measure_floor(self):
        """The baselines for cached mail, over the local copy of Grep:
        grep -rl through the FUSE floor (bench/fusefloor.c), served by up
        to 16 threads as mailfs is ('floor') and by one ('floor_st'):
        freshly mounted after dropping the copy's page cache ('_dropped':
        everything from the disk), freshly mounted again ('_fresh': its
        page cache cold, the copy's warm, as mailfs after a remount) and
        again in that mount ('_warm'); the floors of a writable mount,
        fresh and again ('floor_open': OPEN and RELEASE answered;
        'floor_flush': FLUSH answered, no OPEN); then grep -rl over the
        copy itself after dropping its page cache ('local_dropped') and
        again ('local_warm')."""
        r = {}
        # The messages themselves, one flat directory as the mount's Grep.
        top = os.path.join(self.local, 'cur')
        if floor.usable():
            for name, single in (('floor', False), ('floor_st', True)):
                drop_page_cache(top)
                with floor.mounted(top, self.tmp, single) as (point, _):
                    r[name + '_dropped'] = self.floor_grep(point, name)
                with floor.mounted(top, self.tmp, single) as (point, _):
                    r[name + '_fresh'] = self.floor_grep(point, name)
                    r[name + '_warm'] = self.floor_grep(point, name)
            # The floors under a writable mount, which must hear of each
            # close: OPEN and RELEASE answered (as mailfs's writable
            # mount), or no OPEN but FLUSH answered (no-open writes).
            for mode in ('open', 'flush'):
                name = 'floor_' + mode
                with floor.mounted(top, self.tmp, False, mode) as (point, _):
                    r[name + '_fresh'] = self.floor_grep(point, name)
                    r[name + '_warm'] = self.floor_grep(point, name)
        drop_page_cache(top)
        r['local_dropped'] = {'seconds': self.grep_copy(top,
                                                        'the local copy')}
        r['local_warm'] = {'seconds': self.grep_copy(top, 'the local copy')}
        return r

    def mbsync_config(self, work):
        """Writes an mbsync 1.4 config for the grep folder; returns
        (config path, Maildir root)."""
        pwfile = mountmod.write_password_file(work, self.server.users[USER])
        maildir = os.path.join(work, 'Mail')
        os.mkdir(maildir)
        conf = os.path.join(work, 'mbsyncrc')
        text = '\n'.join([
            '# written by bench/bench.py',
            'FSync no',
            '',
            'IMAPAccount bench',
            'Host localhost',
            'Port %d' % self.proxy.port,
            'User %s' % USER,
            'PassCmd "cat %s"' % pwfile,
            'SSLType IMAPS',
            'CertificateFile %s' % self.server.cafile,
            'SystemCertificates no',
            '',
            'IMAPStore bench-far',
            'Account bench',
            '',
            'MaildirStore bench-near',
            'Path %s/' % maildir,
            'Inbox %s/INBOX' % maildir,
            'SubFolders Verbatim',
            '',
            'Channel bench',
            'Far :bench-far:',
            'Near :bench-near:',
            'Patterns %s' % GREP,
            'Create Near',
            'Sync Pull',
            'SyncState *',
            ''])
        with open(conf, 'w') as f:
            f.write(text)
        return conf, maildir

    def measure_mbsync(self, tr):
        r = {}
        work = tempfile.mkdtemp(prefix='mbsync-', dir=self.tmp)
        try:
            conf, maildir = self.mbsync_config(work)
            env = dict(TOOL_ENV, HOME=work)
            tr.clear()
            t0 = time.monotonic()
            p = subprocess.run(['mbsync', '-c', conf, 'bench'],
                               stdin=subprocess.DEVNULL, env=env,
                               capture_output=True, timeout=900)
            r['sync_seconds'] = time.monotonic() - t0
            if p.returncode != 0:
                raise BenchError('mbsync failed (%d): %s' % (
                    p.returncode,
                    (p.stderr or p.stdout).decode(errors='replace')[-800:]))
            g0 = time.monotonic()
            p = subprocess.run(['grep', '-rl', WORD, maildir],
                               stdin=subprocess.DEVNULL, env=TOOL_ENV,
                               capture_output=True)
            now = time.monotonic()
            r['grep_seconds'] = now - g0
            r['seconds'] = now - t0
            check(p.returncode == 0, 'grep over the Maildir failed')
            hits = set()
            for path in p.stdout.decode().splitlines():
                with open(path, 'rb') as f:
                    hits.add(message_number(f.read()))
            check(hits == self.corp['grep_hits'],
                  'mbsync + grep: %d hits, expected %d' % (
                      len(hits), len(self.corp['grep_hits'])))
            r['hits'] = len(hits)
            if shutil.which('notmuch'):
                r['notmuch_seconds'] = self.notmuch_new(
                    work, os.path.join(maildir, GREP))
            sessions = tr.collect()
            cmds = all_commands(sessions)
            r['commands'] = len(cmds)
            r['fetch_commands'] = sum(map(is_fetch, cmds))
            r['bytes_from_server'] = sum(s.bytes_out for s in sessions)
            return r
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def notmuch_new(self, work, mail_root):
        """Times `notmuch new` over mail_root with a fresh database in
        work (never inside the mount); checks it indexed the folder and
        finds the messages that mention WORD."""
        db = tempfile.mkdtemp(prefix='notmuch-', dir=work)
        conf = os.path.join(db, 'config')
        with open(conf, 'w') as f:
            f.write('[database]\npath=%s\nmail_root=%s\n'
                    '[maildir]\nsynchronize_flags=false\n'
                    '[new]\nignore=\n' % (db, mail_root))
        env = dict(TOOL_ENV, NOTMUCH_CONFIG=conf, HOME=work)
        t0 = time.monotonic()
        p = subprocess.run(['notmuch', 'new', '--quiet'], env=env,
                           capture_output=True, timeout=900)
        took = time.monotonic() - t0
        check(p.returncode == 0, 'notmuch new failed: %s' %
              p.stderr.decode(errors='replace')[-500:])
        n = subprocess.run(['notmuch', 'count', '*'], env=env,
                           capture_output=True, text=True).stdout.strip()
        check(n == str(len(self.corp['grep_index'])),
              'notmuch indexed %s messages, expected %d' %
              (n, len(self.corp['grep_index'])))
        n = subprocess.run(['notmuch', 'count', WORD], env=env,
                           capture_output=True, text=True).stdout.strip()
        check(n == str(len(self.corp['grep_hits'])),
              'notmuch finds %s messages with "%s", expected %d' %
              (n, WORD, len(self.corp['grep_hits'])))
        return took

    def mu_index(self, work, maildir):
        """Times `mu index` over maildir with a fresh mu home in work
        (`mu init` before the clock starts); checks it indexed the
        folder and finds the messages that mention WORD."""
        home = tempfile.mkdtemp(prefix='mu-', dir=work)
        env = dict(TOOL_ENV, HOME=work)

        def mu(*argv, timeout=60):
            p = subprocess.run(['mu', argv[0], '--muhome=' + home] +
                               list(argv[1:]),
                               env=env, capture_output=True, text=True,
                               timeout=timeout)
            return p
        p = mu('init', '--maildir=' + maildir)
        check(p.returncode == 0, 'mu init failed: %s' % p.stderr[-500:])
        t0 = time.monotonic()
        p = mu('index', '--quiet', timeout=900)
        took = time.monotonic() - t0
        check(p.returncode == 0, 'mu index failed: %s' % p.stderr[-500:])
        for query, want in (('', len(self.corp['grep_index'])),
                            (WORD, len(self.corp['grep_hits']))):
            p = mu('find', '--fields=l', query)
            got = len(p.stdout.splitlines())
            check(got == want, 'mu find %r: %d messages, expected %d' % (
                query, got, want))
        return took

    def maildir_mount(self, result, cache_home):
        """A mount in the Maildir layout through the proxy, over the disk
        cache in cache_home."""
        url = 'imaps://%s@localhost:%d' % (USER, self.proxy.port)
        return self.mount_of(url, USER, ['layout=maildir'] +
                             self.args.mount_option, result, cache_home)

    def measure_indexers(self, tr):
        """notmuch new and mu index (those installed) over Grep in the
        Maildir layout right after a remount (every body in the disk
        cache and in memory, the mount's page cache cold: a fresh mount
        over the same cache for each tool), with the FUSE requests per
        file; against the same over the local copy (in memory too).  Each
        database is new and outside the mount; each index is checked."""
        tools = [t for t in ('notmuch', 'mu') if shutil.which(t)]
        r = {}
        home = tempfile.mkdtemp(prefix='cache-', dir=self.tmp)
        work = tempfile.mkdtemp(prefix='index-', dir=self.tmp)
        index = {'notmuch': self.notmuch_new, 'mu': self.mu_index}
        n = len(self.corp['grep_index'])
        try:
            with self.maildir_mount({}, home) as m:
                _, p = run_tool(['grep', '-rl', WORD, m.p(GREP)])
                check(p.returncode == 0 and len(p.stdout.splitlines()) ==
                      len(self.corp['grep_hits']),
                      'grep -rl over the Maildir layout: wrong hits')
            for tool in tools:
                one = {}
                tr.clear()
                with self.maildir_mount(one, home) as m:
                    rc = RequestCount(mailfs_requests, m.path)
                    one['seconds'] = index[tool](work, m.p(GREP))
                    one['requests'] = rc.delta()
                one['body_fetch_commands'] = sum(
                    map(is_body_fetch, all_commands(tr.collect())))
                one['requests_per_file'], one['requests_per_file_all'] = \
                    per_file(one['requests'], n)
                # As the mount's files below, the copy's are in memory.
                for top, _, files in os.walk(self.local):
                    for name in files:
                        with open(os.path.join(top, name), 'rb') as f:
                            f.read()
                one['local_seconds'] = index[tool](work, self.local)
                r[tool] = one
            return r
        finally:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)

    def measure_notmuch_mount(self, tr):
        """`notmuch new` over the Grep folder of a fresh mount in the
        Maildir layout (-o layout=maildir), through the proxy."""
        r = {}
        work = tempfile.mkdtemp(prefix='nm-', dir=self.tmp)
        try:
            url = 'imaps://%s@localhost:%d' % (USER, self.proxy.port)
            tr.clear()
            with self.mount_of(url, USER, ['layout=maildir'] +
                               self.args.mount_option, r) as m:
                r['seconds'] = self.notmuch_new(work, m.p(GREP))
            cmds = all_commands(tr.collect())
            r['fetch_commands'] = sum(map(is_body_fetch, cmds))
            return r
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def mbsync_usable(self):
        if self.args.no_mbsync:
            return False, 'skipped (--no-mbsync)'
        if not shutil.which('mbsync'):
            return False, 'not installed'
        return True, ''

    def search_hits(self, names):
        """Message numbers of the Search folder's file names."""
        hits = set()
        for name in names:
            check(name in self.search['number_of'],
                  'unknown message %r among the results' % name)
            hits.add(self.search['number_of'][name])
        return hits

    def measure_search(self, tr):
        """Server-side search (ls of .search/QUERY) on a fresh mount, then
        grep -rl on another fresh mount: time, bytes and commands."""
        srv, grp = {}, {}
        tr.clear()
        with self.mounted(srv) as m:
            d = m.p(SEARCH, '.search', SEARCH_QUERY)
            w0 = time.time()
            srv['seconds'], p = run_tool(['ls', '--', d])
            w1 = time.time()
        check(p.returncode == 0, 'ls .search failed: %s' % p.stderr.decode())
        hits = self.search_hits(p.stdout.decode().split())
        check(hits == self.search['hits'],
              '.search: %d hits, expected %d' % (len(hits),
                                                 len(self.search['hits'])))
        sessions = tr.collect()
        cmds = commands_between(sessions, w0, w1)
        srv['commands'] = len(cmds)
        srv['command_verbs'] = verb_counts(cmds)
        srv['body_fetch_commands'] = sum(map(is_body_fetch, cmds))
        srv['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        srv['wire_bytes_down'] = tr.wire_bytes_down()
        srv['hits'] = len(hits)
        tr.clear()
        with self.mounted(grp) as m:
            d = m.p(SEARCH)
            try:
                grp['seconds'], p = run_tool(['grep', '-rl', WORD, d],
                                             timeout=self.args.search_timeout)
            except BenchError as e:
                p = None
                log('  grep -rl %s: %s' % (SEARCH, e))
        if p is None:
            # Cut off: bytes as the proxy counted them (the rawlog may be
            # gigabytes; it is dropped unread).
            tr.settle()
            self.server.drop_rawlog_files(USER)
            grp['timed_out'] = True
            grp['seconds'] = None
            grp['at_least_seconds'] = self.args.search_timeout
            grp['bytes_from_server'] = None
            grp['wire_bytes_down'] = tr.wire_bytes_down()
            return srv, grp
        check(p.returncode == 0, 'grep -rl %s failed: %s' % (
            SEARCH, p.stderr.decode()[:500]))
        hits = self.search_hits(os.path.basename(x)
                                for x in p.stdout.decode().split())
        check(hits == self.search['hits'],
              'grep -rl %s: %d hits, expected %d' % (
                  SEARCH, len(hits), len(self.search['hits'])))
        sessions = tr.collect()
        grp['bytes_from_server'] = sum(s.bytes_out for s in sessions)
        grp['wire_bytes_down'] = tr.wire_bytes_down()
        grp['body_fetch_commands'] = sum(
            map(is_body_fetch, all_commands(sessions)))
        return srv, grp

    def warm_up_search(self):
        """An unmeasured server search at 0 ms: Dovecot reads the folder
        once, as the other warm-up does (grep -rl reads it too, and
        would read it again: the first search is the colder one)."""
        self.proxy = Proxy(self.server.imaps_port, rtt_ms=0).start()
        tr = Traffic(self.server, self.proxy)
        tr.clear()
        with self.mounted({}) as m:
            _, p = run_tool(['ls', '--', m.p(SEARCH, '.search',
                                             SEARCH_QUERY)])
            check(p.returncode == 0, 'warm-up: ls .search failed: %s' %
                  p.stderr.decode()[:500])
        tr.collect()
        self.proxy.stop()
        self.proxy = None

    # -- driver

    def warm_up(self):
        """One unmeasured pass without latency: Dovecot builds its cache
        files for what mailfs asks and the page cache fills, so that the
        first measured run starts in the same state as the others."""
        self.proxy = Proxy(self.server.imaps_port, rtt_ms=0).start()
        tr = Traffic(self.server, self.proxy)
        tr.clear()
        with self.mounted({}) as m:
            for argv in (['ls', '-l', m.p(SMALL)],
                         ['grep', '-rl', WORD, m.p(GREP)],
                         ['cat', self.big_path(m)]):
                _, p = run_tool(argv)
                check(p.returncode == 0, 'warm-up: %s failed: %s' % (
                    argv[0], p.stderr.decode(errors='replace')[:500]))
        tr.collect()
        self.proxy.stop()
        self.proxy = None

    def run(self):
        a = self.args
        t_start = time.monotonic()
        log('starting Dovecot')
        self.server = MailServer(rawlog=True).start()
        if not a.search_only:
            self.corp = populate(self.server, a.small, a.grep)
        if not a.no_search:
            self.search = populate_search(self.server, a.search_messages)
        if not a.no_pop3:
            self.pop3 = populate_pop3(self.server, a.pop3_messages)
        log('warm-up pass (not measured)')
        if not a.search_only:
            self.warm_up()
        if not a.no_search:
            self.warm_up_search()
        if not a.search_only:
            self.local = self.make_local_copy()
        use_mbsync, mbsync_note = (
            self.mbsync_usable() if not a.search_only else
            (False, 'skipped (--search-only)'))
        results = {}
        for rtt in a.rtts:
            self.proxy = Proxy(self.server.imaps_port, rtt_ms=rtt).start()
            tr = Traffic(self.server, self.proxy)
            if not a.no_pop3:
                self.pop3_proxy = Proxy(self.server.pop3s_port,
                                        rtt_ms=rtt).start()
                ptr = Traffic(self.server, self.pop3_proxy, POP3_USER,
                              'pop3')
            runs = []
            for i in range(a.runs):
                log('RTT %g ms, run %d/%d' % (rtt, i + 1, a.runs))
                one = {}
                if not a.no_search:
                    one['search'], one['search_grep'] = \
                        self.measure_search(tr)
                    log('  .search %s: %.3f s, %d bytes; grep -rl: %s s, '
                        '%d bytes at the proxy' % (
                            SEARCH_QUERY, one['search']['seconds'],
                            one['search']['bytes_from_server'],
                            one['search_grep']['seconds'] or '> %d' %
                            a.search_timeout,
                            one['search_grep']['wire_bytes_down']))
                if a.search_only:
                    runs.append(one)
                    continue
                one['ls'] = self.measure_ls(tr)
                log('  ls -l: %.3f s, %d commands' % (
                    one['ls']['seconds'], one['ls']['commands']))
                one['head'] = self.measure_head(tr)
                log('  head -c 4096: %.3f s, %d bytes from server' % (
                    one['head']['seconds'],
                    one['head']['bytes_from_server']))
                one['grep'], one['grep2'] = self.measure_grep(tr)
                log('  grep -rl: %.3f s, %d FETCH; again: %.3f s, %d FETCH, %s'
                    % (one['grep']['seconds'],
                       one['grep']['fetch_commands'],
                       one['grep2']['seconds'],
                       one['grep2']['fetch_commands'],
                       one['grep2']['requests']))
                if not a.no_diskcache:
                    one['remount'] = self.measure_remount(tr)
                    log('  disk cache, second mount: ls -l %.3f s, %d '
                        'commands; grep -rl %.3f s, %d FETCH, %s' % (
                            one['remount']['ls_seconds'],
                            one['remount']['ls_commands'],
                            one['remount']['grep_seconds'],
                            one['remount']['grep_fetch_commands'],
                            one['remount']['grep_requests']))
                    log('  third mount, its disk cache dropped from the '
                        'page cache: grep -rl %.3f s, %d FETCH' % (
                            one['remount']['dropped']['grep_seconds'],
                            one['remount']['dropped']['fetch_commands']))
                    one['prefetch'] = self.measure_prefetch(tr)
                    log('  prefetch=%s: %.3f s, %d FETCH' % (
                        GREP, one['prefetch']['seconds'],
                        one['prefetch']['fetch_commands']))
                one['local'] = self.measure_floor()
                log('  cached mail: local copy %.3f s (page cache dropped), '
                    '%.3f s again; %s' % (
                        one['local']['local_dropped']['seconds'],
                        one['local']['local_warm']['seconds'],
                        '; '.join('%s %.3f s dropped, %.3f s fresh, %.3f s '
                                  'again' % (
                                      k, one['local'][k + '_dropped'][
                                          'seconds'],
                                      one['local'][k + '_fresh']['seconds'],
                                      one['local'][k + '_warm']['seconds'])
                                  for k in ('floor', 'floor_st')
                                  if k + '_fresh' in one['local'])))
                one['raw'] = self.measure_raw(tr)
                log('  raw client: %.3f s' % one['raw']['seconds'])
                one['raw_logged_in'] = self.measure_raw_logged_in(tr)
                log('  raw client, logged in first: %.3f s' %
                    one['raw_logged_in']['seconds'])
                if use_mbsync:
                    try:
                        one['mbsync'] = self.measure_mbsync(tr)
                        log('  mbsync + grep: %.3f s' %
                            one['mbsync']['seconds'])
                    except (BenchError, OSError,
                            subprocess.TimeoutExpired) as e:
                        if runs or i > 0 or rtt != a.rtts[0]:
                            raise   # it worked before: a real failure
                        use_mbsync = False
                        mbsync_note = 'could not be made to work: %s' % e
                        log('  mbsync: ' + mbsync_note)
                if shutil.which('notmuch'):
                    one['notmuch'] = self.measure_notmuch_mount(tr)
                    log('  notmuch new over the Maildir-layout mount: '
                        '%.3f s' % one['notmuch']['seconds'])
                if not a.no_diskcache:
                    one['index'] = self.measure_indexers(tr)
                    for tool, x in one['index'].items():
                        log('  %s after a remount: %.3f s, %.2f requests '
                            'per file; over the local copy: %.3f s' % (
                                tool, x['seconds'],
                                x['requests_per_file_all'],
                                x['local_seconds']))
                if not a.no_cat:
                    one['cat'] = self.measure_cat(tr)
                    log('  cat 20 MB: %.3f s, %d FETCH' % (
                        one['cat']['seconds'],
                        one['cat']['fetch_commands']))
                if not a.no_pop3:
                    one['pop3'], one['pop3_again'] = self.measure_pop3(
                        ptr, rtt)
                    log('  POP3 mount: %d messages in the store after '
                        '%.3f s, %d RETR; remount: listed in %.3f s, '
                        '%d RETR' % (
                            a.pop3_messages, one['pop3']['seconds'],
                            one['pop3']['retr_commands'],
                            one['pop3_again']['seconds'],
                            one['pop3_again']['retr_commands']))
                    one['poplib'] = self.measure_poplib(ptr)
                    log('  poplib: %.3f s, %d RETR' % (
                        one['poplib']['seconds'],
                        one['poplib']['retr_commands']))
                runs.append(one)
            self.proxy.stop()
            self.proxy = None
            if self.pop3_proxy is not None:
                self.pop3_proxy.stop()
                self.pop3_proxy = None
            results[str(rtt)] = runs
        elapsed = time.monotonic() - t_start
        return results, use_mbsync, mbsync_note, elapsed


def fetched_uids(command):
    """How many messages a 'UID FETCH set (...)' command names."""
    words = command.split()
    if len(words) < 3:
        return 0
    n = 0
    for part in words[2].split(','):
        if ':' in part:
            lo, hi = part.split(':', 1)
            if lo.isdigit() and hi.isdigit():
                n += int(hi) - int(lo) + 1
            else:
                n += 1
        else:
            n += 1
    return n


# ----------------------------------------------------------- report


def med(values):
    """The median of the runs' values; of {kind: count} values, the
    median of each kind (0 in a run without it)."""
    values = [v for v in values if v is not None]
    if values and isinstance(values[0], dict):
        kinds = sorted({k for v in values for k in v})
        return {k: statistics.median(v.get(k, 0) for v in values)
                for k in kinds}
    return statistics.median(values) if values else None


def fmt(v, kind):
    if v is None:
        return 'n/a'
    if kind == 's':
        return '%.3f' % v
    if kind == 'x':
        return '%.2fx' % v
    if kind == 'ms':
        return '%.1f ms' % v
    if kind == 'B':
        return '{:,}'.format(int(round(v)))
    if kind == 'k':
        # FUSE requests per file by kind, the most frequent first.
        kinds = sorted(((c, k) for k, c in v.items() if c),
                       key=lambda x: (-x[0], x[1]))
        return ' '.join('%s %.3g' % (k, c) for c, k in kinds) or 'none'
    return '%g' % v


def column(runs, *keys):
    """[one[k1][k2]... for each run], None where a key is missing."""
    out = []
    for one in runs:
        v = one
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        out.append(v)
    return out


def ratio(num, den):
    return [a / b if a is not None and b else None
            for a, b in zip(num, den)]


def summarize(runs, use_mbsync):
    """Rows of (label, unit kind, [per-run values]) for one RTT."""
    def col(*keys):
        return column(runs, *keys)

    def has(*keys):
        return any(v is not None for v in col(*keys))

    rows = [
        ('mount (login, before any command)', 's', col('ls', 'mount_s')),
        ('ls -l Small: time', 's', col('ls', 'seconds')),
        ('ls -l Small: IMAP commands', 'n', col('ls', 'commands')),
        ('head -c 4096 Big: time', 's', col('head', 'seconds')),
        ('head -c 4096 Big: bytes from server', 'B',
         col('head', 'bytes_from_server')),
        ('grep -rl Grep (fresh mount, login done): time', 's',
         col('grep', 'seconds')),
        ('grep -rl Grep: FETCH commands', 'n',
         col('grep', 'fetch_commands')),
        ('grep -rl Grep: FUSE requests per file', 'k',
         col('grep', 'requests_per_file')),
        ('raw client, logged in first (timed: EXAMINE + 1 pipelined '
         'UID FETCH 1:* BODY.PEEK[] + grep): time', 's',
         col('raw_logged_in', 'seconds')),
        ('ratio grep mount / raw logged in', 'x',
         ratio(col('grep', 'seconds'), col('raw_logged_in', 'seconds'))),
        ('raw client, whole session (timed: connect, TLS, login, '
         '1 pipelined FETCH, grep): time', 's', col('raw', 'seconds')),
        ('ratio grep mount / raw whole session (login timed for raw '
         'only: flatters the mount)', 'x',
         ratio(col('grep', 'seconds'), col('raw', 'seconds'))),
    ]
    if use_mbsync:
        rows += [
            ('mbsync (connect, sync) + grep -rl: time', 's',
             col('mbsync', 'seconds')),
            ('ratio grep mount / mbsync', 'x',
             ratio(col('grep', 'seconds'), col('mbsync', 'seconds'))),
        ]
    if has('notmuch', 'seconds'):
        rows += [
            ('notmuch new over Grep, fresh mount with -o layout=maildir: '
             'time', 's', col('notmuch', 'seconds')),
            ('notmuch new: body FETCH commands', 'n',
             col('notmuch', 'fetch_commands')),
        ]
        if use_mbsync:
            rows += [
                ('notmuch new over the mbsync Maildir (after the sync): '
                 'time', 's', col('mbsync', 'notmuch_seconds')),
                ('ratio notmuch new mount / (mbsync sync + notmuch new)',
                 'x', ratio(col('notmuch', 'seconds'),
                            [a + b if a is not None and b is not None
                             else None for a, b in
                             zip(col('mbsync', 'sync_seconds'),
                                 col('mbsync', 'notmuch_seconds'))])),
            ]

    # Cached mail, page cache warm: the same grep again.
    local_warm = col('local', 'local_warm', 'seconds')
    rows += [
        ('grep -rl again (same mount, page cache warm): time', 's',
         col('grep2', 'seconds')),
        ('grep -rl again: FETCH commands', 'n',
         col('grep2', 'fetch_commands')),
        ('grep -rl again: FUSE requests per file (all kinds)', 'n',
         col('grep2', 'requests_per_file_all')),
        ('grep -rl again: FUSE requests per file, by kind', 'k',
         col('grep2', 'requests_per_file')),
        ('local copy of Grep: grep -rl again (page cache warm): time', 's',
         local_warm),
        ('ratio grep again: mount / local', 'x',
         ratio(col('grep2', 'seconds'), local_warm)),
    ]
    # The read-only floors, then those of a writable mount (told of
    # each close), each against the writable mount's repeated grep.
    for key, what in (
            ('floor', '16 threads, as mailfs'), ('floor_st', '1 thread'),
            ('floor_open', 'of a writable mount: OPEN and RELEASE '
             'answered, as mailfs'),
            ('floor_flush', 'of a writable mount: no OPEN, FLUSH answered, '
             'as no-open writes')):
        if not has('local', key + '_warm', 'seconds'):
            continue
        t = col('local', key + '_warm', 'seconds')
        rows += [
            ('FUSE floor (%s) over the local copy: grep -rl again, same '
             'mount: time' % what, 's', t),
            ('  its FUSE requests per file', 'k',
             col('local', key + '_warm', 'requests_per_file')),
            ('ratio grep again: mount / floor (%s)' % what, 'x',
             ratio(col('grep2', 'seconds'), t)),
            ('ratio grep again: floor (%s) / local' % what, 'x',
             ratio(t, local_warm)),
        ]

    if has('remount', 'grep_seconds'):
        rows += [
            ('disk cache, second mount: ls -l Small: time', 's',
             col('remount', 'ls_seconds')),
            ('disk cache, second mount: ls -l Small: IMAP commands', 'n',
             col('remount', 'ls_commands')),
            ('ratio ls -l second mount / cold mount', 'x',
             ratio(col('remount', 'ls_seconds'), col('ls', 'seconds'))),
        ]
    # Right after a remount: the kernel's page cache of the mount is
    # empty, the files below (mailfs's disk cache, the copy under the
    # floor) are in memory; a local file system has no such state: its
    # baseline is the warm copy.  Then with those files' pages dropped
    # too: everything from the disk, as after a reboot.
    for state, mount, local, label in (
            ('fresh', ('remount',), local_warm,
             'after a remount (disk cache in memory, page cache cold)'),
            ('dropped', ('remount', 'dropped'),
             col('local', 'local_dropped', 'seconds'),
             'after a remount, page cache dropped (all from the disk)')):
        t = col(*(mount + ('grep_seconds',)))
        if not any(v is not None for v in t):
            continue
        rows += [
            ('grep -rl %s: time' % label, 's', t),
            ('  FETCH commands', 'n',
             col(*(mount + (('grep_fetch_commands',) if state == 'fresh'
                            else ('fetch_commands',))))),
            ('  FUSE requests per file (all kinds)', 'n',
             col(*(mount + ('grep_requests_per_file_all',)))),
            ('  FUSE requests per file, by kind', 'k',
             col(*(mount + ('grep_requests_per_file',)))),
            ('local copy of Grep%s: grep -rl: time' % (
                ', its page cache dropped' if state == 'dropped'
                else ' (page cache warm)'), 's', local),
            ('ratio grep %s: mount / local' % state, 'x', ratio(t, local)),
        ]
        for key, what in (('floor', '16 threads, as mailfs'),
                          ('floor_st', '1 thread')):
            f = col('local', '%s_%s' % (key, state), 'seconds')
            if not any(v is not None for v in f):
                continue
            rows += [
                ('FUSE floor (%s) freshly mounted over the local copy%s: '
                 'grep -rl: time' % (
                     what, ', its page cache dropped'
                     if state == 'dropped' else ''), 's', f),
                ('  its FUSE requests per file', 'k',
                 col('local', '%s_%s' % (key, state), 'requests_per_file')),
                ('ratio grep %s: mount / floor (%s)' % (state, what), 'x',
                 ratio(t, f)),
                ('ratio grep %s: floor (%s) / local' % (state, what), 'x',
                 ratio(f, local)),
            ]
    if has('remount', 'ro', 'fresh_seconds'):
        for key, label, local in (
                ('fresh', 'right after a remount', local_warm),
                ('again', 'again, same mount', local_warm)):
            t = col('remount', 'ro', key + '_seconds')
            rows += [
                ('-o ro (no OPEN/FLUSH/RELEASE): grep -rl %s: time' % label,
                 's', t),
                ('  FUSE requests per file (all kinds)', 'n',
                 col('remount', 'ro', key + '_requests_per_file_all')),
                ('  FUSE requests per file, by kind', 'k',
                 col('remount', 'ro', key + '_requests_per_file')),
                ('ratio -o ro grep %s: mount / local (page cache warm)' %
                 key, 'x', ratio(t, local)),
            ]
            f = col('local', 'floor_' + ('warm' if key == 'again'
                                         else 'fresh'), 'seconds')
            if any(v is not None for v in f):
                rows.append(('ratio -o ro grep %s: mount / floor (16 '
                             'threads)' % key, 'x', ratio(t, f)))
    if has('remount', 'grep_seconds'):
        rows += [
            ('ratio grep after a remount / cold first grep', 'x',
             ratio(col('remount', 'grep_seconds'), col('grep', 'seconds'))),
            ('-o prefetch=Grep, from mount start: time', 's',
             col('prefetch', 'seconds')),
            ('prefetch: FETCH commands', 'n',
             col('prefetch', 'fetch_commands')),
        ]
    for tool, what in (('notmuch', 'notmuch new'), ('mu', 'mu index')):
        if not has('index', tool, 'seconds'):
            continue
        rows += [
            ('%s over Grep, -o layout=maildir, second mount (disk cache, '
             'page cache cold): time' % what, 's',
             col('index', tool, 'seconds')),
            ('  body FETCH commands', 'n',
             col('index', tool, 'body_fetch_commands')),
            ('  FUSE requests per file', 'k',
             col('index', tool, 'requests_per_file')),
            ('%s over the local copy (page cache warm): time' % what,
             's', col('index', tool, 'local_seconds')),
            ('ratio %s second mount / local copy' % what, 'x',
             ratio(col('index', tool, 'seconds'),
                   col('index', tool, 'local_seconds'))),
        ]
    if use_mbsync:
        rows += [
            ('mbsync full sync of Grep: time', 's',
             col('mbsync', 'sync_seconds')),
        ]
        if has('prefetch', 'seconds'):
            rows += [
                ('ratio prefetch / mbsync sync', 'x',
                 ratio(col('prefetch', 'seconds'),
                       col('mbsync', 'sync_seconds'))),
            ]
    if has('cat', 'seconds'):
        rows += [
            ('cat Big (20 MB): time', 's', col('cat', 'seconds')),
            ('cat Big: FETCH commands', 'n', col('cat', 'fetch_commands')),
            ('cat Big: bytes from server', 'B',
             col('cat', 'bytes_from_server')),
            ('cat Big: IMAP connections used', 'n',
             col('cat', 'connections')),
        ]
    return rows


def summarize_search(runs, n):
    """Rows of the search table for one RTT (n messages in Search)."""
    def col(*keys):
        return column(runs, *keys)

    return [
        ('ls Search/.search/%s (fresh mount): time' % SEARCH_QUERY, 's',
         col('search', 'seconds')),
        ('  IMAP commands', 'n', col('search', 'commands')),
        ('  body FETCH commands', 'n', col('search', 'body_fetch_commands')),
        ('  bytes from server (IMAP, listing included)', 'B',
         col('search', 'bytes_from_server')),
        ('  bytes from server (TLS, at the proxy)', 'B',
         col('search', 'wire_bytes_down')),
        ('grep -rl %s Search (fresh mount): time' % WORD, 's',
         col('search_grep', 'seconds')),
        ('  cut off after (did not finish)', 's',
         col('search_grep', 'at_least_seconds')),
        ('  bytes from server (IMAP)', 'B',
         col('search_grep', 'bytes_from_server')),
        ('  bytes from server (TLS, at the proxy)', 'B',
         col('search_grep', 'wire_bytes_down')),
        ('ratio time grep / .search', 'x',
         ratio(col('search_grep', 'seconds'), col('search', 'seconds'))),
        ('ratio bytes grep / .search (at the proxy)', 'x',
         ratio(col('search_grep', 'wire_bytes_down'),
               col('search', 'wire_bytes_down'))),
    ]


def summarize_pop3(runs, n):
    """Rows of the POP3 table for one RTT (n messages in the maildrop)."""
    def col(*keys):
        return column(runs, *keys)

    def per_message_ms(values):
        return [v * 1000.0 / n if v is not None else None for v in values]

    return [
        ('mount (login, then mounted)', 's', col('pop3', 'mount_s')),
        ('mount: all %s messages in STORE/cur (from mount start): time'
         % '{:,}'.format(n), 's', col('pop3', 'seconds')),
        ('mount: per message', 'ms', per_message_ms(col('pop3', 'seconds'))),
        ('mount: its session ends (QUIT, from mount start)', 's',
         col('pop3', 'session_s')),
        ('mount: RETR commands', 'n', col('pop3', 'retr_commands')),
        ('mount: POP3 commands (all sessions)', 'n',
         col('pop3', 'commands')),
        ('mount: bytes from server', 'B', col('pop3', 'bytes_from_server')),
        ('mount: bytes to client on the wire (TLS, login included)', 'B',
         col('pop3', 'wire_bytes_down')),
        ('poplib (connect, login, UIDL, RETR one by one, write, QUIT): time',
         's', col('poplib', 'seconds')),
        ('poplib: per message', 'ms',
         per_message_ms(col('poplib', 'seconds'))),
        ('poplib: RETR commands', 'n', col('poplib', 'retr_commands')),
        ('poplib: POP3 commands', 'n', col('poplib', 'commands')),
        ('poplib: bytes from server', 'B',
         col('poplib', 'bytes_from_server')),
        ('poplib: bytes to client on the wire (TLS, login included)', 'B',
         col('poplib', 'wire_bytes_down')),
        ('ratio download mount / poplib', 'x',
         ratio(col('pop3', 'seconds'), col('poplib', 'seconds'))),
        ('cat all files through the mount (after download): time', 's',
         col('pop3', 'cat_seconds')),
        ('second mount, same store: all files listed (from mount start)',
         's', col('pop3_again', 'seconds')),
        ('second mount: RETR commands', 'n',
         col('pop3_again', 'retr_commands')),
        ('second mount: POP3 commands (all sessions)', 'n',
         col('pop3_again', 'commands')),
        ('second mount: bytes from server', 'B',
         col('pop3_again', 'bytes_from_server')),
    ]


def markdown(rtt, rows, nruns, what=''):
    out = ['### %sRTT %s ms (median of %d run%s)' % (
        what, rtt, nruns, '' if nruns == 1 else 's'), '',
        '| measurement | median | runs |', '| --- | ---: | --- |']
    for label, kind, values in rows:
        out.append('| %s | %s | %s |' % (
            label, fmt(med(values), kind),
            ', '.join(fmt(v, kind) for v in values)))
    return '\n'.join(out)


def command_line(argv):
    mailfs = os.environ.get('MAILFS')
    prefix = 'MAILFS=%s ' % shlex.quote(mailfs) if mailfs else ''
    return prefix + 'python3 ' + ' '.join(shlex.quote(a) for a in argv)


def versions():
    def first_line(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=10)
            return (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    commit = first_line(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'])
    dirty = first_line(['git', '-C', ROOT, 'status', '--porcelain',
                        '--untracked-files=no', '--', 'src'])
    with open(mountmod.MAILFS, 'rb') as f:
        binary = hashlib.sha256(f.read()).hexdigest()[:16]
    return {
        'mailfs': first_line([mountmod.MAILFS, '--version']),
        'binary': os.path.abspath(mountmod.MAILFS),
        'binary_sha256': binary,
        # The tree the bench ran from; the binary may come from elsewhere.
        'commit': (commit or '?') + ('-dirty' if dirty else ''),
        'dovecot': first_line(['dovecot', '--version']),
        'mbsync': first_line(['mbsync', '--version']),
        'kernel': os.uname().release,
    }


# ----------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rtt', default='0,40',
                   help='comma-separated round-trip times in ms '
                        '(default 0,40)')
    p.add_argument('--runs', type=int, default=None,
                   help='runs per RTT, each on fresh mounts; the tables '
                        'show the median (default 3, 1 with --quick)')
    p.add_argument('--quick', action='store_true',
                   help='smoke test: 1,000 / 200 messages, one run')
    p.add_argument('--no-mbsync', action='store_true',
                   help='skip the mbsync baseline')
    p.add_argument('--no-diskcache', action='store_true',
                   help='skip the disk cache measurements (second mount, '
                   'prefetch)')
    p.add_argument('--no-cat', action='store_true',
                   help='skip cat of the 20 MB message')
    p.add_argument('--no-pop3', action='store_true',
                   help='skip the POP3 download (mount and poplib)')
    p.add_argument('--pop3-messages', type=int, default=None,
                   help='messages in the POP3 maildrop (default 1,000, '
                        '100 with --quick)')
    p.add_argument('--no-search', action='store_true',
                   help='skip the server-side search measurement')
    p.add_argument('--search-only', action='store_true',
                   help='only the server-side search measurement')
    p.add_argument('--search-messages', type=int, default=None,
                   help='messages in the Search folder (default 100,000, '
                        '2,000 with --quick)')
    p.add_argument('--search-timeout', type=int, default=900,
                   help='seconds grep -rl over Search may take before it is '
                        'cut off and reported as such (default 900)')
    p.add_argument('-o', '--mount-option', action='append', default=[],
                   help='extra mailfs -o option (repeatable)')
    p.add_argument('--json', default=RESULTS,
                   help='where to write the results (default %(default)s)')
    a = p.parse_args(argv)
    try:
        a.rtts = [float(x) if '.' in x else int(x)
                  for x in a.rtt.split(',') if x.strip()]
    except ValueError:
        p.error('--rtt takes numbers separated by commas')
    if not a.rtts or any(r < 0 for r in a.rtts):
        p.error('--rtt needs at least one non-negative number')
    if a.runs is None:
        a.runs = 1 if a.quick else 3
    if a.runs < 1:
        p.error('--runs must be at least 1')
    if a.pop3_messages is None:
        a.pop3_messages = 100 if a.quick else 1000
    if a.pop3_messages < 1:
        p.error('--pop3-messages must be at least 1')
    if a.search_messages is None:
        a.search_messages = 2000 if a.quick else 100000
    if a.search_messages < 5:
        p.error('--search-messages must be at least 5')
    if a.search_only and a.no_search:
        p.error('--search-only and --no-search exclude each other')
    if a.search_only:
        a.no_pop3 = True
    a.small = 1000 if a.quick else 10000
    a.grep = 200 if a.quick else 2000
    return a


def main(argv):
    args = parse_args(argv[1:])
    if not os.access(mountmod.MAILFS, os.X_OK):
        print('bench: no mailfs binary at %s (run make)' % mountmod.MAILFS,
              file=sys.stderr)
        return 2

    # SIGTERM (a CI time-out, kill) must still unmount and stop Dovecot.
    def on_term(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    info = versions()
    bench = Bench(args)
    try:
        results, use_mbsync, mbsync_note, elapsed = bench.run()
    except BenchError as e:
        print('bench: FAILED: %s' % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print('bench: interrupted (%s)' % (e or 'SIGINT'), file=sys.stderr)
        return 130
    finally:
        bench.cleanup()

    cmd = command_line(argv)
    print('## mailfs benchmark')
    print()
    print('Command: `%s`' % cmd)
    print()
    print('- mailfs: %s, binary %s (sha256 %s), tree %s' % (
        info['mailfs'], info['binary'], info['binary_sha256'],
        info['commit']))
    print('- Dovecot %s; %s; kernel %s' % (
        info['dovecot'], info['mbsync'] or 'no mbsync', info['kernel']))
    if bench.corp:
        print('- Folders: Small %s messages; Grep %s messages, %.1f MB, %d '
              'contain "%s"; Big one %.1f MB message' % (
                  '{:,}'.format(args.small), '{:,}'.format(args.grep),
                  bench.corp['grep_bytes'] / 1e6,
                  len(bench.corp['grep_hits']), WORD,
                  bench.corp['big_size'] / 1e6))
    if bench.search:
        print('- Search: %s small text messages, %d contain "%s"' % (
            '{:,}'.format(bench.search['n']), len(bench.search['hits']),
            WORD))
    print('- Every measurement on a fresh mount (cold cache) through the '
          'latency proxy; commands and bytes from the Dovecot rawlog; '
          'FUSE requests from the mount\'s status (per file: divided by '
          'the folder\'s messages); times in seconds; ratio = per-run '
          'grep time / baseline time')
    if bench.local:
        print('- Cached mail: "local copy" is a Maildir of Grep\'s messages '
              'on the local disk; "FUSE floor" is bench/fusefloor.c '
              '(libfuse low-level API, no OPEN/FLUSH/RELEASE, every '
              'listing with attributes, read-only) mounted over that copy')
    if not args.no_pop3:
        print('- POP3: %s\'s INBOX, %s messages, %.1f MB (Grep\'s size '
              'mix); each run mounts pop3s:// with -o keep on a fresh store '
              'through a second latency proxy, then a second mount on that '
              'store; baseline poplib (RETR one by one) through the same '
              'proxy; ratio = per-run download time / poplib time' % (
                  POP3_USER, '{:,}'.format(args.pop3_messages),
                  bench.pop3['bytes'] / 1e6))
    if not use_mbsync:
        print()
        print('mbsync baseline: %s' % mbsync_note)
    doc = {
        'command': cmd,
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'versions': info,
        'corpus': ({'small': args.small, 'grep': args.grep,
                    'grep_bytes': bench.corp['grep_bytes'],
                    'grep_hits': len(bench.corp['grep_hits']),
                    'big_bytes': bench.corp['big_size'], 'word': WORD}
                   if bench.corp else None),
        'search': ({'messages': bench.search['n'],
                    'hits': len(bench.search['hits']),
                    'query': SEARCH_QUERY} if bench.search else None),
        'runs': args.runs,
        'mbsync': use_mbsync or mbsync_note,
        'pop3': (None if args.no_pop3 else
                 {'user': POP3_USER, 'messages': args.pop3_messages,
                  'bytes': bench.pop3['bytes'], 'mount_options': ['keep'],
                  'baseline': 'poplib ' + platform.python_version()}),
        'elapsed_seconds': round(elapsed, 1),
        'rtt': {},
    }
    for rtt in args.rtts:
        runs = results[str(rtt)]
        rows = [] if args.search_only else summarize(runs, use_mbsync)
        if rows:
            print()
            print(markdown(rtt, rows, len(runs)))
        doc['rtt'][str(rtt)] = {
            'summary': {label: {'median': med(values), 'runs': values}
                        for label, _, values in rows},
            'runs': runs,
        }
        if not args.no_search:
            rows = summarize_search(runs, args.search_messages)
            print()
            print(markdown(rtt, rows, len(runs), 'server-side search, '))
            doc['rtt'][str(rtt)]['search_summary'] = {
                label: {'median': med(values), 'runs': values}
                for label, _, values in rows}
        if not args.no_pop3:
            rows = summarize_pop3(runs, args.pop3_messages)
            print()
            print(markdown(rtt, rows, len(runs), 'POP3 download, '))
            doc['rtt'][str(rtt)]['pop3_summary'] = {
                label: {'median': med(values), 'runs': values}
                for label, _, values in rows}
    print()
    print('Whole bench: %.0f s.' % elapsed)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write('\n')
    print('JSON: %s' % os.path.relpath(args.json, os.getcwd()))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
