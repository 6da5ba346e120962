"""OCSP: the responder core and its HTTP server."""

from pki.ocsp.responder import OcspResponder, OcspResult, ResponderIdentity

__all__ = ["OcspResponder", "OcspResult", "ResponderIdentity"]
