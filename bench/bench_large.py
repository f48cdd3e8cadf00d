#!/usr/bin/env python3
"""mailfs benchmark for large mailboxes and many folders (issue 7).

Run with `make bench` (after bench.py), or
    MAILFS=build/mailfs python3 bench/bench_large.py [--rtt 0,40]
    [--huge 100000] [--tenk 10000] [--resync 20000] [--folders 300]

One Dovecot (rawlog on) gets, for user alice:
  Huge     --huge small messages (default 100,000)
  Tenk     --tenk small messages (default 10,000): linearity of listings
  Resync   --resync small messages (default 20,000)
  W/f000.. --folders folders (default 300) of two messages each
For each RTT, through the latency proxy, every mount fresh and with an
empty XDG_CACHE_HOME (cold):
  - `ls -l` of Huge and of Tenk, first and second time (the median of
    three second listings), against a raw
    client that sends EXAMINE and the one UID FETCH 1:* of every item a
    listing needs (UID FLAGS RFC822.SIZE INTERNALDATE and the Message-ID
    header field) pipelined, and reads the answer; the daemon's resident
    memory growth per listed message;
  - resync: after `ls -l` of Resync, another client appends one message,
    expunges one and flags one; after the listing's refresh time, the
    bytes and commands of the next `ls -l` (from Dovecot's rawlog),
    against those of the first listing;
  - walk: `find` over the W folders; round trips counted from the rawlog
    (commands sent more than RTT/2 apart start a new round trip), against
    a raw client that lists every folder in one pipeline (LIST, then all
    EXAMINE + UID FETCH in one write).
Every listing is checked against the server's own count. Tables go to
stdout (Markdown), progress to stderr, JSON to build/bench-large.json.
"""

import argparse
import json
import os
import shutil
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
from tests.integration.mount import Mount  # noqa: E402

import floor  # noqa: E402  (bench/ is sys.path[0])
import rawimap  # noqa: E402

USER = 'alice'
META = ('UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE '
        'BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
REFRESH = 2


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr,
          flush=True)


def check(cond, msg):
    if not cond:
        raise RuntimeError(msg)


def small(i):
    return corpus.text_message(i, size=420)


class LargeBench:
    def __init__(self, a):
        self.a = a
        self.server = None
        self.proxy = None
        self.floor_bytes = None  # measure_floor_memory()
        self.tmp = tempfile.mkdtemp(prefix='mailfs-bench-large-')

    # ----------------------------------------------------------- set-up

    def populate(self):
        a = self.a
        s = self.server
        for name, n, base in (('Huge', a.huge, 0), ('Tenk', a.tenk, 0),
                              ('Resync', a.resync, 0)):
            log('appending %d messages to %s' % (n, name))
            s.append_many(USER, name, [small(base + i) for i in range(n)],
                          batch=1000)
        log('creating %d folders' % a.folders)
        self.walk = ['W.f%03d' % i for i in range(a.folders)]
        with s.wire(USER) as w:
            for f in self.walk:
                s._create(w, f)
                s._append(w, f, [(small(i), '', None) for i in (1, 2)])

    # ---------------------------------------------------------- helpers

    def mount(self, *options):
        xdg = tempfile.mkdtemp(dir=self.tmp)
        m = Mount('imaps://%s@localhost:%d' % (USER, self.proxy.port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=options,
                  env={'XDG_CACHE_HOME': xdg}, timeout=120)
        return m.start()

    @staticmethod
    def rss_kib(pid):
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0

    @staticmethod
    def ls(path):
        t0 = time.monotonic()
        out = subprocess.run(['ls', '-l', path], capture_output=True,
                             check=True, env=dict(os.environ, LC_ALL='C'))
        n = out.stdout.count(b'\n') - 1  # "total" line
        return time.monotonic() - t0, n

    def sessions(self):
        time.sleep(0.3)
        return self.server.rawlog_sessions(USER, 'imap')

    def raw_client(self):
        c = rawimap.RawImap('localhost', self.proxy.port,
                            self.server.cafile)
        c.login(USER, self.server.users[USER])
        return c

    # ------------------------------------------------------ measurements

    def raw_listing(self, folder):
        """The baseline: EXAMINE and the listing's FETCH, pipelined, on a
        logged-in session; returns (seconds, messages listed)."""
        c = self.raw_client()
        t0 = time.monotonic()
        count = [0]

        def on(text, lits):
            count[0] += b' FETCH ' in text
        ex, fe = c.send('EXAMINE "%s"' % folder, META)
        c.wait(ex)
        c.wait(fe, on)
        took = time.monotonic() - t0
        c.logout()
        return took, count[0]

    def measure_listing(self, folder, n):
        """ls -l of a folder, first and second, with memory growth. The
        raw client runs once before (unmeasured), so that Dovecot's own
        cache holds the Message-ID fields for both."""
        r = {}
        self.raw_listing(folder)
        m = self.mount()
        try:
            pid = m.pid()
            rss0 = self.rss_kib(pid)
            r['first'], got = self.ls(m.p(folder))
            check(got == n, '%s: ls listed %d, server has %d' % (
                folder, got, n))
            # the second listing: the median of three (10,000 entries
            # take about 50 ms, where a few ms of noise move the ratio);
            # memory after the first two listings, as for the floor
            seconds = []
            for i in range(3):
                took, got = self.ls(m.p(folder))
                check(got == n, '%s: second ls listed %d' % (folder, got))
                seconds.append(took)
                if i == 0:
                    r['bytes_per_message'] = (
                        self.rss_kib(pid) - rss0) * 1024 / n
            r['second'] = statistics.median(seconds)
            r['second_runs'] = seconds
        finally:
            m.umount()
        r['raw'], count = self.raw_listing(folder)
        check(count == n, 'raw client listed %d of %s' % (count, n))
        return r

    def measure_floor_memory(self, n):
        """The memory the FUSE floor takes for the same listing: fusefloor
        (libfuse's low-level API, one node table entry per inode the
        kernel knows) over n empty files named as mailfs names messages
        (35 bytes), ls -l twice, as measure_listing() does."""
        src = tempfile.mkdtemp(prefix='floor-src-', dir=self.tmp)
        for i in range(n):
            open(os.path.join(src, '20240105T123456Z-%d-%08x.eml' % (
                1000 + i % 9000, (i * 2654435761) & 0xffffffff)),
                'w').close()
        try:
            with floor.mounted(src, self.tmp) as (point, pid):
                rss0 = self.rss_kib(pid)
                for _ in range(2):
                    took, got = self.ls(point)
                    check(got == n, 'fusefloor listed %d of %d' % (got, n))
                time.sleep(0.5)  # what the kernel sends after ls exits
                return (self.rss_kib(pid) - rss0) * 1024 / n
        finally:
            shutil.rmtree(src, True)

    def measure_resync(self):
        s = self.server
        r = {}
        m = self.mount('refresh=%d' % REFRESH)
        try:
            s.clear_rawlog(USER)
            t, got = self.ls(m.p('Resync'))
            first = self.sessions()
            r['full_bytes'] = sum(x.bytes_out for x in first)
            r['full_seconds'] = t
            with s.imap(USER) as c:
                c.select('Resync')
                typ, data = c.uid('SEARCH', 'ALL')
                uids = data[0].split()
                c.uid('STORE', uids[10], '+FLAGS', '(\\Flagged)')
                c.uid('STORE', uids[11], '+FLAGS', '(\\Deleted)')
                c.uid('EXPUNGE', uids[11])
                c.append('Resync', None, None, small(999999))
                c.logout()
            time.sleep(REFRESH + 1)
            s.clear_rawlog(USER)
            t, got = self.ls(m.p('Resync'))
            check(got == self.a.resync, 'resync: listed %d, want %d' % (
                got, self.a.resync))
            after = self.sessions()
            r['resync_seconds'] = t
            r['resync_bytes'] = sum(x.bytes_out for x in after)
            r['resync_commands'] = [c for x in after for c in x.commands]
            # Leave the folder as it was for the next RTT.
            with s.imap(USER) as c:
                c.select('Resync')
                typ, data = c.uid('SEARCH', 'ALL')
                last = data[0].split()[-1]
                c.uid('STORE', last, '+FLAGS', '(\\Deleted)')
                c.uid('EXPUNGE', last)
                c.append('Resync', None, None, small(11))
                c.logout()
        finally:
            m.umount()
        return r

    def round_trips(self, sessions, rtt):
        stamps = sorted(t for x in sessions for t, _ in x.timed_commands
                        if t is not None)
        gap = max(rtt / 2000.0, 0.004)
        n, last = 0, None
        for t in stamps:
            if last is None or t - last > gap:
                n += 1
            last = t
        return n

    def measure_walk(self, rtt):
        r = {}
        m = self.mount()
        try:
            self.server.clear_rawlog(USER)
            t0 = time.monotonic()
            out = subprocess.run(['find', m.p('W'), '-type', 'f'],
                                 capture_output=True, check=True)
            r['seconds'] = time.monotonic() - t0
            files = out.stdout.count(b'\n')
            check(files == 2 * len(self.walk), 'walk: %d files' % files)
            sess = self.sessions()
            r['round_trips'] = self.round_trips(sess, rtt)
            r['commands'] = sum(len(x.commands) for x in sess)
        finally:
            m.umount()
        c = self.raw_client()
        t0 = time.monotonic()
        tag, = c.send('LIST "" "*"')
        c.wait(tag)
        cmds = []
        for f in self.walk:
            cmds += ['EXAMINE "%s"' % f, META]
        tags = c.send(*cmds)
        for t in tags:
            c.wait(t)
        r['raw_seconds'] = time.monotonic() - t0
        c.logout()
        return r

    # -------------------------------------------------------------- run

    def run(self):
        a = self.a
        t_start = time.monotonic()
        log('starting Dovecot')
        self.server = MailServer(rawlog=True).start()
        results = {}
        try:
            self.populate()
            for rtt in a.rtts:
                self.proxy = Proxy(self.server.imaps_port,
                                   rtt_ms=rtt).start()
                res = {}
                try:
                    log('RTT %g ms: ls -l Huge' % rtt)
                    res['huge'] = self.measure_listing('Huge', a.huge)
                    log('  %s' % res['huge'])
                    log('RTT %g ms: ls -l Tenk' % rtt)
                    res['tenk'] = self.measure_listing('Tenk', a.tenk)
                    log('  %s' % res['tenk'])
                    log('RTT %g ms: resync' % rtt)
                    res['resync'] = self.measure_resync()
                    log('  %s' % {k: v for k, v in res['resync'].items()
                                  if k != 'resync_commands'})
                    log('RTT %g ms: walk' % rtt)
                    res['walk'] = self.measure_walk(rtt)
                    log('  %s' % res['walk'])
                finally:
                    self.proxy.stop()
                results[rtt] = res
            # Last: its 100,000 files and their dentries would weigh on
            # the measurements above.
            if floor.usable():
                log('FUSE floor: memory of ls -l over %d files' % a.huge)
                self.floor_bytes = self.measure_floor_memory(a.huge)
        finally:
            self.server.stop()
            self.server.cleanup()
            shutil.rmtree(self.tmp, True)
        self.report(results, time.monotonic() - t_start)

    def report(self, results, took):
        a = self.a
        print('## Large mailboxes (bench/bench_large.py)\n')
        print('Huge = %d messages, Tenk = %d, Resync = %d (3 changes), '
              'walk = %d folders; one run each, cold mounts.\n' % (
                  a.huge, a.tenk, a.resync, a.folders))
        print('| measurement | ' + ' | '.join(
            '%g ms RTT' % r for r in results) + ' |')
        print('| --- |' + ' ---: |' * len(results))

        def row(label, fn):
            print('| %s | %s |' % (label, ' | '.join(
                fn(results[r]) for r in results)))
        row('ls -l Huge, first: time (s)',
            lambda x: '%.2f' % x['huge']['first'])
        row('raw client, same items: time (s)',
            lambda x: '%.2f' % x['huge']['raw'])
        row('ratio first ls -l / raw',
            lambda x: '%.2fx' % (x['huge']['first'] / x['huge']['raw']))
        row('ls -l Huge, second: time (s)',
            lambda x: '%.2f' % x['huge']['second'])
        row('ls -l Tenk, first / second (s)', lambda x: '%.2f / %.2f' % (
            x['tenk']['first'], x['tenk']['second']))
        row('second ls -l: Huge / Tenk (linear: %.0fx)' % (a.huge / a.tenk),
            lambda x: '%.1fx' % (x['huge']['second'] /
                                 max(x['tenk']['second'], 1e-6)))
        row('daemon memory per listed message (bytes)',
            lambda x: '%.0f' % x['huge']['bytes_per_message'])
        if self.floor_bytes is not None:
            row('FUSE floor: fusefloor (libfuse low-level API, a node per '
                'inode the kernel knows, no data of its own), same ls -l '
                'twice (bytes per entry)',
                lambda x: '%.0f' % self.floor_bytes)
        row('Resync: first listing, bytes from server',
            lambda x: '{:,}'.format(x['resync']['full_bytes']))
        row('Resync: after 3 changes, bytes from server',
            lambda x: '{:,}'.format(x['resync']['resync_bytes']))
        row('Resync: after 3 changes, time (s)',
            lambda x: '%.3f' % x['resync']['resync_seconds'])
        row('walk (find): time (s)', lambda x: '%.2f' % x['walk']['seconds'])
        row('walk: round trips', lambda x: str(x['walk']['round_trips']))
        row('raw client, every folder in one pipeline: time (s)',
            lambda x: '%.2f' % x['walk']['raw_seconds'])
        print('\nWhole bench: %.0f s.' % took)
        out = os.path.join(ROOT, 'build', 'bench-large.json')
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, 'w') as f:
            json.dump({str(k): v for k, v in results.items()}, f, indent=1)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--rtt', default='0,40')
    p.add_argument('--huge', type=int, default=100000)
    p.add_argument('--tenk', type=int, default=10000)
    p.add_argument('--resync', type=int, default=20000)
    p.add_argument('--folders', type=int, default=300)
    a = p.parse_args(argv)
    a.rtts = [float(x) if '.' in x else int(x) for x in a.rtt.split(',')]
    LargeBench(a).run()


if __name__ == '__main__':
    main(sys.argv[1:])
