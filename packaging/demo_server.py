"""Runs the throwaway mail server of `make demo`: a private Dovecot with a
generated sample mailbox, kept alive until this process gets SIGTERM.
Writes what a client needs to know (ports, CA, password file) into the
state directory given as the first argument."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from tests.harness import corpus  # noqa: E402
from tests.harness.mailserver import MailServer  # noqa: E402


def main():
    state = os.path.abspath(sys.argv[1])
    os.makedirs(state, mode=0o700, exist_ok=True)
    server = MailServer(separator='/').start()
    counts = corpus.populate_demo(server, 'alice')
    pwfile = os.path.join(state, 'password')
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(server.users['alice'] + '\n')
    info = {'pid': os.getpid(), 'imaps_port': server.imaps_port,
            'imap_port': server.imap_port, 'pop3s_port': server.pop3s_port,
            'cafile': server.cafile, 'password_file': pwfile,
            'user': 'alice', 'folders': counts}
    with open(os.path.join(state, 'server.json.tmp'), 'w') as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
    os.rename(os.path.join(state, 'server.json.tmp'),
              os.path.join(state, 'server.json'))

    def stop(signum, frame):
        server.stop()
        server.cleanup()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


if __name__ == '__main__':
    main()
