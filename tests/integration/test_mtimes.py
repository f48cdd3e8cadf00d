"""Directory mtimes that move as a local Maildir's do (issue #20), against
a real Dovecot and a real FUSE mount, checked with the tools that rely on
them: Python's mailbox.Maildir, notmuch, mu, neomutt (in tmux), mblaze.

A folder's directory, and in the Maildir layout its cur/ and new/, show
when mailfs last saw the folder's content change: the mtime is never 0,
moves when another client flags, expunges or delivers (within 2 s with
push, within `refresh` without it), and when the mount itself changes
something; it stays while nothing changes, and a remount never shows an
earlier one (the disk cache keeps it).

Each goal runs with push (NOTIFY; refresh=3600, so that nothing but push
can tell the kernel in time) and without it (connections=2 turns push
off; refresh=2)."""

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


def within(pred, seconds):
    """Polls pred until it holds (True) or seconds pass (its last value)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def mtime(path):
    """A directory's mtime in whole seconds; checks it is one."""
    st = os.stat(path)
    assert st.st_mtime_ns % 1000000000 == 0, (path, st.st_mtime_ns)
    return st.st_mtime_ns // 1000000000


def run(args, env=None, timeout=60):
    r = subprocess.run(args, env=env, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError('%s: %d\n%s%s' % (args, r.returncode,
                                               r.stdout, r.stderr))
    return r.stdout


def msgid(raw):
    return re.search(rb'^Message-ID: *<([^>]+)>', raw,
                     re.M | re.I).group(1).decode()


def next_second():
    """Sleeps into the next wall-clock second and a bit: a change made
    now lands in a later second than anything a tool saw before (mtimes
    are whole seconds, on a local file system with second timestamps
    too)."""
    time.sleep(1.1)


class Other:
    """Another IMAP client changing the mail behind the mount's back."""

    def __init__(self, server):
        self.server = server

    def _run(self, folder, *commands):
        c = self.server.imap(USER)
        try:
            c.select(folder)
            for cmd in commands:
                typ, data = c.uid(*cmd)
                assert typ == 'OK', (cmd, typ, data)
        finally:
            c.logout()

    def flag(self, folder, uid, flag='\\Flagged'):
        self._run(folder, ('STORE', str(uid), '+FLAGS', '(%s)' % flag))

    def expunge(self, folder, uid):
        self._run(folder, ('STORE', str(uid), '+FLAGS', '(\\Deleted)'),
                  ('EXPUNGE', str(uid)))

    def deliver(self, folder, raw, date=None):
        """Appends raw (with an old INTERNALDATE when date is given)."""
        return self.server.append(USER, folder, raw, date=date)


class MtimeBase:
    """The goals, on one server and one mount (-o layout=maildir) per
    class; each test in its own folder. Subclasses choose push."""

    OPTIONS = ()
    WAIT = 2.0  # seconds allowed for another client's change to show
    PUSH = True
    FOLDERS = ('Flag', 'Gone', 'Came', 'Own', 'Still', 'Noise', 'Nm', 'Mu',
               'Mutt', 'Minc', 'Deep.Sub')  # Deep: a \\Noselect parent

    @classmethod
    def setUpClass(cls):
        cls.server = s = MailServer(rawlog=True).start()
        cls.uids = {}
        cls.raws = {}
        n = 1000
        for f in cls.FOLDERS:
            s.create_folder(USER, f)
            raws = [corpus.text_message(n + i,
                                        subject='Mtime %s %d' % (f, i))
                    for i in range(4)]
            n += 10
            cls.uids[f] = s.append_many(USER, f, raws)
            cls.raws[f] = dict(zip(cls.uids[f], raws))
        cls.other = Other(s)
        cls.mnt = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                        s.users[USER], cafile=s.cafile,
                        options=['layout=maildir'] + list(cls.OPTIONS))
        cls.mnt.start()
        # Push or not, as the class says (the server's own record).
        def notify_sent():
            return any('NOTIFY' in c for sess in s.rawlog_sessions(USER)
                       for c in sess.commands)
        assert within(notify_sent, 5) == cls.PUSH, cls.PUSH
        time.sleep(0.3)  # the push session reaches IDLE

    @classmethod
    def tearDownClass(cls):
        cls.mnt.umount()
        cls.server.stop()
        cls.server.cleanup()

    def p(self, *parts):
        return self.mnt.p(*parts)

    def dirs(self, folder):
        """The three directories whose mtime tools read."""
        return [self.p(folder), self.p(folder, 'cur'), self.p(folder, 'new')]

    def mtimes(self, folder):
        return [mtime(d) for d in self.dirs(folder)]

    def home(self):
        d = tempfile.mkdtemp(prefix='mailfs-mtime-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def wait_moved(self, folder, before):
        """Waits (WAIT seconds) until the folder's directories all show a
        later mtime than before; returns the new one."""
        ok = within(lambda: all(m > before for m in self.mtimes(folder)),
                    self.WAIT)
        self.assertTrue(ok, '%s: mtimes %s, not after %d within %.1f s' %
                        (folder, self.mtimes(folder), before, self.WAIT))
        now = self.mtimes(folder)
        self.assertEqual(len(set(now)), 1, now)
        return now[0]

    def test_flag_by_another_client_moves_cur(self):
        mb = mailbox.Maildir(self.p('Flag'), factory=None, create=False)
        keys = mb.keys()
        self.assertEqual(len(keys), 4)
        before = max(self.mtimes('Flag'))
        self.assertGreater(before, 0)
        next_second()
        uid = self.uids['Flag'][1]
        self.other.flag('Flag', uid)
        self.wait_moved('Flag', before)
        # The same Maildir object, more than 2 s after its last read:
        # Python reads the directory again only because cur/ moved.
        time.sleep(2.2)
        flagged = [k for k in mb.keys()
                   if 'F' in mb.get_message(k).get_flags()]
        self.assertEqual(len(flagged), 1, flagged)
        self.assertEqual(mb[flagged[0]]['Message-ID'],
                         '<%s>' % msgid(self.raws['Flag'][uid]))

    def test_expunge_by_another_client_moves_cur(self):
        mb = mailbox.Maildir(self.p('Gone'), factory=None, create=False)
        self.assertEqual(len(mb.keys()), 4)
        before = max(self.mtimes('Gone'))
        next_second()
        uid = self.uids['Gone'][0]
        self.other.expunge('Gone', uid)
        self.wait_moved('Gone', before)
        time.sleep(2.2)
        keys = mb.keys()
        self.assertEqual(len(keys), 3)
        self.assertNotIn('<%s>' % msgid(self.raws['Gone'][uid]),
                         [mb[k]['Message-ID'] for k in keys])

    def test_delivery_by_another_client_moves_cur(self):
        # An old INTERNALDATE (mail moved in, or restored): the mtime
        # moves all the same.
        mb = mailbox.Maildir(self.p('Came'), factory=None, create=False)
        self.assertEqual(len(mb.keys()), 4)
        before = max(self.mtimes('Came'))
        next_second()
        raw = corpus.text_message(1900, subject='Late mtime numbat')
        self.other.deliver('Came', raw, date=time.time() - 400 * 86400)
        self.wait_moved('Came', before)
        time.sleep(2.2)
        self.assertIn('<%s>' % msgid(raw),
                      [mb[k]['Message-ID'] for k in mb.keys()])

    def test_changes_through_the_mount_move_cur(self):
        names = sorted(os.listdir(self.p('Own', 'cur')))
        before = max(self.mtimes('Own'))
        next_second()
        target = self.p('Own', 'cur', names[0])
        uid = int(os.getxattr(target, 'user.mail.uid'))
        if shutil.which('mflag'):
            run(['mflag', '-S', target])
        else:
            os.rename(target, target.split(':2,')[0] + ':2,S')
        flagged = self.wait_moved('Own', before)
        self.assertEqual(self.server.flags(USER, 'Own')[uid] -
                         {'\\Recent'}, {'\\Seen'})
        next_second()
        os.unlink(self.p('Own', 'cur', sorted(
            os.listdir(self.p('Own', 'cur')))[-1]))
        self.wait_moved('Own', flagged)
        self.assertEqual(len(os.listdir(self.p('Own', 'cur'))), 3)

    def test_unchanged_folder_keeps_its_mtime(self):
        before = self.mtimes('Still')
        self.assertEqual(len(set(before)), 1, before)
        self.assertGreater(before[0], 0)
        # Listing it, reading every message, its names and flags, and a
        # refresh or two: nothing changed, nothing moves.
        for _ in range(2):
            for n in os.listdir(self.p('Still', 'cur')):
                with open(self.p('Still', 'cur', n), 'rb') as f:
                    f.read()
                os.getxattr(self.p('Still', 'cur', n), 'user.mail.flags')
            time.sleep(2.5)
            self.assertEqual(self.mtimes('Still'), before)
        # A change elsewhere moves other folders only.
        self.other.flag('Noise', self.uids['Noise'][3], '\\Answered')
        time.sleep(self.WAIT + 0.5)
        self.assertEqual(self.mtimes('Still'), before)
        # So mu and notmuch find nothing to read there a second time.
        if shutil.which('notmuch'):
            env = self.notmuch_env('Still')
            run(['notmuch', 'new'], env)
            out = run(['notmuch', 'new'], env)
            self.assertIn('No new mail', out)
            self.assertEqual(self.mtimes('Still'), before)

    def notmuch_env(self, folder):
        """A notmuch whose mail root is one folder of the mount and whose
        database is outside it; flags synchronized (the default)."""
        home = self.home()
        db = os.path.join(home, 'db')
        os.mkdir(db)
        config = os.path.join(home, 'notmuch-config')
        with open(config, 'w') as f:
            f.write('[database]\npath=%s\nmail_root=%s\n'
                    '[user]\nname=A\nprimary_email=alice@example.com\n'
                    '[new]\ntags=inbox\n' % (db, self.p(folder)))
        return dict(os.environ, HOME=home, NOTMUCH_CONFIG=config)

    @unittest.skipUnless(shutil.which('notmuch'), 'notmuch not installed')
    def test_notmuch_new_sees_other_clients_without_full_scan(self):
        env = self.notmuch_env('Nm')
        run(['notmuch', 'new'], env)

        def count(query):
            return int(run(['notmuch', 'count', query], env))

        def server_flagged():
            return sum('\\Flagged' in f for f in
                       self.server.flags(USER, 'Nm').values())
        self.assertEqual(count('*'), 4)
        self.assertEqual(count('tag:flagged'), server_flagged())
        # A flag set by another client: tag:flagged follows.
        before = max(self.mtimes('Nm'))
        next_second()
        self.other.flag('Nm', self.uids['Nm'][2])
        before = self.wait_moved('Nm', before)
        run(['notmuch', 'new'], env)
        self.assertEqual(server_flagged(), 1)
        self.assertEqual(count('tag:flagged'), 1)
        self.assertEqual(count('tag:flagged and id:%s' %
                               msgid(self.raws['Nm'][self.uids['Nm'][2]])),
                         1)
        # An expunge: the message is forgotten.
        next_second()
        gone = self.uids['Nm'][0]
        self.other.expunge('Nm', gone)
        before = self.wait_moved('Nm', before)
        run(['notmuch', 'new'], env)
        self.assertEqual(count('*'), 3)
        self.assertEqual(count('id:' + msgid(self.raws['Nm'][gone])), 0)
        # A delivery with an old date.
        next_second()
        raw = corpus.text_message(1901, subject='Notmuch mtime numbat')
        self.other.deliver('Nm', raw, date=time.time() - 400 * 86400)
        self.wait_moved('Nm', before)
        out = run(['notmuch', 'new'], env)
        self.assertIn('Added 1 new message', out)
        self.assertEqual(count('id:' + msgid(raw)), 1)

    @unittest.skipUnless(shutil.which('mu'), 'mu not installed')
    def test_mu_lazy_check_sees_a_flag(self):
        home = self.home()
        env = dict(os.environ, HOME=home, XDG_CACHE_HOME=home)
        muhome = '--muhome=' + os.path.join(home, 'mu')
        run(['mu', 'init', muhome, '--maildir=' + self.p('Mu')], env)
        run(['mu', 'index', muhome], env)

        def flagged():
            r = subprocess.run(['mu', 'find', muhome, '--fields=i',
                                'flag:flagged'], env=env,
                               capture_output=True, text=True, timeout=60)
            return r.stdout.split()
        self.assertEqual(flagged(), [])
        before = max(self.mtimes('Mu'))
        next_second()
        uid = self.uids['Mu'][1]
        self.other.flag('Mu', uid)
        self.wait_moved('Mu', before)
        next_second()  # mu skips a directory not newer than its index
        run(['mu', 'index', muhome, '--lazy-check'], env)
        self.assertEqual(flagged(), [msgid(self.raws['Mu'][uid])])

    @unittest.skipUnless(shutil.which('neomutt') and shutil.which('tmux'),
                         'neomutt or tmux not installed')
    def test_neomutt_shows_a_flag_without_restarting(self):
        home = self.home()
        rc = os.path.join(home, 'muttrc')
        with open(rc, 'w') as f:
            f.write('set mbox_type=Maildir\nset folder=%s\n'
                    'set mail_check=1\nset timeout=1\n'
                    'set sort=date\nset mark_old=no\n'
                    'set index_format="[%%Z] %%s"\n' % self.p())
        sock = 'mailfs-mtime-%d' % os.getpid()
        env = dict(os.environ, HOME=home)
        tmux = ['tmux', '-L', sock]
        subprocess.run(tmux + ['new-session', '-d', '-x', '160', '-y', '40',
                               'neomutt -n -F %s -f %s' %
                               (rc, self.p('Mutt'))], env=env, check=True,
                       timeout=30)
        self.addCleanup(subprocess.run, tmux + ['kill-server'],
                        capture_output=True)

        def line(subject):
            out = subprocess.run(tmux + ['capture-pane', '-p'],
                                 capture_output=True, text=True,
                                 timeout=10).stdout
            found = [l for l in out.splitlines() if subject in l]
            return found[0] if found else ''
        subject = 'Mtime Mutt 2'
        self.assertTrue(within(lambda: line(subject), 15), line(subject))
        self.assertNotIn('!', line(subject).split(']')[0])
        next_second()
        self.other.flag('Mutt', self.uids['Mutt'][2])
        # neomutt rereads cur/ when its mtime moved: the flag shows.
        self.assertTrue(within(lambda: '!' in line(subject).split(']')[0],
                               self.WAIT + 5), line(subject))
        self.assertNotIn('!', line('Mtime Mutt 1').split(']')[0])

    def test_dot_entries_and_links(self):
        # What find, notmuch and ls rely on besides mtimes: . and .. are
        # listed, and a directory's st_nlink counts its subdirectories
        # (notmuch skips a directory of 2 links whose mtime did not move).
        self.assertEqual(sorted(os.listdir(self.p('Minc'))),
                         ['cur', 'new', 'tmp'])
        for d in (self.p('Minc'), self.p('Minc', 'cur'), self.p()):
            ls = run(['ls', '-a', d]).split()
            self.assertEqual(ls[:2], ['.', '..'], d)
        self.assertEqual(os.stat(self.p('Minc')).st_nlink, 5)
        self.assertEqual(os.stat(self.p('Minc', 'cur')).st_nlink, 2)
        self.assertEqual(os.stat(self.p('Minc', 'new')).st_nlink, 2)
        self.assertEqual(os.stat(self.p('Deep')).st_nlink, 3)  # \Noselect
        self.assertEqual(os.stat(self.p('Deep', 'Sub')).st_nlink, 5)
        self.assertEqual(os.stat(self.p()).st_nlink,
                         2 + len(os.listdir(self.p())))
        self.assertGreater(mtime(self.p('Deep')), 0)
        self.assertGreater(mtime(self.p()), 0)
        # "." is the directory itself, ".." its parent.
        out = run(['ls', '-ai', self.p('Minc', 'cur')]).split()
        inos = dict(zip(out[1::2], (int(x) for x in out[0::2])))
        self.assertEqual(inos['.'], os.stat(self.p('Minc', 'cur')).st_ino)
        self.assertEqual(inos['..'], os.stat(self.p('Minc')).st_ino)


class PushMtimeTest(MtimeBase, unittest.TestCase):
    """With push (NOTIFY): another client's change shows within 2 s; the
    kernel keeps attributes for an hour, so only push can tell it."""

    OPTIONS = ('refresh=3600', 'connections=4')
    WAIT = 2.0
    PUSH = True


class NoPushMtimeTest(MtimeBase, unittest.TestCase):
    """Without push (connections=2): another client's change shows within
    `refresh` (2 s), found by the folder list's STATUS."""

    OPTIONS = ('refresh=2', 'connections=2')
    WAIT = 3.5  # refresh, and the poll and listing round trips
    PUSH = False


@unittest.skipUnless(shutil.which('minc'), 'mblaze not installed')
class MincTest(unittest.TestCase):
    """mblaze's minc moves what is in new/ to cur/. new/ holds a message
    delivered through the mount until the folder's next listing (then it
    is listed in cur/ under its own name): here no listing comes
    (refresh=3600, no push), so minc finds it there."""

    def test_minc_moves_new_mail_to_cur(self):
        s = MailServer().start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        s.append_many(USER, 'INBOX', [corpus.text_message(i)
                                      for i in range(3)])
        m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                  s.users[USER], cafile=s.cafile,
                  options=['layout=maildir', 'refresh=3600',
                           'connections=2'])
        m.start()
        self.addCleanup(m.umount)
        mb = mailbox.Maildir(m.p('INBOX'), factory=None, create=False)
        self.assertEqual(len(mb.keys()), 3)
        dirs = [m.p('INBOX'), m.p('INBOX', 'cur'), m.p('INBOX', 'new')]
        before = mtime(dirs[1])
        next_second()
        raw = corpus.text_message(1902, subject='Minc mtime')
        key = mb.add(raw)
        self.assertEqual(os.listdir(m.p('INBOX', 'new')), [key])
        self.assertTrue(within(lambda: all(mtime(d) > before
                                           for d in dirs), 2))
        delivered = mtime(dirs[1])
        next_second()
        out = run(['minc', m.p('INBOX')])
        self.assertEqual(out.split(), [m.p('INBOX', 'cur', key + ':2,')])
        self.assertEqual(os.listdir(m.p('INBOX', 'new')), [])
        self.assertIn(key + ':2,', os.listdir(m.p('INBOX', 'cur')))
        self.assertTrue(within(lambda: all(mtime(d) > delivered
                                           for d in dirs), 2))
        # Nothing but the name changed: no flag on the server.
        flags = s.flags(USER, 'INBOX')
        self.assertEqual(len(flags), 4)
        self.assertTrue(all(not (f - {'\\Recent'}) for f in
                            flags.values()), flags)


class FirstLookTest(unittest.TestCase):
    """A fresh mount, nothing else touching the folder: Python's
    mailbox.Maildir lists every message at its first look (it reads
    nothing while the mtimes are not above 0)."""

    N = 3000

    def test_python_mailbox_lists_everything_at_first_look(self):
        s = MailServer().start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        uids = s.append_many(USER, 'INBOX', [corpus.text_message(i)
                                             for i in range(self.N)])
        for options in (['layout=maildir'],
                        ['layout=maildir', 'connections=2',
                         'disk_cache=0']):
            m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                      s.users[USER], cafile=s.cafile, options=options)
            m.start()
            self.addCleanup(m.umount)
            mb = mailbox.Maildir(m.p('INBOX'), factory=None, create=False)
            self.assertEqual(len(mb.keys()), len(uids), options)
            for d in ('INBOX', 'INBOX/cur', 'INBOX/new', 'INBOX/tmp'):
                self.assertGreater(mtime(m.p(d)), 0, d)
            m.umount()


class RemountTest(unittest.TestCase):
    """A remount with the disk cache kept (its own XDG_CACHE_HOME) never
    shows an earlier mtime: not after another client's change, not after
    one made through the mount; it shows the same one for a folder that
    did not change, and a later one for a folder that changed while
    nothing was mounted."""

    def setUp(self):
        self.server = s = MailServer().start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        self.uids = s.append_many(USER, 'INBOX', [corpus.text_message(i)
                                                  for i in range(5)])
        s.create_folder(USER, 'Quiet')
        s.append_many(USER, 'Quiet', [corpus.text_message(50 + i)
                                      for i in range(3)])
        self.cache = tempfile.mkdtemp(prefix='mailfs-mtime-cache-')
        self.addCleanup(shutil.rmtree, self.cache, True)
        self.other = Other(s)

    def mount(self, layout):
        m = Mount('imaps://%s@localhost:%d' % (USER, self.server.imaps_port),
                  self.server.users[USER], cafile=self.server.cafile,
                  options=list(layout) + ['connections=4'],
                  env={'XDG_CACHE_HOME': self.cache})
        m.start()
        self.addCleanup(m.umount)
        return m

    def check(self, layout, sub):
        def at(m, folder):
            return mtime(m.p(folder, *sub))
        m = self.mount(layout)
        first = at(m, 'INBOX')
        quiet = at(m, 'Quiet')
        os.listdir(m.p('INBOX', *sub))
        os.listdir(m.p('Quiet', *sub))
        time.sleep(0.5)  # push reaches IDLE
        next_second()
        self.other.flag('INBOX', self.uids[1])
        self.assertTrue(within(lambda: at(m, 'INBOX') > first, 2.0))
        flagged = at(m, 'INBOX')
        next_second()
        # A change through the mount, then unmount at once: the disk
        # cache has it.
        names = sorted(os.listdir(m.p('INBOX', *sub)))
        victim = m.p('INBOX', *(sub + [names[0]]))
        if sub:
            os.rename(victim, victim.split(':2,')[0] + ':2,F')
        else:
            os.setxattr(victim, 'user.mail.flags', b'\\Flagged')
        self.assertTrue(within(lambda: at(m, 'INBOX') > flagged, 2.0))
        time.sleep(1.5)  # push reports it too: the listing that follows
        own = at(m, 'INBOX')
        self.assertEqual(at(m, 'Quiet'), quiet)
        m.umount()

        m = self.mount(layout)
        self.assertEqual(at(m, 'INBOX'), own)  # before anything listed
        self.assertEqual(at(m, 'Quiet'), quiet)
        os.listdir(m.p('INBOX', *sub))
        os.listdir(m.p('Quiet', *sub))
        time.sleep(1.0)
        self.assertEqual(at(m, 'INBOX'), own)
        self.assertEqual(at(m, 'Quiet'), quiet)
        m.umount()

        # A change while nothing was mounted: a later mtime at once.
        next_second()
        self.other.expunge('INBOX', self.uids[3])
        m = self.mount(layout)
        self.assertGreater(at(m, 'INBOX'), own)
        self.assertEqual(at(m, 'Quiet'), quiet)
        m.umount()

    def test_remount_maildir_layout(self):
        self.check(['layout=maildir'], ['cur'])

    def test_remount_default_layout(self):
        self.check([], [])


class DefaultLayoutTest(unittest.TestCase):
    """The default layout has the same rule: a folder's directory moves
    when its content changes (not when its newest message is newer), and
    \\Noselect parents and empty folders show a time, never 1970."""

    def test_folder_directory_mtime(self):
        s = MailServer().start()
        self.addCleanup(s.cleanup)
        self.addCleanup(s.stop)
        uids = s.append_many(USER, 'INBOX', [corpus.text_message(i)
                                             for i in range(3)])
        s.create_folder(USER, 'Empty')
        s.create_folder(USER, 'Parent.Child')
        m = Mount('imaps://%s@localhost:%d' % (USER, s.imaps_port),
                  s.users[USER], cafile=s.cafile,
                  options=['connections=2', 'refresh=2'])
        m.start()
        self.addCleanup(m.umount)
        for d in ('INBOX', 'Empty', 'Parent', 'Parent/Child'):
            self.assertGreater(mtime(m.p(d)), 0, d)
        os.listdir(m.p('INBOX'))
        before = mtime(m.p('INBOX'))
        time.sleep(2.5)
        self.assertEqual(mtime(m.p('INBOX')), before)
        next_second()
        Other(s).flag('INBOX', uids[0], '\\Seen')
        self.assertTrue(within(lambda: mtime(m.p('INBOX')) > before, 3.5))
        # A subfolder made through the mount moves its parent.
        parent = mtime(m.p('Parent'))
        next_second()
        os.mkdir(m.p('Parent', 'New'))
        self.assertTrue(within(lambda: mtime(m.p('Parent')) > parent, 3.5))


if __name__ == '__main__':
    unittest.main()
