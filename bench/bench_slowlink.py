#!/usr/bin/env python3
"""mailfs on a slow link (issue 22): the first `grep -rl` over a folder
of 2,000 messages at 10 Mbit/s and 40 ms RTT, against a raw pipelined
client that fetches the same folder uncompressed.

Run with `make bench`, or
    MAILFS=build/mailfs python3 bench/bench_slowlink.py [--messages N]
    [--rate-mbit 10] [--rtt 40] [--runs 3]

One Dovecot with its imap_zlib plugin (COMPRESS=DEFLATE offered) holds
the Grep folder of bench.py (2,000 text messages, 600..13,000 bytes,
every fifth mentioning "invoice"). Between the clients and Dovecot sits
the latency proxy (tests/harness/proxy.py) with a bandwidth cap: each
direction one shared line of --rate-mbit, delayed by RTT/2. Measured,
each on a fresh mount with an empty disk cache:
  - the raw client (bench/rawimap.py), logged in before the clock starts:
    EXAMINE + UID FETCH 1:* BODY.PEEK[] pipelined, uncompressed, and the
    grep of the bodies;
  - mailfs (COMPRESS on, the default): grep -rl over the folder;
  - mailfs with -o compress=no.
Every run's hits must equal the corpus's. Bytes are counted by the proxy
(TLS included). A Markdown table goes to stdout, JSON to
build/bench-slowlink.json.
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

import rawimap  # noqa: E402  (bench/ is sys.path[0])
from bench import grep_sizes  # noqa: E402

USER = 'alice'
FOLDER = 'Grep'
WORD = 'invoice'
ZLIB_CONF = 'protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}'


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr,
          flush=True)


def check(cond, msg):
    if not cond:
        raise RuntimeError(msg)


class SlowLink:
    def __init__(self, a):
        self.a = a
        self.server = MailServer(pop3=False, extra_conf=ZLIB_CONF).start()
        sizes = grep_sizes(a.messages)
        raws = [corpus.text_message(k, size=s) for k, s in enumerate(sizes)]
        self.bytes = sum(len(r) for r in raws)
        uids = self.server.append_many(USER, FOLDER, raws)
        check(len(uids) == a.messages, 'APPEND lost messages')
        self.hits = {k for k in range(a.messages) if corpus.has_invoice(k)}
        self.names = self.server.message_names(USER, FOLDER)
        self.number = dict(zip(uids, range(a.messages)))
        self.by_name = {n: self.number[u] for u, n in self.names.items()}
        log('%s: %d messages, %.1f MB' % (FOLDER, a.messages,
                                          self.bytes / 1e6))

    def proxy(self):
        return Proxy(self.server.imaps_port, rtt_ms=self.a.rtt,
                     rate_bps=self.a.rate_mbit * 1e6).start()

    def raw(self):
        p = self.proxy()
        try:
            bodies, uids, took = rawimap.grep_folder_logged_in(
                'localhost', p.port, self.server.cafile, USER,
                self.server.users[USER], FOLDER, WORD.encode(),
                time.monotonic)
            check({self.number[u] for u in uids} == self.hits,
                  'raw client: wrong hits')
            check(len(bodies) == self.a.messages, 'raw client: missing')
            return {'seconds': took, 'bytes_down': p.bytes_down}
        finally:
            p.stop()

    def mailfs(self, *options):
        p = self.proxy()
        cache = tempfile.mkdtemp(prefix='mailfs-slow-')
        m = Mount('imaps://%s@localhost:%d' % (USER, p.port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=options, env={'XDG_CACHE_HOME': cache})
        try:
            m.start()
            os.listdir(m.path)  # logged in and the folder list made
            time.sleep(1)  # the spare session up, as a mount in use has
            d = m.p(FOLDER)
            b0 = p.bytes_down
            t0 = time.monotonic()
            out = subprocess.run(['grep', '-rl', WORD, d],
                                 capture_output=True, timeout=900)
            took = time.monotonic() - t0
            hits = {self.by_name[os.path.basename(l)]
                    for l in out.stdout.decode().split('\n') if l}
            check(hits == self.hits, 'mailfs %s: %d hits, expected %d' % (
                ' '.join(options), len(hits), len(self.hits)))
            return {'seconds': took, 'bytes_down': p.bytes_down - b0}
        finally:
            m.umount()
            p.stop()
            shutil.rmtree(cache, True)

    def run(self):
        rows = {'raw (uncompressed, logged in)': [], 'mailfs': [],
                'mailfs -o compress=no': []}
        for i in range(self.a.runs):
            log('run %d/%d' % (i + 1, self.a.runs))
            rows['raw (uncompressed, logged in)'].append(self.raw())
            rows['mailfs'].append(self.mailfs())
            rows['mailfs -o compress=no'].append(self.mailfs('compress=no'))
        return {k: {'seconds': statistics.median(r['seconds'] for r in v),
                    'bytes_down': statistics.median(r['bytes_down']
                                                    for r in v),
                    'runs': v}
                for k, v in rows.items()}

    def cleanup(self):
        self.server.stop()
        self.server.cleanup()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--messages', type=int, default=2000)
    ap.add_argument('--rate-mbit', type=float, default=10.0)
    ap.add_argument('--rtt', type=int, default=40)
    ap.add_argument('--runs', type=int, default=3)
    a = ap.parse_args(argv)
    b = SlowLink(a)
    try:
        res = b.run()
    finally:
        b.cleanup()
    base = res['raw (uncompressed, logged in)']['seconds']
    print('\n### Slow link: first grep -rl over %d messages (%.1f MB) at '
          '%g Mbit/s, %d ms RTT\n' % (a.messages, b.bytes / 1e6,
                                      a.rate_mbit, a.rtt))
    print('| | seconds (median of %d) | vs raw | MB from the server |' %
          a.runs)
    print('|---|---|---|---|')
    for k, v in res.items():
        print('| %s | %.2f | %.2f× | %.2f |' % (
            k, v['seconds'], v['seconds'] / base, v['bytes_down'] / 1e6))
    os.makedirs(os.path.join(ROOT, 'build'), exist_ok=True)
    with open(os.path.join(ROOT, 'build', 'bench-slowlink.json'), 'w') as f:
        json.dump({'args': vars(a), 'results': res}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
