"""The README's commands on a bare machine, simulated: the dependency
queries (pkg-config) fail until the install step (make deps) has run, as
they do on a fresh Debian 12 before apt-get installed libfuse3-dev."""

import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), '..', '..'))


class BareMachine:
    """A pkg-config that answers only once `installed` exists, and an
    install step that creates it and logs that it ran."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='mailfs-bare-')
        self.installed = os.path.join(self.dir, 'installed')
        self.log = os.path.join(self.dir, 'log')
        self.pkg_config = os.path.join(self.dir, 'pkg-config')
        real = shutil.which('pkg-config')
        with open(self.pkg_config, 'w') as f:
            f.write('#!/bin/sh\n'
                    f'echo "pkg-config $*" >> {self.log}\n'
                    f'[ -e {self.installed} ] || exit 1\n'
                    f'exec {real} "$@"\n')
        os.chmod(self.pkg_config, 0o755)
        self.deps = os.path.join(self.dir, 'deps')
        with open(self.deps, 'w') as f:
            f.write('#!/bin/sh\n'
                    f'echo deps >> {self.log}\n'
                    f'touch {self.installed}\n')
        os.chmod(self.deps, 0o755)
        self.demo = os.path.join(self.dir, 'demo')
        with open(self.demo, 'w') as f:
            # Stands in for the server start only: it proves the binary
            # was built and runs.
            f.write('#!/bin/sh\n'
                    f'"{self.dir}/build/mailfs" --version >> {self.log}\n')
        os.chmod(self.demo, 0o755)

    def make(self, *targets):
        return subprocess.run(
            ['make', '-C', REPO, 'B=' + os.path.join(self.dir, 'build'),
             'PKG_CONFIG=' + self.pkg_config, 'DEPS=' + self.deps,
             'DEMO=' + self.demo] + list(targets),
            capture_output=True, text=True, timeout=600)

    def logged(self):
        with open(self.log) as f:
            return f.read().splitlines()


class TestBareMachine(unittest.TestCase):
    def setUp(self):
        self.bare = BareMachine()
        self.addCleanup(shutil.rmtree, self.bare.dir, True)

    def test_make_demo_builds_in_one_go_on_a_bare_machine(self):
        r = self.bare.make('demo')
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
        log = self.bare.logged()
        self.assertIn('deps', log)
        # Every query that the build used ran after the install step.
        first_deps = log.index('deps')
        self.assertFalse(any(line.startswith('pkg-config')
                             for line in log[:first_deps]), log)
        self.assertTrue(any(line.startswith('mailfs ') for line in log),
                        log)

    def test_without_the_install_step_the_build_fails(self):
        # The simulation is real: with no deps the headers are not found.
        r = subprocess.run(
            ['make', '-C', REPO,
             'B=' + os.path.join(self.bare.dir, 'build'),
             'PKG_CONFIG=' + self.bare.pkg_config,
             os.path.join(self.bare.dir, 'build', 'obj', 'fsops.o')],
            capture_output=True, text=True, timeout=600)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('fuse.h', r.stderr)


if __name__ == '__main__':
    unittest.main()
