"""OCSP: the responder core, pre-generated responses and the HTTP servers."""

from pki.ocsp.pregenerate import PregenerateReport, Pregenerator
from pki.ocsp.responder import OcspResponder, OcspResult, ResponderIdentity

__all__ = ["OcspResponder", "OcspResult", "PregenerateReport", "Pregenerator",
           "ResponderIdentity"]
