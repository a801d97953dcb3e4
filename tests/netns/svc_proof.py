#!/usr/bin/env python3
"""The key proof of lib/keyproof.h, computed independently of natmesh's C:
python's cryptography for X25519 and hashlib's BLAKE2b.

    svc_proof.py PRIVATE_KEY_FILE CHALLENGE_B64 SERVICE_KEY_B64

prints the MAC (base64) that answers the challenge with the device key in
PRIVATE_KEY_FILE (a `wg genkey` file)."""
import base64
import hashlib
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

LABEL = b"natmesh key proof v1"


def mac(priv_raw: bytes, challenge: bytes, service_pub: bytes) -> bytes:
    priv = X25519PrivateKey.from_private_bytes(priv_raw)
    device_pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = priv.exchange(X25519PublicKey.from_public_bytes(service_pub))
    k = hashlib.blake2b(LABEL + shared + device_pub + service_pub, digest_size=32).digest()
    return hashlib.blake2b(challenge + device_pub, digest_size=32, key=k).digest()


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        priv = base64.b64decode(f.read().strip())
    out = mac(priv, base64.b64decode(sys.argv[2]), base64.b64decode(sys.argv[3]))
    print(base64.b64encode(out).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
