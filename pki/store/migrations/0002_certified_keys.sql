-- The SHA-256 of each certificate's SubjectPublicKeyInfo (lower-case hex), so that a
-- key already certified is found without reading every certificate (`ca issue` and
-- `ca issue-batch` refuse to certify one key twice). Rows of stores created before this
-- migration are filled in by CertificateStore.migrate from their DER.
ALTER TABLE certificates ADD COLUMN key_sha256 TEXT;
CREATE INDEX certificates_key ON certificates (key_sha256);
