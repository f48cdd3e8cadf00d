"""Changes made offline (#21), against a real Dovecot behind the fault
proxy: the network goes away during a mount (every connection reset, new
ones reset), flags, moves, removals and new messages are accepted and
shown at once, kept in the journal of the disk cache, and sent when the
network is back; conflicts (a message expunged meanwhile, a folder
deleted meanwhile, a UIDVALIDITY change, an APPEND over quota) each get
what RFC 4549 says; SIGKILL with changes queued loses none. What the
server has is checked with Python's imaplib, never through mailfs."""

import errno
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount, is_mounted

USER = 'alice'
TIMEOUT = 3  # -o timeout: the loss is noticed within it


def msgid(raw):
    m = re.search(rb'(?im)^message-id:\s*(<[^>]*>)', raw)
    return m.group(1) if m else None


class OfflineChangesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = MailServer().start()
        cls.password = cls.server.users[USER]
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def setUp(self):
        type(self).n += 1
        self.box = 'Off%d' % self.n
        self.dest = 'Dest%d' % self.n
        base = 1000 * self.n
        self.raws = [corpus.text_message(base + i) for i in range(6)]
        self.server.append_many(USER, self.box, self.raws)
        self.server.create_folder(USER, self.dest)
        self.names = self.server.message_names(USER, self.box)
        self.bodies = self.server.fetch_all(USER, self.box)
        self.uids = sorted(self.bodies)
        self.cache = tempfile.mkdtemp(prefix='mailfs-offch-')
        self.addCleanup(shutil.rmtree, self.cache, True)
        self.proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(self.proxy.stop)

    # ----------------------------------------------------------- helpers

    def mounter(self, *options, **kw):
        scheme = getattr(self, 'scheme', 'imaps')
        url = '%s://%s@localhost:%d' % (scheme, USER, self.proxy.port)
        if scheme == 'imap':
            # Cleartext, so that the proxy sees the commands.
            options = ('tls=none', 'compress=no') + options
        m = Mount(url, self.password, cafile=self.server.cafile,
                  options=('timeout=%d' % TIMEOUT,) + options,
                  env={'XDG_CACHE_HOME': self.cache}, foreground=True,
                  **kw)
        self.addCleanup(m.umount)
        return m

    def mount(self, *options, **kw):
        return self.mounter(*options, **kw).start()

    def warm(self):
        """Lists the folders and reads every message once (disk cache),
        then unmounts."""
        m = self.mount()
        for f in (self.box, self.dest, 'Trash'):
            os.listdir(m.p(f))
        for uid in self.uids:
            with open(m.p(self.box, self.names[uid]), 'rb') as f:
                self.assertEqual(f.read(), self.bodies[uid])
        m.umount()

    @staticmethod
    def status(m):
        return m.status()

    def wait_status(self, m, key, value, within):
        deadline = time.monotonic() + within
        while self.status(m).get(key) != value:
            if time.monotonic() > deadline:
                self.fail('%s never became %s (status %s)\n%s' % (
                    key, value, self.status(m), m.stderr()))
            time.sleep(0.1)
        return time.monotonic()

    def ids_in(self, folder):
        """{Message-ID: count} of a folder, from the server."""
        out = {}
        for raw in self.server.fetch_all(USER, folder).values():
            out[msgid(raw)] = out.get(msgid(raw), 0) + 1
        return out

    def flags_of(self, folder, raw):
        """The server's flags of the message of raw's Message-ID."""
        want = msgid(raw)
        bodies = self.server.fetch_all(USER, folder)
        flags = self.server.flags(USER, folder)
        for uid, b in bodies.items():
            if msgid(b) == want:
                return flags[uid]
        return None

    def other_client(self):
        """imaplib straight to Dovecot (not through the proxy)."""
        c = self.server.imap(USER)
        self.addCleanup(lambda: c.logout())
        return c

    def all_ids(self):
        ids = {}
        for f in (self.box, self.dest, 'Trash', 'INBOX'):
            for k, v in self.ids_in(f).items():
                ids[k] = ids.get(k, 0) + v
        return ids

    # -------------------------------------------------------------- goals

    def test_network_lost_changes_kept_shown_and_sent(self):
        """The issue's goals: offline within timeout + 1 s of the cut;
        setfattr, mv, rm and cp succeed and show at once; then within 10
        s of the network returning the server has every change, another
        client's flag on the same message is kept, the new message is
        there once, and no original message is missing."""
        self.warm()
        m = self.mount()
        self.assertTrue(m.wait_push())
        a, b, c = self.uids[0], self.uids[1], self.uids[2]
        pa = m.p(self.box, self.names[a])
        t_cut = time.monotonic()
        self.proxy.cut_network()
        t_off = self.wait_status(m, 'mode', 'offline', TIMEOUT + 1)
        self.assertLessEqual(t_off - t_cut, TIMEOUT + 1)
        self.assertIn('offline mode', m.stderr())

        # Each change succeeds offline and shows at once.
        os.setxattr(pa, 'user.mail.flags', b'\\Flagged')
        self.assertEqual(os.getxattr(pa, 'user.mail.flags'), b'\\Flagged')
        subprocess.run(['mv', m.p(self.box, self.names[b]),
                        m.p(self.dest)], check=True)
        self.assertNotIn(self.names[b], os.listdir(m.p(self.box)))
        self.assertIn(self.names[b], os.listdir(m.p(self.dest)))
        with open(m.p(self.dest, self.names[b]), 'rb') as f:
            self.assertEqual(f.read(), self.bodies[b])
        os.unlink(m.p(self.box, self.names[c]))
        self.assertNotIn(self.names[c], os.listdir(m.p(self.box)))
        self.assertIn(self.names[c], os.listdir(m.p('Trash')))
        new = corpus.text_message(900000 + self.n)
        src = os.path.join(self.cache, 'new.eml')
        with open(src, 'wb') as f:
            f.write(new)
        subprocess.run(['cp', src, m.p(self.box, 'new.eml')], check=True)
        listed = os.listdir(m.p(self.box))
        newname = [n for n in listed if n not in self.names.values()]
        self.assertEqual(len(newname), 1, listed)
        with open(m.p(self.box, newname[0]), 'rb') as f:
            got = f.read()
        self.assertEqual(got.replace(b'\r\n', b'\n'),
                         new.replace(b'\r\n', b'\n'))
        self.assertEqual(self.status(m).get('pending_changes'), '4')
        self.assertEqual(self.status(m).get('mode'), 'offline')

        # Meanwhile another client flags the same message.
        w = self.other_client()
        w.select(self.box)
        w.uid('STORE', str(a), '+FLAGS', '(\\Answered)')

        self.proxy.restore_network()
        t_back = time.monotonic()
        self.wait_status(m, 'pending_changes', '0', 10)
        self.assertLess(time.monotonic() - t_back, 10)
        self.assertEqual(self.status(m).get('failed_changes'), '0')
        self.wait_status(m, 'mode', 'online', 5)

        self.assertEqual(self.flags_of(self.box, self.raws[0]),
                         {'\\Flagged', '\\Answered'})
        box = self.ids_in(self.box)
        self.assertNotIn(msgid(self.bodies[b]), box)
        self.assertEqual(self.ids_in(self.dest).get(msgid(self.bodies[b])),
                         1)
        self.assertNotIn(msgid(self.bodies[c]), box)
        self.assertEqual(self.ids_in('Trash').get(msgid(self.bodies[c])), 1)
        self.assertEqual(box.get(msgid(new)), 1)
        everything = self.all_ids()
        for raw in self.raws:
            self.assertGreaterEqual(everything.get(msgid(raw), 0), 1)
        self.assertIn('sending 4 changes made offline', m.stderr())

        # The mount shows the server's state again (listed anew).
        deadline = time.monotonic() + 5
        want = sorted(self.server.message_names(USER, self.box).values())
        while sorted(os.listdir(m.p(self.box))) != want:
            self.assertLess(time.monotonic(), deadline,
                            (os.listdir(m.p(self.box)), want))
            time.sleep(0.2)
        self.assertEqual(
            sorted(os.listdir(m.p(self.dest))),
            sorted(self.server.message_names(USER, self.dest).values()))

    def test_sigkill_with_changes_queued_then_remount_sends_them(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        self.assertEqual(self.status(m).get('mode'), 'offline')
        a, b = self.uids[0], self.uids[1]
        os.setxattr(m.p(self.box, self.names[a]), 'user.mail.flags',
                    b'\\Seen \\Flagged')
        os.rename(m.p(self.box, self.names[b]),
                  m.p(self.dest, self.names[b]))
        new = corpus.text_message(800000 + self.n)
        with open(m.p(self.box, 'n.eml'), 'wb') as f:
            f.write(new)
        self.assertEqual(self.status(m).get('pending_changes'), '3')
        os.kill(m.pid(), signal.SIGKILL)
        subprocess.run(['fusermount3', '-u', '-z', m.path])
        self.proxy.reset_new(False)
        m2 = self.mount()
        self.wait_status(m2, 'pending_changes', '0', 10)
        self.assertEqual(self.flags_of(self.box, self.raws[0]),
                         {'\\Seen', '\\Flagged'})
        self.assertEqual(self.ids_in(self.dest).get(msgid(self.raws[1])), 1)
        self.assertNotIn(msgid(self.raws[1]), self.ids_in(self.box))
        self.assertEqual(self.ids_in(self.box).get(msgid(new)), 1)

    def test_maildir_layout_flag_rename_and_tmp_new_offline(self):
        """mflag-style renames in cur/ and a tmp/ -> new/ delivery, on
        the Maildir layout, while offline."""
        m = self.mount('layout=maildir')
        cur = m.p(self.box, 'cur')
        for uid in self.uids:
            pass
        names = sorted(os.listdir(cur))
        for n in names:
            with open(os.path.join(cur, n), 'rb') as f:
                f.read()
        m.umount()
        self.proxy.reset_new(True)
        m = self.mount('layout=maildir')
        names = sorted(os.listdir(m.p(self.box, 'cur')))
        first = names[0]
        base = first.split(':2,')[0]
        os.rename(os.path.join(m.p(self.box, 'cur'), first),
                  os.path.join(m.p(self.box, 'cur'), base + ':2,FS'))
        self.assertIn(base + ':2,FS', os.listdir(m.p(self.box, 'cur')))
        new = corpus.text_message(700000 + self.n)
        tmp = m.p(self.box, 'tmp', '123.host')
        with open(tmp, 'wb') as f:
            f.write(new)
        os.rename(tmp, m.p(self.box, 'new', '123.host'))
        self.assertEqual(len(os.listdir(m.p(self.box, 'new'))), 1)
        self.assertEqual(self.status(m).get('pending_changes'), '2')
        self.proxy.reset_new(False)
        self.wait_status(m, 'pending_changes', '0', 15)
        flags = [self.flags_of(self.box, raw) for raw in self.raws]
        self.assertIn({'\\Flagged', '\\Seen'}, flags)
        self.assertEqual(self.ids_in(self.box).get(msgid(new)), 1)

    def test_append_cut_after_server_took_it_is_not_stored_twice(self):
        """Sending a new message is cut after the server stored it (the
        client never hears the OK): the next try finds it by its
        Message-ID and does not store it again."""
        self.proxy.stop()
        self.proxy = Proxy(self.server.imap_port).start()
        self.addCleanup(self.proxy.stop)
        self.scheme = 'imap'
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        new = corpus.text_message(500000 + self.n)
        with open(m.p(self.box, 'n.eml'), 'wb') as f:
            f.write(new)
        rule = self.proxy.cut_when('up', b'APPEND', after=True)
        self.proxy.reset_new(False)
        self.assertTrue(rule.wait(15), m.stderr())
        # Did the server take it before the cut? (The proxy forwards
        # the chunk holding the command; a literal that came in a later
        # chunk is lost with the cut.) The next try comes after the
        # reconnection's probe, seconds later.
        took = self.ids_in(self.box).get(msgid(new)) == 1
        self.wait_status(m, 'pending_changes', '0', 20)
        if took:
            self.assertIn('stored already', m.stderr())
        self.assertEqual(self.ids_in(self.box).get(msgid(new)), 1)

    def test_rsync_and_shell_redirect_offline_then_forced_offline(self):
        """rsync's temporaries and `cat >` store new messages offline;
        under -o offline the changes are kept for the next mount that
        connects."""
        self.warm()
        src = os.path.join(self.cache, 'src')
        os.mkdir(src)
        r1 = corpus.text_message(400000 + self.n)
        r2 = corpus.text_message(410000 + self.n)
        r3 = corpus.text_message(420000 + self.n)
        with open(os.path.join(src, 'r1.eml'), 'wb') as f:
            f.write(r1)
        self.proxy.reset_new(True)
        m = self.mount()
        subprocess.run(['rsync', '-a', os.path.join(src, 'r1.eml'),
                        m.p(self.box) + '/'], check=True)
        subprocess.run('cat > %s' % m.p(self.box, 'r2.eml'), shell=True,
                       input=r2, check=True)
        self.assertEqual(self.status(m).get('pending_changes'), '2')
        m.umount()
        m = self.mount('offline')
        self.assertEqual(self.status(m).get('pending_changes'), '2')
        with open(m.p(self.box, 'r3.eml'), 'wb') as f:
            f.write(r3)
        self.assertEqual(self.status(m).get('pending_changes'), '3')
        m.umount()
        self.proxy.reset_new(False)
        m = self.mount()
        self.wait_status(m, 'pending_changes', '0', 15)
        ids = self.ids_in(self.box)
        for raw in (r1, r2, r3):
            self.assertEqual(ids.get(msgid(raw)), 1)

    def test_rm_with_delete_expunge_offline(self):
        """-o delete=expunge: rm offline removes the message from the
        mount at once and, sent later, expunges that UID alone (the
        others stay)."""
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount('delete=expunge')
        a = self.uids[0]
        os.unlink(m.p(self.box, self.names[a]))
        self.assertNotIn(self.names[a], os.listdir(m.p(self.box)))
        self.assertNotIn(self.names[a], os.listdir(m.p('Trash')))
        self.assertEqual(m.status().get('pending_changes'), '1')
        self.proxy.reset_new(False)
        self.wait_status(m, 'pending_changes', '0', 15)
        ids = self.ids_in(self.box)
        self.assertNotIn(msgid(self.raws[0]), ids)
        for raw in self.raws[1:]:
            self.assertEqual(ids.get(msgid(raw)), 1)
        self.assertNotIn(msgid(self.raws[0]), self.ids_in('Trash'))

    # ----------------------------------------------------------- conflicts

    def test_change_to_message_expunged_meanwhile_is_dropped(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        a, b = self.uids[0], self.uids[1]
        os.setxattr(m.p(self.box, self.names[a]), 'user.mail.flags',
                    b'\\Flagged')
        os.setxattr(m.p(self.box, self.names[b]), 'user.mail.flags',
                    b'\\Flagged')
        w = self.other_client()
        w.select(self.box)
        w.uid('STORE', str(a), '+FLAGS.SILENT', '(\\Deleted)')
        w.expunge()
        self.proxy.reset_new(False)
        self.wait_status(m, 'pending_changes', '0', 15)
        self.assertIn('dropped', m.stderr())
        self.assertIn(self.names[a], m.stderr())
        self.assertEqual(self.flags_of(self.box, self.raws[1]),
                         {'\\Flagged'})
        self.assertEqual(self.status(m).get('failed_changes'), '0')

    def test_move_into_folder_deleted_meanwhile_is_dropped(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        a = self.uids[0]
        os.rename(m.p(self.box, self.names[a]),
                  m.p(self.dest, self.names[a]))
        w = self.other_client()
        typ, _ = w.delete(self.dest)
        self.assertEqual(typ, 'OK')
        self.proxy.reset_new(False)
        self.wait_status(m, 'pending_changes', '0', 15)
        self.assertIn('dropped', m.stderr())
        self.assertIn(self.names[a], m.stderr())
        # The message stays where it was: nothing lost.
        self.assertEqual(self.ids_in(self.box).get(msgid(self.raws[0])), 1)

    def test_uidvalidity_change_drops_changes_but_not_new_messages(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        a = self.uids[0]
        os.setxattr(m.p(self.box, self.names[a]), 'user.mail.flags',
                    b'\\Flagged')
        new = corpus.text_message(600000 + self.n)
        with open(m.p(self.box, 'n.eml'), 'wb') as f:
            f.write(new)
        # Another client makes the folder anew: a new UIDVALIDITY.
        w = self.other_client()
        w.delete(self.box)
        self.server.append_many(USER, self.box, self.raws)
        self.proxy.reset_new(False)
        self.wait_status(m, 'pending_changes', '0', 15)
        self.assertIn('dropped', m.stderr())
        self.assertEqual(self.flags_of(self.box, self.raws[0]), set())
        self.assertEqual(self.ids_in(self.box).get(msgid(new)), 1)

    # ----------------------------------------------------------- refusals

    def test_folder_changes_stay_erofs_offline(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        with self.assertRaises(OSError) as cm:
            os.mkdir(m.p('NewFolder%d' % self.n))
        self.assertEqual(cm.exception.errno, errno.EROFS)
        with self.assertRaises(OSError) as cm:
            os.rename(m.p(self.dest), m.p('Renamed%d' % self.n))
        self.assertEqual(cm.exception.errno, errno.EROFS)
        self.assertEqual(self.status(m).get('pending_changes'), '0')

    def test_offline_changes_no_keeps_erofs(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount('offline_changes=no')
        p = m.p(self.box, self.names[self.uids[0]])
        for op in (lambda: os.setxattr(p, 'user.mail.flags', b'\\Seen'),
                   lambda: os.rename(p, m.p(self.dest, 'x.eml')),
                   lambda: os.unlink(p)):
            with self.assertRaises(OSError) as cm:
                op()
            self.assertEqual(cm.exception.errno, errno.EROFS)
        self.assertNotIn('pending_changes', self.status(m))

    def test_read_only_mount_refuses_but_sends_what_was_kept(self):
        self.warm()
        self.proxy.reset_new(True)
        m = self.mount()
        os.setxattr(m.p(self.box, self.names[self.uids[0]]),
                    'user.mail.flags', b'\\Draft')
        m.umount()
        self.proxy.reset_new(False)
        m = self.mount('ro')
        with self.assertRaises(OSError) as cm:
            os.setxattr(m.p(self.box, self.names[self.uids[1]]),
                        'user.mail.flags', b'\\Seen')
        self.assertEqual(cm.exception.errno, errno.EROFS)
        self.wait_status(m, 'pending_changes', '0', 10)
        self.assertEqual(self.flags_of(self.box, self.raws[0]), {'\\Draft'})


class OverQuotaTest(unittest.TestCase):
    """A new message the server refuses at replay (over quota) is never
    discarded: its bytes stay in the spool, failed_changes counts it, the
    log names the spool file, and the change behind it still goes."""

    QUOTA = ('mail_plugins = $mail_plugins quota\n'
             'protocol imap {\n'
             '  mail_plugins = $mail_plugins imap_quota\n'
             '}\n'
             'plugin {\n'
             '  quota = maildir:User quota\n'
             '  quota_rule = *:storage=300K\n'
             '}\n')

    def setUp(self):
        self.server = MailServer(pop3=False, extra_conf=self.QUOTA).start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        self.raws = [corpus.text_message(i) for i in range(3)]
        self.server.append_many(USER, 'INBOX', self.raws)
        self.cache = tempfile.mkdtemp(prefix='mailfs-offq-')
        self.addCleanup(shutil.rmtree, self.cache, True)
        self.proxy = Proxy(self.server.imaps_port).start()
        self.addCleanup(self.proxy.stop)

    def test_append_over_quota_kept_in_spool_and_counted(self):
        url = 'imaps://%s@localhost:%d' % (USER, self.proxy.port)
        m = Mount(url, self.server.users[USER], cafile=self.server.cafile,
                  options=('timeout=%d' % TIMEOUT,),
                  env={'XDG_CACHE_HOME': self.cache}, foreground=True)
        self.addCleanup(m.umount)
        m.start()
        names = sorted(os.listdir(m.p('INBOX')))
        m.umount()
        self.proxy.reset_new(True)
        m.start()
        big = corpus.big_message(600 * 1024, i=5)
        with open(m.p('INBOX', 'big.eml'), 'wb') as f:
            f.write(big)
        os.setxattr(m.p('INBOX', names[0]), 'user.mail.flags', b'\\Seen')
        self.proxy.reset_new(False)
        deadline = time.monotonic() + 15
        while (m.status().get('pending_changes')
               != '0'):
            self.assertLess(time.monotonic(), deadline, m.stderr())
            time.sleep(0.2)
        st = m.status()
        self.assertEqual(st.get('failed_changes'), '1', m.stderr())
        spool = re.search(r'kept in (\S+\.eml)', m.stderr())
        self.assertIsNotNone(spool, m.stderr())
        with open(spool.group(1), 'rb') as f:
            self.assertEqual(f.read().replace(b'\r\n', b'\n'),
                             big.replace(b'\r\n', b'\n'))
        flags = self.server.flags(USER, 'INBOX')
        self.assertIn('\\Seen', set().union(*flags.values()))
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 3)


if __name__ == '__main__':
    unittest.main()
