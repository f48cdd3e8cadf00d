"""Integration tests against a real Dovecot and a real FUSE mount.

Every mailfs these tests start sees the clock of a machine that booted
a few seconds ago (MAILFS_TEST_UPTIME, read by src/util/clock.c), whatever the
real uptime: CI may run on a machine booted minutes ago, and the suite
must catch a "long ago" that the monotonic clock's small values turn into
"a moment ago" on any machine, not only on a fresh one. A test that wants
the real clock sets MAILFS_TEST_UPTIME to '' in its mount's env."""

import os

os.environ.setdefault('MAILFS_TEST_UPTIME', '5')
