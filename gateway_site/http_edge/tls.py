"""TLS terminated in Daphne (``manage.py serve --tls-cert --tls-key``, or the settings
``GATEWAY_TLS_CERT_FILE`` / ``GATEWAY_TLS_KEY_FILE`` under ``daphne`` itself): the gateway's HTTP
factory wrapped in Twisted's TLS layer, on the socket the worker was handed. TLS 1.2 at least;
1.3 when the client offers it (OpenSSL picks the highest both speak). The certificate file may
hold the chain after the leaf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from OpenSSL import crypto
from twisted.internet import ssl
from twisted.protocols.tls import TLSMemoryBIOFactory

PEM_CERTIFICATE_END = b"-----END CERTIFICATE-----"


def server_options(cert_file: str, key_file: str) -> ssl.CertificateOptions:
    """Twisted's TLS options of the certificate (and chain) and key in those PEM files."""
    chain_pem = Path(cert_file).read_bytes()
    blocks = [
        block + PEM_CERTIFICATE_END
        for block in chain_pem.split(PEM_CERTIFICATE_END)
        if b"-----BEGIN" in block
    ]
    certificates = [crypto.load_certificate(crypto.FILETYPE_PEM, block) for block in blocks]
    if not certificates:
        raise ValueError(f"{cert_file} holds no PEM certificate")
    key = crypto.load_privatekey(crypto.FILETYPE_PEM, Path(key_file).read_bytes())
    return ssl.CertificateOptions(
        privateKey=key,
        certificate=certificates[0],
        extraCertChain=certificates[1:],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def tls_factory(factory: Any, options: ssl.CertificateOptions) -> TLSMemoryBIOFactory:
    # CertificateOptions provides IOpenSSLContextFactory (declared with zope, unseen by mypy).
    return TLSMemoryBIOFactory(options, False, factory)  # type: ignore[arg-type]
