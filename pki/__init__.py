"""The JPKI certificate authority: profiles, CA, certificate store, CRL shards, OCSP, verification."""
