#!/usr/bin/env python3
"""mailfs benchmark: grep -rl over an account of many small folders
(issue 22, read-ahead across folders).

Run with `make bench`, or
    MAILFS=build/mailfs python3 bench/bench_folders.py [--folders 300]
    [--per-folder 5] [--rtt 0,40] [--runs 3] [-o MOUNT_OPTION ...]

One Dovecot (rawlog on) gets --folders folders of --per-folder small
text messages each (corpus.text_message: 400 to 3,000 bytes, every
fifth mentioning "invoice"). For each RTT, mailfs is mounted through the
latency proxy (tests/harness/proxy.py) with an empty disk cache, and
`grep -rl invoice` runs over the whole mount. Reported, medians over
the runs:
  - the grep's time, and that time in round trips of the RTT;
  - the IMAP commands the mount sent during it (Dovecot's rawlog), body
    FETCH commands among them;
  - waits: groups of commands the server received more than RTT/2
    apart (a new group means the client waited for an answer);
  - messages whose body was asked for more than once (must be 0).
The hit set is checked against the corpus, and the bytes of every file
against imaplib's on the last run; a mismatch fails the run. Tables go
to stdout (Markdown), progress to stderr.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.harness import corpus  # noqa: E402
from tests.harness.mailserver import MailServer  # noqa: E402
from tests.harness.proxy import Proxy  # noqa: E402
from tests.integration.mount import Mount  # noqa: E402

USER = 'alice'
WORD = 'invoice'
TOOL_ENV = dict(os.environ, LC_ALL='C')


class BenchError(RuntimeError):
    """mailfs gave a wrong answer, or a tool failed."""


def log(msg):
    """Progress goes to stderr."""
    print(msg, file=sys.stderr, flush=True)


def folder_name(i):
    """The server name of folder i: a few levels deep, as accounts are."""
    return 'Box%02d.Sub%03d' % (i // 20, i)


def populate(server, nfolders, per):
    """Fills the account; returns {mount path: (bytes, has word)}."""
    want = {}
    k = 0
    for i in range(nfolders):
        f = folder_name(i)
        msgs = []
        for _ in range(per):
            msgs.append(corpus.text_message(k))
            k += 1
        server.append_many(USER, f, msgs)
        names = server.message_names(USER, f)
        bodies = server.fetch_all(USER, f)
        for uid, name in names.items():
            path = f.replace('.', '/') + '/' + name
            want[path] = bodies[uid]
    return want


def body_uids(command):
    """(set, ...) UIDs a UID FETCH of bodies asks for, else None."""
    m = re.match(r'UID FETCH ([0-9:,]+) \(BODY\.PEEK\[\]', command, re.I)
    if not m:
        return None
    out = []
    for part in m.group(1).split(','):
        if ':' in part:
            lo, hi = part.split(':')
            out += range(int(lo), int(hi) + 1)
        else:
            out.append(int(part))
    return out


def analyse(sessions, rtt):
    """Commands, body FETCHes, waits and bodies asked twice, from the
    rawlog of the grep."""
    cmds = []
    twice = 0
    seen = set()
    fetches = 0
    for s in sessions:
        selected = None
        for t, c in s.timed_commands:
            cmds.append((t, c))
            if c.upper().startswith(('EXAMINE ', 'SELECT ')):
                selected = c.split(' ', 1)[1].split(' (')[0]
            uids = body_uids(c)
            if uids is None:
                continue
            fetches += 1
            for u in uids:
                if (selected, u) in seen:
                    twice += 1
                seen.add((selected, u))
    gap = max(rtt, 2) / 2000.0
    waits, last = 0, None
    for t in sorted(t for t, _ in cmds if t is not None):
        if last is None or t - last > gap:
            waits += 1
        last = t
    return len(cmds), fetches, waits, twice


def one_run(server, want, rtt, options, check_bytes):
    """One fresh mount, one grep; returns the figures."""
    proxy = Proxy(server.imaps_port, rtt_ms=rtt).start()
    m = Mount('imaps://%s@localhost:%d' % (USER, proxy.port),
              server.users[USER], cafile=server.cafile, options=options)
    try:
        m.start()
        server.clear_rawlog(USER)
        t0 = time.monotonic()
        out = subprocess.run(['grep', '-rl', WORD, m.path],
                             capture_output=True, env=TOOL_ENV)
        took = time.monotonic() - t0
        if out.returncode not in (0, 1):
            raise BenchError('grep: %s' % out.stderr.decode())
        hits = sorted(os.path.relpath(p, m.path)
                      for p in out.stdout.decode().split('\n') if p)
        expect = sorted(p for p, b in want.items()
                        if WORD.encode() in b)
        if hits != expect:
            raise BenchError('grep found %d files, the corpus has %d'
                             % (len(hits), len(expect)))
        time.sleep(0.3)  # the last rawlog lines
        sessions = server.rawlog_sessions(USER, 'imap')
        ncmd, fetches, waits, twice = analyse(sessions, rtt)
        if check_bytes:
            for p, b in want.items():
                with open(os.path.join(m.path, p), 'rb') as f:
                    if f.read() != b:
                        raise BenchError('%s differs from imaplib' % p)
        return {'seconds': took, 'commands': ncmd, 'body_fetches': fetches,
                'waits': waits, 'fetched_twice': twice}
    finally:
        m.umount()
        proxy.stop()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--folders', type=int, default=300)
    p.add_argument('--per-folder', type=int, default=5)
    p.add_argument('--rtt', default='0,40')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('-o', dest='options', action='append', default=[])
    a = p.parse_args(argv)
    rtts = [int(x) for x in a.rtt.split(',') if x.strip()]
    server = MailServer(rawlog=True).start()
    try:
        log('populating %d folders of %d messages' % (a.folders,
                                                       a.per_folder))
        want = populate(server, a.folders, a.per_folder)
        print('## grep -rl over %d folders of %d messages (%d files, '
              '%d bytes), empty disk cache, median of %d\n'
              % (a.folders, a.per_folder, len(want),
                 sum(len(b) for b in want.values()), a.runs))
        print('| RTT | time | in RTTs | commands | body FETCHes | waits '
              '| fetched twice |')
        print('|---|---|---|---|---|---|---|')
        for rtt in rtts:
            runs = []
            for i in range(a.runs):
                r = one_run(server, want, rtt, a.options, i == a.runs - 1)
                log('RTT %d ms run %d: %s' % (rtt, i + 1, r))
                runs.append(r)

            def med(k):
                return statistics.median(r[k] for r in runs)
            # At 0 ms, commands a few ms apart tell no wait.
            print('| %d ms | %.2f s | %s | %d | %d | %s | %d |' % (
                rtt, med('seconds'),
                '%.0f' % (med('seconds') * 1000 / rtt) if rtt else '-',
                med('commands'), med('body_fetches'),
                '%d' % med('waits') if rtt else '-',
                max(r['fetched_twice'] for r in runs)))
    finally:
        server.stop()
        server.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
