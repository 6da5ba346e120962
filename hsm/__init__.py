"""Key management over PKCS#11: keys that never leave the HSM, named by pkcs11: URIs."""
