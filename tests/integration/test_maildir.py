"""-o layout=maildir against a real Dovecot: the tree is a Maildir that
Python's mailbox module, notmuch, mu, mblaze and neomutt use, every
change checked on the server with an independent client. Names are
computed independently (MailServer.message_names)."""

import email.utils
import errno
import mailbox
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.harness import corpus
from tests.harness.mailserver import MailServer
from tests.integration.mount import Mount

USER = 'alice'
LETTERS = (('\\Draft', 'D'), ('\\Flagged', 'F'), ('$Forwarded', 'P'),
           ('\\Answered', 'R'), ('\\Seen', 'S'), ('\\Deleted', 'T'))
# Each test works in its own folder of one server and one mount.
FOLDERS = ('Py', 'Flags', 'Bad', 'Src', 'Dst', 'Nm', 'Mu', 'Mb', 'Mutt',
           'Archive.cur', 'Archive.new.tmp')


def letters(flags):
    """The Maildir letters of a set of IMAP flags."""
    return ''.join(l for f, l in LETTERS if f in flags)


def msgid(raw):
    m = re.search(rb'^Message-ID: *<([^>]+)>', raw, re.M | re.I)
    return m.group(1).decode()


def run(args, env=None, timeout=60, cwd=None):
    r = subprocess.run(args, env=env, capture_output=True, text=True,
                       timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError('%s: %d\n%s%s' % (args, r.returncode,
                                               r.stdout, r.stderr))
    return r.stdout


class MaildirTest(unittest.TestCase):
    """One server and one mount; each test in its own folder."""

    @classmethod
    def setUpClass(cls):
        cls.server = s = MailServer(rawlog=True).start()
        for f in FOLDERS:
            s.create_folder(USER, f)
        cls.raws = {}
        n = 100
        for f in ('INBOX',) + FOLDERS[:9]:
            raws = [corpus.text_message(n + i) for i in range(3)]
            n += 10
            uids = s.append_many(USER, f, raws)
            cls.raws[f] = dict(zip(uids, raws))
        # A message with a keyword and system flags.
        uid = s.append(USER, 'Flags', corpus.text_message(900),
                       flags='\\Seen $Work')
        cls.raws['Flags'][uid] = corpus.text_message(900)
        cls.mnt = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                        s.users[USER], cafile=s.cafile,
                        options=['layout=maildir']).start()

    @classmethod
    def tearDownClass(cls):
        cls.mnt.umount()
        cls.server.stop()
        cls.server.cleanup()

    def p(self, *parts):
        return os.path.join(self.mnt.path, *parts)

    def flags(self, folder):
        return {u: f - {'\\Recent'}
                for u, f in self.server.flags(USER, folder).items()}

    def expected(self, folder):
        """{uid: Maildir name} from the server's own data."""
        flags = self.flags(folder)
        return {uid: '%s,U=%d:2,%s' % (name[:-4], uid, letters(flags[uid]))
                for uid, name in
                self.server.message_names(USER, folder).items()}

    def test_layout_names_and_escaped_levels(self):
        self.assertEqual(sorted(os.listdir(self.p('INBOX'))),
                         ['cur', 'new', 'tmp'])
        self.assertEqual(sorted(os.listdir(self.p('INBOX', 'cur'))),
                         sorted(self.expected('INBOX').values()))
        self.assertEqual(os.listdir(self.p('INBOX', 'new')), [])
        self.assertEqual(os.listdir(self.p('INBOX', 'tmp')), [])
        names = self.expected('Flags')
        self.assertIn(':2,S', ' '.join(names.values()))
        self.assertEqual(sorted(os.listdir(self.p('Flags', 'cur'))),
                         sorted(names.values()))
        # Folder levels named cur, new, tmp are escaped; a parent the
        # server did not list holds no cur/ of its own.
        self.assertEqual(sorted(os.listdir(self.p('Archive'))),
                         ['%63ur', '%6Eew'])
        self.assertEqual(sorted(os.listdir(self.p('Archive', '%6Eew'))),
                         ['%74mp'])
        self.assertEqual(sorted(os.listdir(self.p('Archive', '%63ur'))),
                         ['cur', 'new', 'tmp'])
        for uid, raw in self.raws['INBOX'].items():
            with open(self.p('INBOX', 'cur',
                             self.expected('INBOX')[uid]), 'rb') as f:
                self.assertEqual(f.read(), corpus.dovecot_view(raw))

    def test_python_mailbox_lists_reads_sets_flags_adds_removes(self):
        mb = mailbox.Maildir(self.p('Py'), factory=None, create=False)
        names = self.expected('Py')
        self.assertEqual(sorted(mb.keys()),
                         sorted(n.split(':')[0] for n in names.values()))
        for uid, raw in self.raws['Py'].items():
            key = names[uid].split(':')[0]
            self.assertEqual(mb.get_bytes(key), corpus.dovecot_view(raw))
            self.assertEqual(mb[key]['Message-ID'],
                             '<%s>' % msgid(raw))
        # Flags: what Python 3.13's Maildir.set_flags() does, a rename
        # within cur/.
        uid = min(self.raws['Py'])
        key = names[uid].split(':')[0]
        os.rename(os.path.join(mb._path, mb._lookup(key)),
                  self.p('Py', 'cur', key + ':2,FS'))
        self.assertEqual(self.flags('Py')[uid], {'\\Flagged', '\\Seen'})
        mb = mailbox.Maildir(self.p('Py'), factory=None, create=False)
        self.assertEqual(mb.get_message(key).get_flags(), 'FS')
        # add(): written in tmp/, link refused, renamed into new/.
        before = set(self.flags('Py'))
        raw = corpus.text_message(700)
        added = mb.add(raw)
        self.assertEqual(mb[added]['Message-ID'], '<%s>' % msgid(raw))
        new_uids = set(self.flags('Py')) - before
        self.assertEqual(len(new_uids), 1)
        (new_uid,) = new_uids
        self.assertEqual(self.flags('Py')[new_uid], set())
        self.assertEqual(self.server.fetch_all(USER, 'Py')[new_uid],
                         corpus.dovecot_view(raw))
        self.assertEqual(len(mb), 4)
        # A MaildirMessage for cur/ with letters and a date: stored with
        # those flags and that INTERNALDATE.
        msg = mailbox.MaildirMessage(corpus.text_message(701))
        msg.set_subdir('cur')
        msg.set_flags('RS')
        msg.set_date(1500000000)
        key2 = mb.add(msg)
        uid2 = max(self.flags('Py'))
        self.assertEqual(self.flags('Py')[uid2], {'\\Answered', '\\Seen'})
        self.assertEqual(mb.get_message(key2).get_flags(), 'RS')
        self.assertTrue(self.server.message_names(USER, 'Py')[uid2]
                        .startswith('20170714T024000Z-'))
        # remove(): rm, so to Trash by default.
        mb.remove(added)
        self.assertNotIn(new_uid, self.flags('Py'))
        self.assertNotIn(added, mb.keys())
        self.assertEqual(len(mb), 4)
        # Nothing is left in tmp/ or new/ after the next listing.
        self.assertEqual(os.listdir(self.p('Py', 'tmp')), [])

    def test_rename_sends_only_the_changed_flags(self):
        uid = max(self.flags('Flags'))  # \Seen $Work
        name = self.expected('Flags')[uid]
        self.assertTrue(name.endswith(':2,S'), name)
        self.server.clear_rawlog(USER)
        stem = name.split(':')[0]
        os.rename(self.p('Flags', 'cur', name),
                  self.p('Flags', 'cur', stem + ':2,FR'))
        self.assertEqual(self.flags('Flags')[uid],
                         {'\\Flagged', '\\Answered', '$Work'})
        stores = [c for s in self.server.rawlog_sessions(USER, 'imap')
                  for c in s.commands if c.upper().startswith('UID STORE')]
        self.assertEqual(sorted(stores), sorted([
            'UID STORE %d +FLAGS (\\Flagged \\Answered)' % uid,
            'UID STORE %d -FLAGS (\\Seen)' % uid]), stores)
        self.assertEqual(sorted(os.listdir(self.p('Flags', 'cur'))),
                         sorted(self.expected('Flags').values()))
        # The same letters again: nothing to send.
        self.server.clear_rawlog(USER)
        new = self.p('Flags', 'cur', stem + ':2,FR')
        os.rename(new, new)
        self.assertEqual([c for s in self.server.rawlog_sessions(USER)
                          for c in s.commands if c.upper().startswith('UID STORE')], [])

    def test_bad_renames_fail_with_einval_and_change_nothing(self):
        before = self.flags('Bad')
        trash = len(self.flags('Trash'))
        names = self.expected('Bad')
        uid = min(names)
        src = self.p('Bad', 'cur', names[uid])
        stem = names[uid].split(':')[0]
        for bad in (stem + ':2,X', stem + ':2,a', stem + ':2,SS',
                    stem + ':1,S', stem + ':3', stem[:-1] + '9:2,S',
                    'other:2,S'):
            with self.assertRaises(OSError, msg=bad) as cm:
                os.rename(src, self.p('Bad', 'cur', bad))
            self.assertEqual(cm.exception.errno, errno.EINVAL, bad)
        # Another message's name is never replaced; no renaming into
        # new/ or tmp/; cur/ itself stays.
        other = self.p('Bad', 'cur', names[max(names)])
        with self.assertRaises(FileExistsError):
            os.rename(src, other)
        for sub in ('new', 'tmp'):
            with self.assertRaises(PermissionError):
                os.rename(src, self.p('Bad', sub, names[uid]))
        with self.assertRaises(PermissionError):
            os.rename(self.p('Bad', 'cur'), self.p('Bad', 'cur2'))
        with self.assertRaises(PermissionError):
            os.link(src, self.p('Bad', 'cur', stem + ':2,S'))
        self.assertEqual(self.flags('Bad'), before)
        self.assertEqual(sorted(os.listdir(self.p('Bad', 'cur'))),
                         sorted(names.values()))
        self.assertEqual(len(self.flags('Trash')), trash)

    def test_mv_between_folders_is_a_move(self):
        names = self.expected('Src')
        uid = min(names)
        raw = self.raws['Src'][uid]
        shutil.move(self.p('Src', 'cur', names[uid]),
                    self.p('Dst', 'cur', names[uid]))
        self.assertNotIn(uid, self.flags('Src'))
        dst = self.server.fetch_all(USER, 'Dst')
        self.assertIn(corpus.dovecot_view(raw), dst.values())
        # Listed under the name it was given until the next listing.
        listed = os.listdir(self.p('Dst', 'cur'))
        self.assertEqual(len(listed), 4)
        self.assertIn(names[uid], listed)


    def test_folders_mkdir_rmdir(self):
        os.mkdir(self.p('Made'))
        self.assertEqual(sorted(os.listdir(self.p('Made'))),
                         ['cur', 'new', 'tmp'])
        self.assertIn('Made', self.server.list_folders(USER))
        # No folder inside cur/, new/, tmp/; a level named cur is made
        # under its escaped name (Archive is \\Noselect: no cur/ there).
        for bad in (('Made', 'cur', 'x'), ('Made', 'tmp', 'x'),
                    ('Archive', 'cur')):
            with self.assertRaises(PermissionError, msg=bad):
                os.mkdir(self.p(*bad))
        os.mkdir(self.p('Made', 'Sub'))
        os.mkdir(self.p('Made', '%63ur'))
        self.assertIn('Made.Sub', self.server.list_folders(USER))
        self.assertIn('Made.cur', self.server.list_folders(USER))
        with self.assertRaises(PermissionError):
            os.rmdir(self.p('Made', 'cur'))
        os.rmdir(self.p('Made', 'Sub'))
        os.rmdir(self.p('Made', '%63ur'))
        os.rmdir(self.p('Made'))
        self.assertNotIn('Made', self.server.list_folders(USER))

    def test_xattr_flags_rename_the_file(self):
        if not shutil.which('setfattr'):
            self.skipTest('attr not installed')
        names = self.expected('Src')
        uid = max(names)
        run(['setfattr', '-n', 'user.mail.flags', '-v', '\\Draft',
             self.p('Src', 'cur', names[uid])])
        self.assertEqual(self.flags('Src')[uid], {'\\Draft'})
        self.assertTrue(os.path.exists(self.p(
            'Src', 'cur', names[uid].split(':')[0] + ':2,D')))
        self.assertFalse(os.path.exists(self.p('Src', 'cur', names[uid])))

    # Real tools over the same mount, each in its own folder.

    def home(self):
        home = tempfile.mkdtemp(prefix='mailfs-tool-')
        self.addCleanup(shutil.rmtree, home, True)
        return home

    @unittest.skipUnless(shutil.which('notmuch'), 'notmuch not installed')
    def test_notmuch_tag_flagged_sets_the_flag_on_the_server(self):
        home = self.home()
        db = os.path.join(home, 'db')
        os.mkdir(db)
        config = os.path.join(home, 'notmuch-config')
        with open(config, 'w') as f:
            f.write('[database]\npath=%s\nmail_root=%s\n'
                    '[user]\nname=A\nprimary_email=alice@example.com\n'
                    '[new]\ntags=inbox\n'
                    '[maildir]\nsynchronize_flags=true\n' % (db, self.p()))
        env = dict(os.environ, HOME=home, NOTMUCH_CONFIG=config)
        run(['notmuch', 'new'], env)
        uid = min(self.raws['Nm'])
        mid = msgid(self.raws['Nm'][uid])
        run(['notmuch', 'tag', '+flagged', '--', 'id:' + mid], env)
        self.assertEqual(self.flags('Nm')[uid], {'\\Flagged'})
        run(['notmuch', 'tag', '-unread', '--', 'id:' + mid], env)
        self.assertEqual(self.flags('Nm')[uid], {'\\Flagged', '\\Seen'})
        files = run(['notmuch', 'search', '--output=files',
                     'id:' + mid], env).split()
        self.assertEqual([os.path.basename(f) for f in files],
                         [self.expected('Nm')[uid]])

    @unittest.skipUnless(shutil.which('mu'), 'mu not installed')
    def test_mu_indexes_and_finds(self):
        home = self.home()
        env = dict(os.environ, HOME=home, XDG_CACHE_HOME=home)
        muhome = os.path.join(home, 'mu')
        run(['mu', 'init', '--muhome=' + muhome,
             '--maildir=' + self.p('Mu')], env)
        run(['mu', 'index', '--muhome=' + muhome], env)
        uid = min(self.raws['Mu'])
        mid = msgid(self.raws['Mu'][uid])
        out = run(['mu', 'find', '--muhome=' + muhome, '--fields=l',
                   'msgid:' + mid], env).split()
        self.assertEqual(out, [self.p('Mu', 'cur',
                                      self.expected('Mu')[uid])])

    @unittest.skipUnless(shutil.which('mlist') and shutil.which('mflag'),
                         'mblaze not installed')
    def test_mblaze_lists_and_flags(self):
        env = dict(os.environ, HOME=self.home())
        listed = run(['mlist', self.p('Mb')], env).split()
        self.assertEqual(sorted(listed),
                         sorted(self.p('Mb', 'cur', n)
                                for n in self.expected('Mb').values()))
        uid = min(self.raws['Mb'])
        run(['mflag', '-S', self.p('Mb', 'cur', self.expected('Mb')[uid])],
            env)
        self.assertEqual(self.flags('Mb')[uid], {'\\Seen'})

    @unittest.skipUnless(shutil.which('neomutt') and shutil.which('script'),
                         'neomutt not installed')
    def test_neomutt_opens_the_folder_and_reads_a_message(self):
        home = self.home()
        rc = os.path.join(home, 'muttrc')
        out = os.path.join(home, 'piped')
        with open(rc, 'w') as f:
            f.write('set mbox_type=Maildir\nset folder=%s\n'
                    'set wait_key=no\nset quit=yes\nset sort=date\n'
                    'set pipe_decode=no\nset mark_old=no\n' % self.p())
        # Batch: neomutt needs a terminal (script gives it one), opens
        # the folder, pipes the first message to a file and quits.
        env = dict(os.environ, HOME=home, TERM='xterm')
        cmd = ("neomutt -n -F %s -f %s -e 'push \"<pipe-message>cat > %s"
               "<enter><quit>\"'" % (rc, self.p('Mutt'), out))
        run(['script', '-qec', cmd, '/dev/null'], env, timeout=30)
        with open(out, 'rb') as f:
            piped = f.read()
        self.assertIn(re.sub(rb'\r\n', b'\n', piped),
                      [re.sub(rb'\r\n', b'\n', corpus.dovecot_view(r))
                       for r in self.raws['Mutt'].values()])


class MaildirUnmountTest(unittest.TestCase):

    def test_files_left_in_tmp_are_discarded_at_unmount(self):
        s = MailServer().start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                  s.users[USER], cafile=s.cafile,
                  options=['layout=maildir'], foreground=True).start()
        self.addCleanup(m.umount)
        tmp = os.path.join(m.path, 'INBOX', 'tmp', '1700000000.M1P2.host')
        with open(tmp, 'wb') as f:
            f.write(corpus.text_message(1))
        self.assertEqual(os.listdir(os.path.join(m.path, 'INBOX', 'tmp')),
                         [os.path.basename(tmp)])
        self.assertEqual(os.listdir(os.path.join(m.path, 'INBOX', 'new')),
                         [])
        m.umount()
        self.assertIn('/INBOX/tmp/1700000000.M1P2.host: temporary file '
                      'never renamed, discarded at unmount', m.stderr())
        self.assertEqual(s.flags(USER, 'INBOX'), {})
