"""pytest fixtures: ``simulator`` (quiet, ManualClock, seed 0), the ``make_simulator`` factory, and
``tls_certificate`` (a self-signed certificate for 127.0.0.1, for HTTPS tests)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .clock import ManualClock
from .server import Simulator


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    """Factory: ``make_simulator(config=None, **kwargs)`` starts a Simulator; all are stopped at teardown.

    Without an explicit ``clock`` each simulator gets its own ManualClock, so tests never depend on wall time.
    """
    started: list[Simulator] = []

    def factory(config: Any = None, **kwargs: Any) -> Simulator:
        kwargs.setdefault("clock", ManualClock())
        sim = Simulator(config, **kwargs).start()
        started.append(sim)
        return sim

    yield factory
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    """A started quiet simulator with a ManualClock and seed 0."""
    return make_simulator(seed=0)


@pytest.fixture
def tls_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 and its key, as PEM files: (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(private, hashes.SHA256())
    )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key
