"""The POP3 baseline of the benchmark: a maildrop downloaded with Python's
poplib, the way a simple POP3 client does it.

It connects over implicit TLS, logs in with USER/PASS, asks for UIDL, then
RETRs the messages one after another, each answer read completely before
the next RETR is sent (poplib cannot pipeline), writes each message to a
file named from its UIDL and QUITs.  No DELE: the maildrop stays as it is
for the next measurement.
"""

import os
import poplib
import re

_UNSAFE = re.compile(r'[^A-Za-z0-9_-]')


def file_name(uidl):
    """A file name for a UIDL: letters, digits, '-' and '_' kept, every
    other character as %XX (so '%' itself becomes %25)."""
    return _UNSAFE.sub(lambda m: '%%%02X' % ord(m.group()), uidl) + '.eml'


def download(host, port, context, user, password, outdir, timeout=300):
    """Downloads every message of the maildrop into outdir; returns
    ({uidl: path}, number of RETR commands sent).  The message bytes are
    what RETR carried, dot-stuffing undone, CRLF after every line."""
    p = poplib.POP3_SSL(host, port, context=context, timeout=timeout)
    try:
        p.user(user)
        p.pass_(password)
        listing = p.uidl()[1]
        paths = {}
        retrs = 0
        for line in listing:
            num, uidl = line.decode('ascii').split()
            lines = p.retr(int(num))[1]
            retrs += 1
            path = os.path.join(outdir, file_name(uidl))
            with open(path, 'wb') as f:
                f.write(b''.join(ln + b'\r\n' for ln in lines))
            paths[uidl] = path
        p.quit()
        p = None
        return paths, retrs
    finally:
        if p is not None:
            p.close()
