"""What one FUSE request may stand for and how long it may take: an inode
number the kernel holds names one message only, whatever folders another
client deletes or renames; a compound request (mkdir's CREATE and then
its stat) ends within -o timeout as a whole; with -o allow_other the
kernel refuses other users even what it has cached. Real Dovecot, real
FUSE; the slow link is the harness's proxy."""

import errno
import os
import re
import subprocess
import time
import unittest

from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount

USER = 'alice'

# The hash mailfs tries first for the upper half of a message's inode
# number (src/store/tree_ino.c, tree_ino_hi_hash()): FNV-1a 64 of the folder's
# server name, then of that id's 8 little-endian bytes, then of the
# UIDVALIDITY's 4 little-endian bytes, folded to 32 bits; 0 becomes 1.
FNV_SEED = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
MASK64 = (1 << 64) - 1


def fnv1a(data, h=FNV_SEED):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def ino_hash_hi(folder, uidvalidity):
    """The upper half a hash of (folder, UIDVALIDITY) gives."""
    folder_id = fnv1a(folder.encode())
    h = fnv1a(folder_id.to_bytes(8, 'little'))
    h = fnv1a(uidvalidity.to_bytes(4, 'little'), h)
    hi = (h >> 32) ^ (h & 0xffffffff)
    return hi or 1


def colliding_names(uv_a, uv_b, tag):
    """Two folder names (short ASCII, no '.') whose messages' upper
    halves hash alike, the first with UIDVALIDITY uv_a, the second with
    uv_b: a birthday search, 2^17 names on one side (a few matches in
    2^32 are expected on the other within as many)."""
    side = {}
    for i in range(1 << 17):
        name = 'C%sa%x' % (tag, i)
        side.setdefault(ino_hash_hi(name, uv_a), name)
    i = 0
    while True:
        name = 'C%sb%x' % (tag, i)
        hit = side.get(ino_hash_hi(name, uv_b))
        if hit:
            return hit, name
        i += 1


def twin(tag):
    """A message: same headers, INTERNALDATE and size for every tag, the
    body differs."""
    return (b'From: Alice <alice@example.com>\r\n'
            b'To: Bob <bob@example.com>\r\n'
            b'Subject: twins\r\n'
            b'Date: Mon, 01 Jan 2024 08:00:00 +0000\r\n'
            b'Message-ID: <twins@example.com>\r\n'
            b'\r\n' + (tag * 70 + b'\r\n') * 12)


TWIN_DATE = 1704096000  # 2024-01-01 08:00:00 UTC


class NodeIdentityTest(unittest.TestCase):
    """A node id the kernel may hold for one message never resolves to
    another: two folders whose (name, UIDVALIDITY) hash to the same upper
    half, one holding message A, the other message B with A's size,
    date and UID; A's folder is deleted by another client while A is
    open on the mount."""

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.password = cls.server.users[USER]
        cls.url = 'imaps://%s@localhost:%d' % (USER, cls.server.imaps_port)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def mount(self, *options):
        m = Mount(self.url, self.password, cafile=self.server.cafile,
                  options=options)
        self.addCleanup(m.umount)
        return m.start()

    def imap(self):
        c = self.server.imap(USER)
        self.addCleanup(c.logout)
        return c

    def uidvalidity(self, c, folder):
        typ, data = c.status(folder, '(UIDVALIDITY)')
        self.assertEqual(typ, 'OK', data)
        return int(re.search(rb'UIDVALIDITY (\d+)', data[0]).group(1))

    def rename(self, c, old, new):
        typ, data = c.rename(old, new)
        self.assertEqual(typ, 'OK', data)

    def twin_folders(self, tag):
        """Folders (name_a, name_b) holding twin(b'A') and twin(b'B') as
        UID 1 each, whose upper halves hash alike. Placeholders are made
        first, for their UIDVALIDITYs; the names are searched for those
        and the placeholders renamed (Dovecot keeps UIDVALIDITY across
        RENAME: checked). Returns (name_a, name_b, placeholder_b), B's
        folder still under its placeholder name."""
        c = self.imap()
        pa, pb = 'Pa' + tag, 'Pb' + tag
        self.assertEqual(self.server.append(USER, pa, twin(b'A'),
                                            date=TWIN_DATE), 1)
        self.assertEqual(self.server.append(USER, pb, twin(b'B'),
                                            date=TWIN_DATE), 1)
        uv_a, uv_b = self.uidvalidity(c, pa), self.uidvalidity(c, pb)
        name_a, name_b = colliding_names(uv_a, uv_b, tag)
        self.assertEqual(ino_hash_hi(name_a, uv_a), ino_hash_hi(name_b, uv_b))
        self.rename(c, pa, name_a)
        self.assertEqual(self.uidvalidity(c, name_a), uv_a,
                         'Dovecot changed UIDVALIDITY on RENAME')
        return name_a, name_b, pb

    def wait_folders(self, m, present, absent):
        """Until the mount's root lists `present` and not `absent`."""
        deadline = time.monotonic() + 20
        while True:
            names = set(os.listdir(m.path))
            if present in names and absent not in names:
                return
            self.assertLess(time.monotonic(), deadline, sorted(names))
            time.sleep(0.3)

    def run_collision(self, tag, rename_late):
        name_a, name_b, pb = self.twin_folders(tag)
        c = self.imap()
        if not rename_late:
            self.rename(c, pb, name_b)
        m = self.mount('refresh=1')
        msg_a, = os.listdir(m.p(name_a))
        fd = os.open(m.p(name_a, msg_a), os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.read(fd, 4096), twin(b'A'))
        ino_a = os.fstat(fd).st_ino
        # Another client: A's folder goes, B's takes a name whose upper
        # half hashes as A's did.
        typ, data = c.delete(name_a)
        self.assertEqual(typ, 'OK', data)
        if rename_late:
            self.rename(c, pb, name_b)
        self.wait_folders(m, name_b, name_a)
        msg_b, = os.listdir(m.p(name_b))
        path_b = m.p(name_b, msg_b)
        # Each symptom of the old code is checked on its own (subTest).
        with self.subTest('B has an inode number of its own'):
            self.assertNotEqual(os.stat(path_b).st_ino, ino_a)
        with self.subTest("B reads B's bytes, not the pages of A's inode"):
            with open(path_b, 'rb') as f:
                self.assertEqual(f.read(), twin(b'B'))
        with self.subTest("flags set through A's open node miss B"):
            # A's node names no message now.
            try:
                os.setxattr(fd, 'user.mail.flags', b'\\Flagged')
            except OSError as e:
                self.assertIn(e.errno, (errno.ENOENT, errno.ESTALE), e)
            self.assertNotIn('\\Flagged',
                             self.server.flags(USER, name_b)[1])

    def test_colliding_folder_listed_all_along(self):
        """B's folder has the colliding name from the start."""
        self.run_collision('x', rename_late=False)

    def test_folder_renamed_onto_colliding_name(self):
        """B's folder is renamed to the colliding name after A's goes."""
        self.run_collision('y', rename_late=True)


# A compound request's time: -o timeout, and an RTT well above half of
# it, so that the old code (each step under a fresh timeout: CREATE, then
# the LIST of mkdir's stat, 2 RTTs) takes at least 2 * RTT_MS = 4 s, the
# first step finishing 1 s before its deadline, while one deadline for
# the whole request ends it at TIMEOUT; SLACK on either side.
TIMEOUT = 3
RTT_MS = 2000
SLACK = 0.5


class RequestDeadlineTest(unittest.TestCase):
    """One FUSE request returns within -o timeout, however many steps it
    takes: mkdir (CREATE, then the folder list for its stat) through a
    slow link."""

    def setUp(self):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.server.create_folder(USER, 'Old')
        self.proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(self.proxy.stop)
        # refresh: the folder list read at mount stays fresh, so that
        # the kernel's lookup of the new name (its own request) sends
        # nothing and the mkdir request alone meets the slow link.
        self.m = Mount('imaps://%s@localhost:%d' % (USER, self.proxy.port),
                       self.server.users[USER], cafile=self.server.cafile,
                       options=['timeout=%d' % TIMEOUT, 'refresh=3600'])
        self.addCleanup(self.m.umount)
        # the RTT back to 0 before unmounting (cleanups run in reverse)
        self.addCleanup(self.proxy.set_rtt, 0)
        self.m.start()

    def test_mkdir_returns_within_timeout(self):
        # A subfolder of a listed folder: the kernel's lookup of the new
        # name finds it missing from Old's listing without a word to the
        # server (a new name at the top would list the folders again,
        # in case another client made it: fsctx_resolve()).
        self.assertIn('Old', os.listdir(self.m.path))
        self.assertEqual(os.listdir(self.m.p('Old')), [])
        self.proxy.set_rtt(RTT_MS)
        t0 = time.monotonic()
        try:
            os.mkdir(self.m.p('Old', 'New'))
            outcome = 'ok'
        except OSError as e:
            outcome = e
        took = time.monotonic() - t0
        self.proxy.set_rtt(0)
        self.assertLess(took, TIMEOUT + SLACK,
                        'mkdir took %.2f s (%s)' % (took, outcome))
        # It did meet the slow link (CREATE's round trip at least), and
        # that first step was done: the folder is there.
        self.assertGreater(took, RTT_MS / 1000, outcome)
        self.assertTrue([f for f in self.server.list_folders(USER)
                         if f.startswith('Old') and f.endswith('New')],
                        self.server.list_folders(USER))


class OtherUsersCacheTest(unittest.TestCase):
    """-o allow_other: another user is refused what the kernel has
    cached from the owner's listing (stat, access, cd), not only what
    reaches mailfs; the owner still reads and sets flags."""

    def setUp(self):
        self.server = MailServer().start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.server.append(USER, 'INBOX', twin(b'A'), date=TWIN_DATE)
        self.m = Mount('imaps://%s@localhost:%d' % (USER,
                                                    self.server.imaps_port),
                       self.server.users[USER], cafile=self.server.cafile,
                       options=['allow_other'])
        self.addCleanup(self.m.umount)
        # Let other users reach the mount point itself.
        os.chmod(self.m.tmp, 0o755)
        self.m.start()

    def as_nobody(self, *cmd):
        return subprocess.run(['runuser', '-u', 'nobody', '--'] + list(cmd),
                              capture_output=True, text=True)

    def test_other_user_refused_after_owner_listed(self):
        folder = self.m.p('INBOX')
        name, = os.listdir(folder)
        # The owner (root) lists the folder and then stats it (a readdir
        # makes the kernel ask for the folder's attributes again): the
        # kernel now holds the entries and their attributes (for
        # refresh seconds) and answers stat from them.
        out = subprocess.run(['ls', '-l', folder], check=True,
                             capture_output=True, text=True).stdout
        self.assertIn(name, out)
        os.stat(folder)
        msg = os.path.join(folder, name)
        # nobody reaches the directory holding the mount point...
        self.assertEqual(self.as_nobody('ls', '-d', self.m.tmp).returncode,
                         0)
        # ...but not what is in the mount, cached or not.
        for what, cmd in (('stat folder', ['stat', folder]),
                          ('stat message', ['stat', msg]),
                          ('cd folder', ['bash', '-c', 'cd "$1"', 'bash',
                                         folder])):
            with self.subTest(what):
                r = self.as_nobody(*cmd)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertIn('Permission denied', r.stderr)
        for what, path, test in (('folder', folder, '-x'),
                                 ('folder', folder, '-r'),
                                 ('message', msg, '-r')):
            with self.subTest('test %s %s' % (test, what)):
                self.assertEqual(self.as_nobody('test', test,
                                                path).returncode, 1)
        # The owner still reads and sets flags.
        with open(msg, 'rb') as f:
            self.assertEqual(f.read(), twin(b'A'))
        subprocess.run(['setfattr', '-n', 'user.mail.flags', '-v',
                        '\\Flagged', msg], check=True)
        self.assertIn('\\Flagged', self.server.flags(USER, 'INBOX')[1])


if __name__ == '__main__':
    unittest.main()
