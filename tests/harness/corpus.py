"""Deterministic test messages and standard mailbox layouts.

Every generator is seeded (random.Random), so the same call always returns
the same bytes: tests can regenerate a message to compare with what mailfs
shows instead of storing fixtures.  Messages use CRLF line endings unless a
function says otherwise.

Which text messages mention "invoice" is predictable: has_invoice(i).  No
other generated text contains that word (any case), so a grep over a mount
finds exactly the expected files.
"""

import base64
import datetime
import random
import re

__all__ = ['has_invoice', 'message_date', 'text_message',
           'eightbit_message', 'attachment_payload', 'attachment_message',
           'binary_message', 'big_message', 'empty_body_message',
           'dot_lines_message', 'bare_lf_message', 'dovecot_view',
           'populate_standard', 'populate_demo', 'demo_dates',
           'EIGHTBIT_SUBJECT',
           'BIG_SIZE']

CRLF = b'\r\n'
BIG_SIZE = 20 * 1024 * 1024
EIGHTBIT_SUBJECT = 'Grüße aus Köln – 日本語のメモ'

_FIRST = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace',
          'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia', 'Peggy',
          'Rupert', 'Sybil', 'Trent', 'Victor', 'Walter']
_LAST = ['Smith', 'Jones', 'Martin', 'Bernard', 'Dubois', 'Rossi',
         'Novak', 'Kowalski', 'Tanaka', 'Garcia', 'Murphy', 'Weber']
_DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.test']
# Body vocabulary; must never contain "invoice" (see has_invoice).
_WORDS = ('the meeting agenda project report quarterly budget schedule '
          'review draft notes summary update release plan team lunch '
          'office travel booking flight hotel conference slides demo '
          'feedback question answer follow up reminder deadline friday '
          'monday contract proposal customer support ticket server backup '
          'network printer coffee kitchen parking weekend holiday status '
          'milestone roadmap design document spreadsheet numbers figures '
          'please thanks regards cheers hello again soon tomorrow today '
          'morning afternoon evening week month year call phone video').split()
_SUBJECTS = ['Weekly status', 'Lunch on Friday?', 'Project roadmap',
             'Re: slides for the demo', 'Travel booking', 'Quarterly report',
             'Server backup failed', 'Fwd: conference program',
             'Meeting notes', 'Question about the contract',
             'Holiday schedule', 'Printer on floor 3']
_BASE_DATE = datetime.datetime(2024, 1, 1, 8, 0, 0,
                               tzinfo=datetime.timezone.utc)


def has_invoice(i):
    """True if text_message(i) mentions "invoice" (every 5th message)."""
    return i % 5 == 0


def _rfc2822_date(when):
    """Format an aware datetime as an RFC 5322 Date header value."""
    days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
    months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep',
              'Oct', 'Nov', 'Dec']
    off = int(when.utcoffset().total_seconds() // 60)
    sign = '-' if off < 0 else '+'
    off = abs(off)
    return '%s, %02d %s %04d %02d:%02d:%02d %s%02d%02d' % (
        days[when.weekday()], when.day, months[when.month - 1], when.year,
        when.hour, when.minute, when.second, sign, off // 60, off % 60)


def message_date(i):
    """The Date used for message number i: 2024-01-01 08:00 UTC + i*7h."""
    return _BASE_DATE + datetime.timedelta(hours=7 * i)


def _person(rnd):
    """A random (display name, address) pair."""
    first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
    return ('%s %s' % (first, last),
            '%s.%s@%s' % (first.lower(), last.lower(), rnd.choice(_DOMAINS)))


def _headers(rnd, i, subject, date, extra=()):
    """Common RFC 5322 headers as a list of str lines (no line ends)."""
    name, addr = _person(rnd)
    if date is None:
        date = message_date(i)
    elif isinstance(date, (int, float)):
        date = datetime.datetime.fromtimestamp(date, datetime.timezone.utc)
    lines = ['Return-Path: <%s>' % addr,
             'From: "%s" <%s>' % (name, addr),
             'To: Alice Example <alice@example.com>',
             'Subject: %s' % subject,
             'Date: %s' % _rfc2822_date(date),
             'Message-ID: <%d.%08x@mailfs.test>' % (i, rnd.getrandbits(32)),
             'MIME-Version: 1.0']
    lines.extend(extra)
    return lines


def _text_lines(rnd, nbytes):
    """Lines of random words (each < 78 chars) totalling >= nbytes."""
    out = []
    total = 0
    while total < nbytes:
        words = []
        width = 0
        target = rnd.randint(30, 72)
        while width < target:
            w = rnd.choice(_WORDS)
            words.append(w)
            width += len(w) + 1
        line = ' '.join(words)
        out.append(line)
        total += len(line) + 2
    return out


def text_message(i, size=None, subject=None, date=None):
    """A plain-text message number i (deterministic for given arguments).

    size: exact total length in bytes (default: a varied 400..3000 bytes);
      must leave room for the headers (~330 bytes).
    subject: overrides the generated subject.
    date: datetime or epoch seconds for the Date header (default
      message_date(i)).
    Messages with has_invoice(i) have "Invoice" in the subject and the word
    "invoice" in the body.
    """
    rnd = random.Random('text-%d' % i)
    if subject is None:
        subject = rnd.choice(_SUBJECTS)
        if has_invoice(i):
            subject = 'Invoice #%05d for %s' % (1000 + i, subject.lower())
        subject += ' [%d]' % i
    head = _headers(rnd, i, subject, date, [
        'Content-Type: text/plain; charset=us-ascii',
        'Content-Transfer-Encoding: 7bit'])
    head_bytes = CRLF.join(h.encode() for h in head) + CRLF + CRLF
    if size is None:
        size = len(head_bytes) + rnd.randint(100, 2700)
    body_room = size - len(head_bytes)
    if body_room < 2:
        raise ValueError('size %d too small for headers (%d)' %
                         (size, len(head_bytes)))
    lines = []
    if has_invoice(i):
        lines.append('Please find the invoice %05d attached.' % (1000 + i))
    lines += _text_lines(rnd, body_room)
    body = CRLF.join(l.encode() for l in lines) + CRLF
    # Trim to exactly body_room bytes, keeping a final CRLF.
    body = body[:body_room - 2].rstrip(b'\r') + CRLF
    while len(body) < body_room:
        body = body[:-2] + b'z' + CRLF
    return head_bytes + body


def eightbit_message(i=0, date=None):
    """A UTF-8 text message sent as 8bit, with an RFC 2047 encoded subject
    (EIGHTBIT_SUBJECT) and non-ASCII sender name.  date: as for
    text_message()."""
    rnd = random.Random('8bit-%d' % i)
    subj = '=?UTF-8?B?%s?=' % base64.b64encode(
        EIGHTBIT_SUBJECT.encode()).decode()
    head = _headers(rnd, i, subj, date, [
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit'])
    head[1] = 'From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>'
    body = ['Grüße aus Köln!', '',
            'Ça va très bien, merci. Voilà le résumé:',
            '日本語のテキストもあります。メモを確認してください。',
            'Ελληνικά, русский текст, emoji: \U0001F4EC',
            '', '-- ', 'Jürgen']
    return (CRLF.join(h.encode() for h in head) + CRLF + CRLF +
            CRLF.join(l.encode('utf-8') for l in body) + CRLF)


def attachment_payload(nbytes, seed=0):
    """The deterministic binary content used by attachment_message()."""
    return random.Random('payload-%d-%d' % (nbytes, seed)).randbytes(nbytes)


def _b64_lines(data):
    """Base64 in 76-character CRLF-terminated lines."""
    return base64.encodebytes(data).replace(b'\n', CRLF)


def attachment_message(nbytes=50000, i=0, filename=None, date=None):
    """multipart/mixed: a short text part plus a base64 attachment whose
    decoded content is attachment_payload(nbytes, i).  date: as for
    text_message()."""
    rnd = random.Random('att-%d-%d' % (nbytes, i))
    boundary = '=_mailfs_%08x' % rnd.getrandbits(32)
    filename = filename or 'data-%d.bin' % i
    head = _headers(rnd, i, 'Files for you [%d]' % i, date, [
        'Content-Type: multipart/mixed; boundary="%s"' % boundary])
    parts = [CRLF.join(h.encode() for h in head), b'',
             b'This is a multi-part message in MIME format.', b'',
             b'--' + boundary.encode(),
             b'Content-Type: text/plain; charset=us-ascii',
             b'Content-Transfer-Encoding: 7bit', b'',
             b'Hello, the file is attached.', b'',
             b'--' + boundary.encode(),
             b'Content-Type: application/octet-stream; name="%s"' %
             filename.encode(),
             b'Content-Transfer-Encoding: base64',
             b'Content-Disposition: attachment; filename="%s"' %
             filename.encode(), b'']
    return (CRLF.join(parts) + CRLF + _b64_lines(attachment_payload(nbytes, i))
            + CRLF + b'--' + boundary.encode() + b'--' + CRLF)


def binary_message(i=0):
    """Content-Transfer-Encoding: binary with every byte value 0x00-0xff
    (NUL included).  IMAP APPEND cannot carry it: use deliver_maildir.
    (Dovecot shows NUL as 0x80 in a plain FETCH BODY[].)"""
    rnd = random.Random('bin-%d' % i)
    head = _headers(rnd, i, 'Binary body [%d]' % i, None, [
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: binary'])
    body = bytes(range(256)) * 4 + CRLF
    return CRLF.join(h.encode() for h in head) + CRLF + CRLF + body


def big_message(nbytes=BIG_SIZE, i=0):
    """A message of about `nbytes` bytes (within 200), mostly a base64
    attachment; its payload is attachment_payload(n, i) for the n used."""
    # base64 with CRLF lines: 76 chars + 2 per 57 input bytes.
    overhead = 900
    payload = max(0, (nbytes - overhead) * 57 // 78)
    return attachment_message(payload, i, filename='big-%d.bin' % i)


def empty_body_message(i=0):
    """Headers, the blank separator line, and no body at all."""
    rnd = random.Random('empty-%d' % i)
    head = _headers(rnd, i, 'Empty body [%d]' % i, None,
                    ['Content-Type: text/plain; charset=us-ascii'])
    return CRLF.join(h.encode() for h in head) + CRLF + CRLF


def dot_lines_message(i=0):
    """Body lines that start with '.': '.', '..', '...', '.hidden' — POP3
    dot-stuffing must round-trip them (a lone '.' ends a RETR)."""
    rnd = random.Random('dots-%d' % i)
    head = _headers(rnd, i, 'Dots [%d]' % i, None,
                    ['Content-Type: text/plain; charset=us-ascii'])
    body = [b'first line', b'.', b'..', b'...', b'.hidden file',
            b'. leading dot and space', b'middle', b'.', b'last line', b'.']
    return (CRLF.join(h.encode() for h in head) + CRLF + CRLF +
            CRLF.join(body) + CRLF)


def dovecot_view(raw):
    """What Dovecot serves as BODY[] for a file delivered to the maildir:
    bare LF becomes CRLF and NUL becomes 0x80."""
    return re.sub(rb'(?<!\r)\n', b'\r\n', raw.replace(b'\0', b'\x80'))


def bare_lf_message(i=0):
    """A message with bare LF line endings (not CRLF): for deliver_maildir.
    Dovecot serves it with CRLF over IMAP."""
    return text_message(i, subject='Bare LF [%d]' % i).replace(CRLF, b'\n')


# ------------------------------------------------------------- layouts

def _kind_mix(i):
    """What INBOX message i of populate_standard is."""
    return {7: 'eightbit', 11: 'attachment', 17: 'dots',
            23: 'empty', 29: 'attachment'}.get(i, 'text')


def _make(kind, i):
    """Generate message i of the given kind (see _kind_mix)."""
    if kind == 'text':
        return text_message(i)
    if kind == 'eightbit':
        return eightbit_message(i)
    if kind == 'attachment':
        return attachment_message(20000 + 1000 * i, i)
    if kind == 'dots':
        return dot_lines_message(i)
    if kind == 'empty':
        return empty_body_message(i)
    raise ValueError(kind)


def populate_standard(server, user='alice', many=False, big=True):
    """Create the standard test layout for `user` and describe it.

    Folders (names use server.separator; key in 'names' in brackets):
      INBOX [inbox]        30 messages: text (some invoices), 8bit,
                           attachments, dot lines, empty body; message i
                           has \\Seen if i % 3 == 0, \\Flagged if i % 10 == 1
      Archive [archive]    2 text messages; parent of:
      Archive/2024 [archive_2024]  10 text messages dated in 2024
      Archive/2025 [archive_2025]  5 text messages dated in 2025
      Reçus [recus]        3 messages (non-ASCII folder name)
      日本語 [nihongo]      empty parent of:
      日本語/メモ [memo]    2 messages (one 8bit)
      Big [big]            one BIG_SIZE (20 MB) message (big=False: skip)
      Empty [empty]        no messages
      Binary [binary]      8bit, base64 attachment and empty body via
                           APPEND; binary (NUL bytes) and bare-LF via maildir
      Many [many]          2,000 small text messages (only if many=True)

    Returns a dict:
      'user', 'separator', 'names': {key: folder name},
      'folders': {folder name: {uid: raw bytes as generated}},
      'kinds': {folder name: {uid: kind}},
      'flags': {folder name: {uid: set of flags set at creation}},
      'invoice': {folder name: set of uids mentioning "invoice"}.
    For maildir-delivered messages the raw bytes are what was written;
    Dovecot serves them as dovecot_view(raw) (bare LF -> CRLF, NUL -> 0x80).
    """
    sep = server.separator
    names = {
        'inbox': 'INBOX', 'archive': 'Archive',
        'archive_2024': 'Archive' + sep + '2024',
        'archive_2025': 'Archive' + sep + '2025',
        'recus': 'Reçus', 'nihongo': '日本語', 'memo': '日本語' + sep + 'メモ',
        'big': 'Big', 'empty': 'Empty', 'binary': 'Binary',
    }
    if many:
        names['many'] = 'Many'
    if not big:
        del names['big']
    desc = {'user': user, 'separator': sep, 'names': names, 'folders': {},
            'kinds': {}, 'flags': {}, 'invoice': {}}

    def record(folder, uid, raw, kind, flags=(), index=None):
        """Enter one stored message in the description."""
        desc['folders'].setdefault(folder, {})[uid] = raw
        desc['kinds'].setdefault(folder, {})[uid] = kind
        desc['flags'].setdefault(folder, {})[uid] = set(flags)
        inv = desc['invoice'].setdefault(folder, set())
        if kind == 'text' and index is not None and has_invoice(index):
            inv.add(uid)

    for key in ('archive', 'archive_2024', 'archive_2025', 'recus',
                'nihongo', 'memo', 'empty', 'binary'):
        server.create_folder(user, names[key])
        for part in ('folders', 'kinds', 'flags'):
            desc[part].setdefault(names[key], {})
        desc['invoice'].setdefault(names[key], set())

    # INBOX: one connection, per-message flags and dates.
    items = []
    for i in range(30):
        flags = []
        if i % 3 == 0:
            flags.append('\\Seen')
        if i % 10 == 1:
            flags.append('\\Flagged')
        items.append((_make(_kind_mix(i), i), ' '.join(flags),
                      message_date(i)))
    uids = server.append_many(user, 'INBOX', items)
    for i, (uid, (raw, flags, _)) in enumerate(zip(uids, items)):
        record('INBOX', uid, raw, _kind_mix(i), flags.split(), i)

    def bulk(folder, indexes, **kw):
        """Append text_message(i) for each index in one MULTIAPPEND."""
        raws = [text_message(i, **kw) for i in indexes]
        for uid, raw, i in zip(server.append_many(user, folder, raws), raws,
                               indexes):
            record(folder, uid, raw, 'text', (), i)

    bulk(names['archive'], [100, 101])
    for folder, year, first, count in (('archive_2024', 2024, 200, 10),
                                       ('archive_2025', 2025, 300, 5)):
        items = []
        for n in range(count):
            d = datetime.datetime(year, 1 + n, 15, 9, 30,
                                  tzinfo=datetime.timezone.utc)
            items.append((text_message(first + n, date=d), '', d))
        uids = server.append_many(user, names[folder], items)
        for n, (uid, (raw, _, _)) in enumerate(zip(uids, items)):
            record(names[folder], uid, raw, 'text', (), first + n)
    bulk(names['recus'], [400, 401, 402])
    raw = eightbit_message(500)
    uid = server.append(user, names['memo'], raw)
    record(names['memo'], uid, raw, 'eightbit')
    bulk(names['memo'], [501])
    if big:
        raw = big_message(BIG_SIZE, 0)
        uid = server.append(user, names['big'], raw)
        record(names['big'], uid, raw, 'big')
    b = names['binary']
    for kind, raw in (('eightbit', eightbit_message(600)),
                      ('attachment', attachment_message(65536, 601)),
                      ('empty', empty_body_message(602))):
        record(b, server.append(user, b, raw), raw, kind)
    for kind, raw in (('binary', binary_message(603)),
                      ('bare_lf', bare_lf_message(604))):
        record(b, server.deliver_maildir(user, b, raw), raw, kind)
    if many:
        bulk('Many', list(range(1000, 3000)), size=600)
    return desc


# How far back each demo folder's mail goes, in days: recent mail in
# INBOX, years of it in the archives, as in a mailbox in use.
_DEMO_SPAN_DAYS = {'INBOX': 90, 'Work': 400, 'Projects': 1100,
                   'mailfs': 500, 'Personal': 1400, 'Receipts': 900,
                   'Newsletters': 560, 'Reçus': 700, 'メモ': 1000}
# Senders' time zones, in minutes east of UTC.
_DEMO_ZONES = (0, 60, 120, -300, -480, 330, 540)


def demo_dates(folder, n, now=None):
    """The dates of a demo folder's n messages, oldest first: spread over
    the folder's span (_DEMO_SPAN_DAYS of its last level) before `now`
    (default: the current time), the newest at least 10 minutes old,
    whole seconds, each in a sender's time zone.  The spacing is the same
    on every call for a folder; only `now` moves them."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    now = now.replace(microsecond=0)
    leaf = re.split(r'[./]', folder)[-1]
    span = _DEMO_SPAN_DAYS.get(leaf, 365) * 86400
    rnd = random.Random('demo-dates-%s' % folder)
    ages = sorted((rnd.randint(600, span) for _ in range(n)), reverse=True)
    out = []
    for age in ages:
        zone = datetime.timezone(datetime.timedelta(
            minutes=rnd.choice(_DEMO_ZONES)))
        out.append((now - datetime.timedelta(seconds=age)).astimezone(zone))
    return out


def populate_demo(server, user='alice', now=None):
    """A realistic-looking mailbox for `make demo`: a few hundred messages
    in nested and non-ASCII folders, with attachments.  Each message's
    Date header and INTERNALDATE are the same instant, in the past
    (demo_dates(): spread over up to four years before `now`), and each
    folder's messages were appended oldest first, as mail arrives.
    Returns {folder: number of messages}."""
    sep = server.separator
    plan = {
        'INBOX': 120,
        'Work': 40,
        'Work' + sep + 'Projects': 60,
        'Work' + sep + 'Projects' + sep + 'mailfs': 25,
        'Personal': 30,
        'Receipts': 25,
        'Newsletters': 80,
        'Reçus': 12,
        '日本語' + sep + 'メモ': 8,
        'Empty': 0,
    }
    counts = {}
    base = 5000
    for folder, n in plan.items():
        server.create_folder(user, folder)
        items = []
        for k, date in enumerate(demo_dates(folder, n, now)):
            i = base + k
            if folder == 'Receipts':
                i = base + 5 * k          # has_invoice: every one
            if k % 9 == 4:
                raw = attachment_message(3000 + 700 * k, i,
                                         filename='report-%d.pdf' % i,
                                         date=date)
            elif k % 13 == 6:
                raw = eightbit_message(i, date=date)
            else:
                raw = text_message(i, date=date)
            items.append((raw, '', date))
        if items:
            server.append_many(user, folder, items)
        counts[folder] = n
        base += 1000
    return counts
