"""Throwaway X.509 material for tests, made with the openssl command line tool.

Every test server needs a certificate that a client can verify against a CA
file that the test controls.  Keys are EC P-256: generating one takes a few
milliseconds, unlike RSA or DH parameters.
"""

import os
import subprocess

__all__ = ['CertAuthority']


def _openssl(*args, cwd=None, stdin=None):
    """Run one openssl command; raise with its stderr if it fails."""
    proc = subprocess.run(['openssl', *args], cwd=cwd, input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError('openssl %s failed: %s' % (
            ' '.join(args), proc.stderr.decode(errors='replace')))
    return proc.stdout


class CertAuthority:
    """A self-signed CA in a directory, able to issue server certificates.

    `cafile` is the PEM file a client must trust.  `issue()` makes a leaf
    certificate signed by this CA and returns (certfile, keyfile).
    """

    def __init__(self, directory, name='mailfs test CA'):
        """Create the CA key and certificate under `directory`/`name`.*"""
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        stem = name.replace(' ', '_')
        self.keyfile = os.path.join(directory, stem + '.key')
        self.cafile = os.path.join(directory, stem + '.pem')
        self._serial = 0
        _openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout',
                 '-out', self.keyfile)
        _openssl('req', '-x509', '-new', '-key', self.keyfile, '-sha256',
                 '-subj', '/CN=' + name, '-days', '7',
                 '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
                 '-out', self.cafile)

    def issue(self, name='localhost', dns=('localhost',), ips=('127.0.0.1',)):
        """Issue a server certificate for `name` with the given SANs.

        Returns (certfile, keyfile), both PEM, in the CA's directory.
        """
        self._serial += 1
        stem = os.path.join(self.directory, '%s-%d' % (name, self._serial))
        key, csr, crt, ext = (stem + s for s in ('.key', '.csr', '.pem',
                                                  '.ext'))
        sans = ['DNS:' + d for d in dns] + ['IP:' + i for i in ips]
        with open(ext, 'w') as f:
            f.write('subjectAltName=%s\n' % ','.join(sans))
            f.write('basicConstraints=CA:FALSE\n')
            f.write('keyUsage=critical,digitalSignature,keyAgreement\n')
            f.write('extendedKeyUsage=serverAuth\n')
        _openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout',
                 '-out', key)
        _openssl('req', '-new', '-key', key, '-subj', '/CN=' + name,
                 '-out', csr)
        _openssl('x509', '-req', '-in', csr, '-CA', self.cafile,
                 '-CAkey', self.keyfile, '-set_serial',
                 str(1000 + self._serial), '-days', '7', '-sha256',
                 '-extfile', ext, '-out', crt)
        return crt, key
