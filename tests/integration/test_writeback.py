"""Write-back through a real mount to a real Dovecot: flags, moves,
deletes, folders and new messages, each checked with an independent
client (imaplib), including connections cut between any two commands."""

import errno
import os
import re
import shutil
import subprocess
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.harness.proxy import Proxy
from tests.integration.mount import Mount

USER = 'alice'
# What Dovecot advertises, without MOVE (so mailfs falls back to
# COPY + UID EXPUNGE), and without UIDPLUS too (so it must refuse).
CAPS_NO_MOVE = ('IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS '
                'UNSELECT CHILDREN NAMESPACE CONDSTORE LIST-EXTENDED '
                'SPECIAL-USE')
CAPS_NO_UIDPLUS = CAPS_NO_MOVE.replace('UIDPLUS ', '')


def msgid(raw):
    """The Message-ID header of a raw message."""
    m = re.search(rb'^Message-ID: *(\S+)', raw, re.M | re.I)
    return m.group(1)


def getflags(path):
    out = subprocess.run(['getfattr', '--only-values', '-n',
                          'user.mail.flags', path], capture_output=True,
                         text=True)
    return set(out.stdout.split())


def setflags(path, value):
    return subprocess.run(['setfattr', '-n', 'user.mail.flags', '-v', value,
                           path], capture_output=True, text=True)


class WriteTestBase(unittest.TestCase):
    """A fresh server per test: write tests change the mail."""
    capability = None
    options = ()

    def setUp(self):
        self.server = MailServer(imap_capability=self.capability).start()
        self.addCleanup(self.server.cleanup)
        self.addCleanup(self.server.stop)
        for f in ('Archive', 'Archive.2024', 'Reçus'):
            self.server.create_folder(USER, f)
        self.raws = {i: corpus.text_message(i) for i in range(1, 9)}
        self.uids = dict(zip(self.raws, self.server.append_many(
            USER, 'INBOX', list(self.raws.values()))))
        self.server.append(USER, 'Archive', corpus.text_message(50))
        self.m = self.mount(*self.options)

    def mount(self, *options, user=USER, port=None, url=None):
        url = url or 'imaps://%s@localhost:%d' % (
            user, port or self.server.imaps_port)
        m = Mount(url, self.server.users[user], cafile=self.server.cafile,
                  options=options)
        self.addCleanup(m.umount)
        return m.start()

    def nm(self, folder, uid, user=USER):
        """The name of a message, computed from the server's data
        independently of mailfs (MailServer.message_names)."""
        return self.server.message_names(user, folder)[uid]

    def flags(self, folder, user=USER):
        """uid -> flags on the server (\\Recent, per session, left out)."""
        return {u: f - {'\\Recent'}
                for u, f in self.server.flags(user, folder).items()}

    def where(self, raw):
        """Every (folder, uid) on the server holding this message."""
        found = []
        want = msgid(raw)
        for folder in self.server.list_folders(USER):
            for uid, data in self.server.fetch_all(USER, folder).items():
                if msgid(data) == want:
                    found.append((folder, uid))
        return found


class FlagsTest(WriteTestBase):

    def test_set_clear_replace(self):
        uid = self.uids[1]
        p = self.m.p('INBOX', self.nm('INBOX', uid))
        self.assertEqual(setflags(p, '\\Seen \\Flagged $Todo').returncode, 0)
        self.assertEqual(self.flags('INBOX')[uid],
                         {'\\Seen', '\\Flagged', '$Todo'})
        self.assertEqual(getflags(p), {'\\Seen', '\\Flagged', '$Todo'})
        self.assertEqual(setflags(p, '$Label1').returncode, 0)
        self.assertEqual(self.flags('INBOX')[uid], {'$Label1'})
        self.assertEqual(getflags(p), {'$Label1'})
        r = subprocess.run(['setfattr', '-x', 'user.mail.flags', p])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(self.flags('INBOX')[uid], set())
        self.assertEqual(getflags(p), set())
        # Other messages untouched.
        for i, u in self.uids.items():
            if u != uid:
                self.assertEqual(self.flags('INBOX')[u], set())

    def test_invalid_flags_are_einval(self):
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[2]))
        for bad in ('\\Recent', '\\Bogus', 'a(b', 'x]', 'qu"ote', 'ü'):
            r = setflags(p, bad)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn('Invalid argument', r.stderr, bad)
        self.assertEqual(self.flags('INBOX')[self.uids[2]],
                         set())

    def test_other_xattrs_refused(self):
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[2]))
        r = subprocess.run(['setfattr', '-n', 'user.other', '-v', 'x', p],
                           capture_output=True)
        self.assertNotEqual(r.returncode, 0)

    def test_uids_not_sequence_numbers(self):
        # Another client expunges and appends meanwhile: sequence numbers
        # shift, but mailfs addresses by UID.
        os.listdir(self.m.p('INBOX'))
        c = self.server.imap(USER)
        c.select('INBOX')
        c.uid('STORE', '%d:%d' % (self.uids[1], self.uids[3]), '+FLAGS',
              '(\\Deleted)')
        c.uid('EXPUNGE', '%d:%d' % (self.uids[1], self.uids[3]))
        c.logout()
        self.server.append(USER, 'INBOX', corpus.text_message(99))
        target = self.uids[6]
        self.assertEqual(setflags(self.m.p('INBOX', self.nm('INBOX', target)),
                                  '\\Answered').returncode, 0)
        flags = self.flags('INBOX')
        self.assertEqual(flags[target], {'\\Answered'})
        self.assertEqual(sum(1 for f in flags.values() if f), 1)
        shutil.move(self.m.p('INBOX', self.nm('INBOX', self.uids[7])),
                    self.m.p('Archive'))
        self.assertEqual([f for f, _ in self.where(self.raws[7])],
                         ['Archive'])
        self.assertEqual([f for f, _ in self.where(self.raws[8])], ['INBOX'])


class MoveTest(WriteTestBase):

    def check_move(self):
        uid = self.uids[3]
        name = self.nm('INBOX', uid)
        src = self.m.p('INBOX', name)
        r = subprocess.run(['mv', src, self.m.p('Archive') + '/'],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(src))
        self.assertNotIn(name, os.listdir(self.m.p('INBOX')))
        (folder, new), = self.where(self.raws[3])
        self.assertEqual(folder, 'Archive')
        served = self.server.fetch_all(USER, 'Archive')[new]
        # The message keeps its name in the new folder: at once, and in
        # the server's own listing.
        self.assertEqual(self.nm('Archive', new), name)
        self.assertIn(name, os.listdir(self.m.p('Archive')))
        with open(self.m.p('Archive', name), 'rb') as f:
            self.assertEqual(f.read(), served)
        self.assertEqual(len(self.where(self.raws[4])), 1)

    def test_move(self):
        self.check_move()

    def test_move_keeps_flags_and_into_nested_non_ascii(self):
        uid = self.uids[5]
        setflags(self.m.p('INBOX', self.nm('INBOX', uid)), '\\Seen $Work')
        shutil.move(self.m.p('INBOX', self.nm('INBOX', uid)),
                    self.m.p('Archive', '2024', 'x.eml'))
        (folder, new), = self.where(self.raws[5])
        self.assertEqual(folder, 'Archive.2024')
        self.assertEqual(self.flags(folder)[new],
                         {'\\Seen', '$Work'})
        shutil.move(self.m.p('Archive', '2024',
                             self.nm('Archive.2024', new)),
                    self.m.p('Reçus'))
        self.assertEqual([f for f, _ in self.where(self.raws[5])], ['Reçus'])

    def test_rename_within_folder_refused(self):
        r = os.rename
        with self.assertRaises(OSError) as cm:
            r(self.m.p('INBOX', self.nm('INBOX', self.uids[1])),
              self.m.p('INBOX', 'other.eml'))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        self.assertEqual(len(self.where(self.raws[1])), 1)

    def test_existing_target_name_not_replaced(self):
        # Moving a message onto another message's name must not destroy
        # either: EEXIST, and both stay where they were.
        (_, auid), = [(f, u) for f, u in self.where(corpus.text_message(50))]
        other = self.uids[1]
        with self.assertRaises(OSError) as cm:
            os.rename(self.m.p('INBOX', self.nm('INBOX', other)),
                      self.m.p('Archive', self.nm('Archive', auid)))
        self.assertEqual(cm.exception.errno, errno.EEXIST)
        self.assertEqual(len(self.where(corpus.text_message(50))), 1)
        self.assertEqual([f for f, _ in self.where(self.raws[1])],
                         ['INBOX'])


class MoveFallbackTest(MoveTest):
    """Without MOVE: UID COPY, then \\Deleted and UID EXPUNGE of that UID."""
    capability = CAPS_NO_MOVE

    def test_no_bare_expunge(self):
        self.server.restart(rawlog=True)
        self.m.umount()
        self.m = self.mount()
        self.check_move()
        self.m.umount()
        cmds = [c.upper() for s in self.server.rawlog_sessions(USER, 'imap')
                for c in s.commands]
        self.assertTrue(any(c.startswith('UID COPY') for c in cmds), cmds)
        self.assertTrue(any(c.startswith('UID EXPUNGE') for c in cmds))
        self.assertFalse([c for c in cmds if c.split()[0] in
                          ('EXPUNGE', 'CLOSE')])


class NoUidplusTest(WriteTestBase):
    capability = CAPS_NO_UIDPLUS

    def test_move_refused_nothing_changed(self):
        before = self.server.fetch_all(USER, 'INBOX')
        with self.assertRaises(OSError) as cm:
            name = self.nm('INBOX', self.uids[2])
            os.rename(self.m.p('INBOX', name), self.m.p('Archive', name))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        with self.assertRaises(OSError) as cm:
            os.unlink(self.m.p('INBOX', self.nm('INBOX', self.uids[2])))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        self.assertEqual(self.server.fetch_all(USER, 'INBOX'), before)
        self.assertEqual(self.flags('INBOX')[self.uids[2]],
                         set())


class DeleteTest(WriteTestBase):

    def test_rm_moves_to_trash_then_expunges(self):
        uid = self.uids[4]
        os.unlink(self.m.p('INBOX', self.nm('INBOX', uid)))
        (folder, tuid), = self.where(self.raws[4])
        self.assertEqual(folder, 'Trash')
        self.assertIn(self.nm('Trash', tuid), os.listdir(self.m.p('Trash')))
        # Just moved there by this mount: not expunged by a second rm.
        with self.assertRaises(OSError) as cm:
            os.unlink(self.m.p('Trash', self.nm('Trash', tuid)))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        self.assertEqual(len(self.where(self.raws[4])), 1)
        # Mail that was in Trash already is expunged by rm.
        old = corpus.text_message(66)
        ouid = self.server.append(USER, 'Trash', old)
        m = self.mount()
        os.unlink(m.p('Trash', self.nm('Trash', ouid)))
        self.assertEqual(self.where(old), [])
        self.assertEqual(len(self.where(self.raws[4])), 1)
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 7)

    def test_rm_rf_everything_keeps_mail(self):
        # rm -r reaching Trash after the other folders must not destroy
        # what it has just moved there.
        r = subprocess.run('rm -rf %s/*' % self.m.path, shell=True,
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)  # INBOX and Trash stay
        for raw in list(self.raws.values()) + [corpus.text_message(50)]:
            self.assertEqual([f for f, _ in self.where(raw)], ['Trash'])

    def test_rm_r_is_recoverable(self):
        shutil.move(self.m.p('INBOX', self.nm('INBOX', self.uids[1])),
                    self.m.p('Archive', '2024'))
        r = subprocess.run(['rm', '-r', self.m.p('Archive')],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('Archive', os.listdir(self.m.path))
        self.assertNotIn('Archive', self.server.list_folders(USER))
        self.assertEqual([f for f, _ in self.where(self.raws[1])], ['Trash'])
        self.assertEqual([f for f, _ in
                          self.where(corpus.text_message(50))], ['Trash'])

    def test_trash_created_when_missing(self):
        c = self.server.imap(USER)
        c.delete('Trash')
        c.logout()
        m = self.mount('refresh=0')
        os.unlink(m.p('INBOX', self.nm('INBOX', self.uids[2])))
        self.assertEqual([f for f, _ in self.where(self.raws[2])], ['Trash'])


class ServerRestartTest(WriteTestBase):

    def test_first_change_after_server_restart_succeeds(self):
        # Every pooled connection is dead once the server restarts; a
        # change must go out on a fresh one, not fail with EIO.
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[1]))
        self.assertEqual(getflags(p), set())
        self.server.restart()
        self.assertEqual(setflags(p, '\\Flagged').returncode, 0)
        self.assertEqual(self.flags('INBOX')[self.uids[1]], {'\\Flagged'})
        self.server.restart()
        os.mkdir(self.m.p('After restart'))
        self.assertIn('After restart', self.server.list_folders(USER))


class ExpungeModeTest(WriteTestBase):
    options = ('delete=expunge',)

    def test_rm_expunges(self):
        os.unlink(self.m.p('INBOX', self.nm('INBOX', self.uids[6])))
        self.assertEqual(self.where(self.raws[6]), [])
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 7)


class FolderTest(WriteTestBase):

    def test_mkdir_rmdir_nested_non_ascii(self):
        os.mkdir(self.m.p('Projets été'))
        os.mkdir(self.m.p('Projets été', '日本'))
        folders = self.server.list_folders(USER)
        self.assertIn('Projets été', folders)
        self.assertIn('Projets été.日本', folders)
        self.assertEqual(os.listdir(self.m.p('Projets été')), ['日本'])
        with self.assertRaises(OSError) as cm:
            os.rmdir(self.m.p('Projets été'))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
        os.rmdir(self.m.p('Projets été', '日本'))
        os.rmdir(self.m.p('Projets été'))
        self.assertNotIn('Projets été', self.server.list_folders(USER))
        self.assertNotIn('Projets été', os.listdir(self.m.path))

    def test_escaped_names(self):
        # '%' is shown as %25 and back; Dovecot's maildir++ refuses '/' in
        # a name when its delimiter is '.', which mailfs reports as EPERM.
        os.mkdir(self.m.p('100%25 done'))
        self.assertIn('100% done', self.server.list_folders(USER))
        self.assertIn('100%25 done', os.listdir(self.m.path))
        with self.assertRaises(OSError) as cm:
            os.mkdir(self.m.p('a%2Fb'))
        self.assertEqual(cm.exception.errno, errno.EPERM)

    def test_rmdir_refuses_non_empty(self):
        # The mount lists Reçus empty; another client then delivers.
        self.assertEqual(os.listdir(self.m.p('Reçus')), [])
        self.server.append(USER, 'Reçus', corpus.text_message(70))
        with self.assertRaises(OSError) as cm:
            os.rmdir(self.m.p('Reçus'))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
        self.assertIn('Reçus', self.server.list_folders(USER))
        os.rmdir(self.m.p('Archive', '2024'))
        self.assertNotIn('Archive.2024', self.server.list_folders(USER))
        with self.assertRaises(OSError) as cm:
            os.rmdir(self.m.p('Archive'))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)

    def test_rename_folder(self):
        os.rename(self.m.p('Archive'), self.m.p('Old mail'))
        folders = self.server.list_folders(USER)
        self.assertIn('Old mail', folders)
        self.assertIn('Old mail.2024', folders)
        self.assertNotIn('Archive', folders)
        self.assertEqual(sorted(os.listdir(self.m.p('Old mail'))),
                         sorted(['2024', self.nm('Old mail', 1)]))
        with self.assertRaises(OSError) as cm:
            os.rename(self.m.p('INBOX'), self.m.p('Inbox2'))
        self.assertEqual(cm.exception.errno, errno.EPERM)
        with self.assertRaises(OSError) as cm:
            os.rename(self.m.p('Old mail'), self.m.p('Reçus'))
        self.assertEqual(cm.exception.errno, errno.EEXIST)


class NewMessageTest(WriteTestBase):

    def test_unlinked_temporary_still_open_takes_ftruncate(self):
        # A temporary (.NAME, as rsync's) removed while still open: its
        # handle is all that is left, and ftruncate (the kernel gives the
        # handle with it) comes without a path: it goes to the handle's
        # kind; nothing is stored and mailfs stays up.
        path = self.m.p('Archive', '.tmp-open.eml')
        before = set(self.server.folder_uids(USER, 'Archive'))
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, corpus.text_message(91))
            os.unlink(path)
            os.ftruncate(fd, 10)
            self.assertEqual(os.fstat(fd).st_size, 10)
        finally:
            os.close(fd)
        self.assertNotIn('.tmp-open.eml', os.listdir(self.m.p('Archive')))
        self.assertEqual(set(self.server.folder_uids(USER, 'Archive')),
                         before)
        self.assertTrue(os.listdir(self.m.p('INBOX')))

    def test_big_lf_message(self):
        raw = corpus.attachment_message(5 * 1024 * 1024).replace(b'\r\n',
                                                                 b'\n')
        src = os.path.join(self.m.tmp, 'big.eml')
        with open(src, 'wb') as f:
            f.write(raw)
        before = set(self.server.folder_uids(USER, 'Archive'))
        r = subprocess.run(['cp', src, self.m.p('Archive') + '/'],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        new, = set(self.server.folder_uids(USER, 'Archive')) - before
        stored = self.server.fetch_all(USER, 'Archive')[new]
        self.assertEqual(stored, raw.replace(b'\n', b'\r\n'))
        self.assertIn(self.nm('Archive', new),
                      os.listdir(self.m.p('Archive')))
        self.assertNotIn('big.eml', os.listdir(self.m.p('Archive')))
        with open(self.m.p('Archive', 'big.eml'), 'rb') as f:
            self.assertEqual(f.read(), stored)
        self.assertEqual(os.stat(self.m.p('Archive', self.nm('Archive', new))).st_size,
                         len(stored))

    def test_date_and_cat(self):
        src = os.path.join(self.m.tmp, 'dated.eml')
        with open(src, 'wb') as f:
            f.write(corpus.text_message(77))
        when = 1500000000  # 2017-07-14
        os.utime(src, (when, when))
        r = subprocess.run(['cp', '-p', src, self.m.p('INBOX') + '/'],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        (folder, uid), = self.where(corpus.text_message(77))
        c = self.server.imap(USER)
        c.select('INBOX', readonly=True)
        typ, data = c.uid('FETCH', str(uid), '(INTERNALDATE)')
        c.logout()
        self.assertIn(b'14-Jul-2017 02:40:00 +0000', data[0])
        self.assertEqual(int(os.stat(self.m.p('INBOX', self.nm('INBOX', uid)))
                             .st_mtime), when)
        with open(self.m.p('INBOX', 'piped.eml'), 'wb') as f:
            f.write(b'Subject: piped\n\nbody\n')
        found = [d for d in self.server.fetch_all(USER, 'INBOX').values()
                 if d == b'Subject: piped\r\n\r\nbody\r\n']
        self.assertEqual(len(found), 1)

    def test_children_closing_do_not_store_half(self):
        # A shell's redirection: the children's closes must not store a
        # half-written message; the shell's own close stores it whole.
        p = self.m.p('INBOX', 'n.eml')
        r = subprocess.run(
            "{ printf 'Subject: x\\r\\n\\r\\n'; /bin/echo line1; "
            "/bin/echo line2; } > '%s'" % p, shell=True,
            capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        found = [d for d in self.server.fetch_all(USER, 'INBOX').values()
                 if d.startswith(b'Subject: x')]
        self.assertEqual(found, [b'Subject: x\r\n\r\nline1\r\nline2\r\n'])

    def test_rm_of_open_message(self):
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[3]))
        with open(p, 'rb') as f:
            head = f.read(10)
            os.unlink(p)
            # fstat of the unlinked file reaches mailfs without a path
            # (or libfuse answers ESTALE itself): never a crash.
            try:
                self.assertEqual(os.fstat(f.fileno()).st_size,
                                 len(self.raws[3]))
            except OSError as e:
                self.assertEqual(e.errno, errno.ESTALE)
            self.assertEqual(head + f.read(), self.raws[3])
        self.assertIn('INBOX', os.listdir(self.m.path))
        self.assertEqual([f for f, _ in self.where(self.raws[3])],
                         ['Trash'])

    def test_listing_while_writing(self):
        # A file being written shows in listings (and listing it must not
        # block anything).
        p = self.m.p('INBOX', 'partial.eml')
        with open(p, 'wb') as f:
            f.write(b'Subject: partial\r\n\r\n')
            f.flush()
            out = subprocess.run(['ls', '-l', self.m.p('INBOX')],
                                 capture_output=True, text=True, timeout=20)
            self.assertIn('partial.eml', out.stdout)
            self.assertEqual(os.stat(p).st_size, 20)
            f.write(b'body\r\n')
        found = [d for d in self.server.fetch_all(USER, 'INBOX').values()
                 if d == b'Subject: partial\r\n\r\nbody\r\n']
        self.assertEqual(len(found), 1)

    def test_flags_set_before_close(self):
        p = self.m.p('INBOX', 'flagged.eml')
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b'Subject: flagged\r\n\r\nx\r\n')
        os.setxattr(p, 'user.mail.flags', b'\\Flagged $Keep')
        os.close(fd)
        uid = max(self.server.folder_uids(USER, 'INBOX'))
        self.assertEqual(self.flags('INBOX')[uid],
                         {'\\Flagged', '$Keep'})

    def test_too_big_is_efbig(self):
        m = self.mount('max_append=1K')
        with self.assertRaises(OSError) as cm:
            with open(m.p('INBOX', 'huge.eml'), 'wb') as f:
                f.write(b'x' * 4096)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 8)

    def test_existing_messages_immutable(self):
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[1]))
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND):
            with self.assertRaises(OSError) as cm:
                os.open(p, flags)
            self.assertEqual(cm.exception.errno, errno.EACCES)
        with self.assertRaises(OSError) as cm:
            os.truncate(p, 0)
        self.assertEqual(cm.exception.errno, errno.EACCES)
        self.assertEqual(self.server.fetch_all(USER, 'INBOX')[self.uids[1]],
                         self.raws[1])

    def test_rewrite_never_replaces(self):
        # cp over a message: the same bytes store nothing; other bytes
        # are stored as a new message beside it, never instead of it.
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[1]))
        with open(p, 'wb') as f:
            f.write(self.raws[1])
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 8)
        with open(p, 'wb') as f:
            f.write(self.raws[2] + b'changed\r\n')
        after = self.server.fetch_all(USER, 'INBOX')
        self.assertEqual(len(after), 9)
        self.assertEqual(after[self.uids[1]], self.raws[1])
        self.assertIn(self.raws[2] + b'changed\r\n', after.values())

    def test_cp_r_between_accounts(self):
        bob = self.mount(user='bob')
        os.mkdir(bob.p('From alice'))
        r = subprocess.run(['cp', '-rp', self.m.p('Archive'),
                            bob.p('From alice') + '/'],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        folders = self.server.list_folders('bob')
        self.assertIn('From alice.Archive', folders)
        self.assertIn('From alice.Archive.2024', folders)
        got = list(self.server.fetch_all('bob', 'From alice.Archive')
                   .values())
        self.assertEqual(got, list(self.server.fetch_all(USER, 'Archive')
                                   .values()))
        # cp -p kept the date.
        src = os.stat(self.m.p('Archive', self.nm('Archive', 1))).st_mtime
        name, = [n for n in os.listdir(bob.p('From alice', 'Archive'))
                 if n.endswith('.eml')]
        self.assertEqual(os.stat(bob.p('From alice', 'Archive', name))
                         .st_mtime, src)


class ReadOnlyTest(WriteTestBase):
    options = ('ro',)

    def test_everything_erofs(self):
        p = self.m.p('INBOX', self.nm('INBOX', self.uids[1]))
        attempts = [
            lambda: os.rename(p, self.m.p('Archive', 'x.eml')),
            lambda: os.unlink(p),
            lambda: os.mkdir(self.m.p('New')),
            lambda: os.rmdir(self.m.p('Archive', '2024')),
            lambda: os.setxattr(p, 'user.mail.flags', b'\\Seen'),
            lambda: open(self.m.p('INBOX', 'new.eml'), 'wb'),
            lambda: os.open(p, os.O_WRONLY),
        ]
        for a in attempts:
            with self.assertRaises(OSError) as cm:
                a()
            self.assertEqual(cm.exception.errno, errno.EROFS)
        self.assertEqual(len(self.server.fetch_all(USER, 'INBOX')), 8)
        self.assertEqual(self.flags('INBOX')[self.uids[1]],
                         set())


class DroppedConnectionTest(WriteTestBase):
    """Cut the connection at each step of a move or delete: the message
    ends in the source, the target or both, never in neither."""

    def mount_via_proxy(self, *options):
        self.proxy = Proxy(self.server.imap_port).start()
        self.addCleanup(self.proxy.stop)
        # Cleartext through the proxy, so that it can see the commands.
        return self.mount('tls=none', 'timeout=5', *options,
                          url='imap://%s@localhost:%d' % (USER,
                                                          self.proxy.port))

    def cut_case(self, pattern, after, op, number):
        m = self.mount_via_proxy()
        p = m.p('INBOX', self.nm('INBOX', self.uids[number]))
        os.listdir(m.p('INBOX'))
        os.listdir(m.p('Archive'))
        rule = self.proxy.cut_when('up', pattern, after=after)
        try:
            op(m, p)
            result = 'ok'
        except OSError as e:
            result = e.errno
        self.assertTrue(rule.wait(5), pattern)
        places = self.where(self.raws[number])
        self.assertGreaterEqual(len(places), 1,
                                '%s after=%s: message lost' % (pattern, after))
        if result != 'ok':
            self.assertEqual(result, errno.EIO)
        # The mount recovers.
        self.assertTrue(os.listdir(m.p('INBOX')))
        m.umount()
        return places

    def move(self, m, p):
        os.rename(p, m.p('Archive', os.path.basename(p)))

    def remove(self, m, p):
        os.unlink(p)

    def test_cuts_during_move(self):
        n = 1
        for pattern in (b'UID MOVE', b'SELECT'):
            for after in (False, True):
                self.cut_case(pattern, after, self.move, n)
                n += 1

    def test_cuts_during_delete(self):
        n = 1
        for pattern in (b'UID MOVE', b'SELECT'):
            for after in (False, True):
                self.cut_case(pattern, after, self.remove, n)
                n += 1


class DroppedConnectionFallbackTest(DroppedConnectionTest):
    capability = CAPS_NO_MOVE

    def test_cuts_during_move(self):
        n = 1
        for pattern in (b'UID COPY', b'UID STORE', b'UID EXPUNGE'):
            for after in (False, True):
                self.cut_case(pattern, after, self.move, n)
                n += 1

    def test_cuts_during_delete(self):
        n = 1
        for pattern in (b'UID COPY', b'UID STORE', b'UID EXPUNGE'):
            for after in (False, True):
                self.cut_case(pattern, after, self.remove, n)
                n += 1

    def test_cuts_during_expunge_in_trash(self):
        os.unlink(self.m.p('INBOX', self.nm('INBOX', self.uids[8])))
        (_, tuid), = self.where(self.raws[8])
        for pattern in (b'UID STORE', b'UID EXPUNGE'):
            m = self.mount_via_proxy()
            os.listdir(m.p('Trash'))
            rule = self.proxy.cut_when('up', pattern, after=False)
            with self.assertRaises(OSError):
                os.unlink(m.p('Trash', self.nm('Trash', tuid)))
            self.assertTrue(rule.wait(5))
            self.assertEqual(len(self.where(self.raws[8])), 1)
            m.umount()
            self.proxy.stop()

    def test_cut_during_append_stores_at_most_once(self):
        for after in (False, True):
            m = self.mount_via_proxy()
            os.listdir(m.p('INBOX'))
            rule = self.proxy.cut_when('up', b'APPEND', after=after)
            raw = corpus.text_message(300 + after)
            try:
                with open(m.p('INBOX', 'n%d.eml' % after), 'wb') as f:
                    f.write(raw)
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO)
            self.assertTrue(rule.wait(5))
            self.assertLessEqual(len(self.where(raw)), 1)
            m.umount()
            self.proxy.stop()


if __name__ == '__main__':
    unittest.main()
