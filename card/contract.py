"""The APDU contract between the host and the card, written once for Python.

`card/applet/src/main/java/jp/mynacard/common/Contract.java` holds the same
numbers for the applets; `tests/test_contract.py` checks that the two agree.
Facts come from `docs/card.md`; what the real card does not tell
(issuer authentication, personalisation, life cycle) is this project's own
design and is marked so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# --- Application identifiers -------------------------------------------------

AID_JPKI = bytes.fromhex("D392F000260100000001")  # 公的個人認証AP
AID_TEXT = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP (card-info input support)
AID_SURFACE = bytes.fromhex("D3921000310001010402")  # 券面AP (card surface)
AID_JUKI = bytes.fromhex("D3921000310001010401")  # 住基AP (resident registry)
AID_COMMON = bytes.fromhex("D3921000310001010100")  # 共通カードAP (common card application)
# The card manager: the GlobalPlatform ISD AID of the real card (7 bytes), current at
# power-on; selecting it restores the MF-level state. Answers MF-level GET DATA and, by
# project design, life cycle and issuer authentication.
AID_CARD_MANAGER = bytes.fromhex("A0000001510000")
# Example municipal free-area applet (市町村独自サービスエリア): a library card.
# Its own Java package, its own PIN, its own issuer key. (Project design.)
AID_MUNICIPAL_LIBRARY = bytes.fromhex("F04A504C49423031")  # F0 "JPLIB01"

AREA_AIDS = {
    "jpki": AID_JPKI,
    "text": AID_TEXT,
    "surface": AID_SURFACE,
    "juki": AID_JUKI,
    "common": AID_COMMON,
    "municipal-library": AID_MUNICIPAL_LIBRARY,
}

# ATR of the emulated card: the contact ATR OpenSC's JPKI driver matches exactly.
ATR = bytes.fromhex("3BE000FF8131FE4514")

# --- Class and instruction bytes ---------------------------------------------

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80


class Ins(IntEnum):
    SELECT = 0xA4  # 00 A4 04 0C <AID> | 00 A4 02 0C 02 <FID>
    READ_BINARY = 0xB0  # 00 B0 <offset 15 bits | 80|SFI, offset 8 bits> Le
    UPDATE_BINARY = 0xD6  # 00 D6 <offset> Lc data          (issuer)
    VERIFY = 0x20  # 00 20 00 80|SFI [Lc PIN]              (empty: tries left)
    CHANGE_REFERENCE_DATA = 0x24  # 00 24 01 80 Lc <new>   (after VERIFY)
    CHANGE_KEY = 0x32  # 80 32 00 80 Lc <new>  (JICSAP form, 住基AP; accepted by every area)
    RESET_RETRY_COUNTER = 0x2C  # 00 2C 02 80 Lc <new> | 00 2C 03 80  (see below)
    SIGN = 0x2A  # 80 2A 00 80|SFI Lc <DigestInfo> 00 (PKCS#1 v1.5)
    GENERATE_KEY = 0x47  # 00 47 80 00 00 generate | 00 47 81 00 00 read public key
    GET_CHALLENGE = 0x84  # 00 84 00 00 Le (1..256; 16 for issuer authentication)
    EXTERNAL_AUTHENTICATE = 0x82  # 00 82 00 00 10 <AES-CMAC(card key, challenge)>
    GET_DATA = 0xCA  # 00 CA <tag hi> <tag lo> 00
    PUT_DATA = 0xDA  # 00 DA <tag hi> <tag lo> Lc data      (issuer, card manager)
    SET_STATUS = 0xF0  # 80 F0 80 <state>                    (issuer, card manager)
    GET_RESPONSE = 0xC0
    ATTEST_KEY = 0x8A  # 80 8A 00 80|SFI 10 <challenge> 00 → AES-CMAC(card-auth key, ...)  (JPKI)
    READ_RECORD = 0xB2  # 00 B2 <record> <SFI<<3 | 4> Le  (record EFs; 6981 on a transparent one)
    UPDATE_RECORD = 0xDC  # 00 DC <record> <SFI<<3 | 4> Lc data  (issuer)
    INTERNAL_AUTHENTICATE = 0x88  # 00 88 00 80|SFI Lc <DigestInfo> 00 (共通カードAP EF 0019)
    # 80 AE 00 00: text → 9000 (the only area with secure messaging), JPKI/住基 → 6982,
    # 共通/券面 → 66F1; the card-info areas' ciphertext is not emulated (6A80).
    SET_SESSION_KEY = 0xAE
    # 80 FC 00 00: a phone token's "last command" indicator; a physical card answers 6700.
    LAST_COMMAND_INDICATOR = 0xFC


# READ/UPDATE RECORD P2: the low three bits 100 say "P1 is a record number"; SFI in bits 8-4.
RECORD_P2_BY_NUMBER = 0x04


# GENERATE_KEY P1 values (ISO 7816-8 style).
GENERATE_P1_GENERATE = 0x80
GENERATE_P1_READ_PUBLIC = 0x81
RSA_PUBLIC_EXPONENT = 65537
RSA_MODULUS_BYTES = 256

# RESET_RETRY_COUNTER P1 values.
RESET_P1_NEW_VALUE = 0x02  # set a new value and reset the counter
RESET_P1_COUNTER_ONLY = 0x03  # reset the counter, keep the value

SELECT_P1_MF = 0x00  # 00 A4 00 00: 6A86 at MF level, 9000 (nothing changes) in an area
SELECT_P1_BY_FID = 0x02
SELECT_P1_BY_NAME = 0x04
SELECT_P2_NO_RESPONSE = 0x0C

P2_CURRENT_KEY = 0x80  # "the key of the current EF"; 80|SFI names it directly
SIGN_P1_PKCS1_V15 = 0x00
SIGN_MAX_INPUT = 245  # 256 - 11 bytes of PKCS#1 v1.5 padding
PIN_MAX_LENGTH = 16  # VERIFY data field 1..16 bytes (JICSAP 6.4.9(3))

# --- Status words --------------------------------------------------------------


class SW(IntEnum):
    OK = 0x9000
    VERIFICATION_FAILED = 0x63C0  # | tries left in the low nibble; 63C0 = just blocked
    NO_SESSION_KEY = 0x66F1  # SET SESSION KEY in an area without secure messaging
    WRONG_LENGTH = 0x6700
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    COMMAND_INCOMPATIBLE = 0x6981  # e.g. READ BINARY on a key or PIN EF
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_BLOCKED = 0x6983  # issuer key blocked after too many failures
    REFERENCE_DATA_BLOCKED = 0x6984  # PIN blocked (every attempt after the 63C0)
    CONDITIONS_NOT_SATISFIED = 0x6985  # life cycle, PIN not set, no challenge
    NO_CURRENT_EF = 0x6986
    SECURE_MESSAGING_REFUSED = 0x69FC  # SM CLA (08/0C) on anything but SELECT (6882)
    INCORRECT_DATA = 0x6A80  # new PIN in the wrong format, bad data
    FILE_NOT_FOUND = 0x6A82  # unknown AID or EF
    RECORD_NOT_FOUND = 0x6A83  # READ/UPDATE RECORD: no such record
    NOT_ENOUGH_SPACE = 0x6A84  # UPDATE BINARY past the file's end
    INCORRECT_P1P2 = 0x6A86
    DATA_NOT_FOUND = 0x6A88  # GET DATA tag absent, key not generated
    OFFSET_OUT_OF_RANGE = 0x6B00  # READ BINARY offset at or past the end
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00


# --- Life cycle (project design; GET DATA tag DF71 on the card manager) --------


class LifeCycle(IntEnum):
    BLANK = 0x01  # issuer may personalise
    PERSONALISED = 0x02  # issuer may still personalise
    ISSUED = 0x03  # locked against personalisation; holder must set PINs
    ACTIVE = 0x04  # every required PIN set
    TERMINATED = 0x05  # abolished: only SELECT and GET DATA answer


# --- GET DATA / PUT DATA tags on the card manager -------------------------------


class Tag(IntEnum):
    ISSUER_ID = 0x0042  # 16-byte key reference of the issuer (PUT DATA by the issuer)
    CARD_SERIAL = 0x0045  # 15 ASCII digits, set at manufacture
    CARD_RECOGNITION = 0x0066  # GlobalPlatform card recognition data (fixed)
    INTERMEDIATE_KEY_ID = 0x00F7  # 16-byte ID of the key that signs CHAIN_LOWER
    CHAIN_UPPER = 0x00F8  # CV certificate, root → intermediate (568 bytes, extended Le)
    CHAIN_LOWER = 0x7F21  # CV certificate, intermediate → card key (568 bytes, extended Le)
    MUNICIPALITY_CODE = 0x00F0  # 5 ASCII digits (PUT DATA by the issuer)
    EXPIRY = 0x00F2  # 8 ASCII digits YYYYMMDD (PUT DATA by the issuer)
    CONTACT_ATR = 0x5F51  # the ATR without TS
    LIFE_CYCLE = 0xDF71  # 1 byte, LifeCycle
    PIN_STATUS = 0xDF72  # 2 bytes: required-PIN bits, set-PIN bits (PinBit)


class PinBit(IntEnum):
    """Bits of the card-wide required/set PIN masks (GET DATA DF72)."""

    JPKI_AUTH = 0x01
    JPKI_SIGN = 0x02
    TEXT = 0x04
    JUKI = 0x08
    COMMON = 0x10  # the 共通カードAP's own copy of the resident-registry PIN


KEY_ID_LENGTH = 16  # key IDs and key references
CV_CERT_LENGTH = 568  # 7F21 82 02 33 { 5F4E 82 01 29 ..., 5F37 82 01 00 ... } with RSA-2048
# GET DATA 0066: GlobalPlatform card recognition data 66 { 73 { GP OID, GP 2.2.1, card
# identification scheme } }. No secure channel protocol is advertised: mynacard's issuer
# authentication is its own (below).
CARD_RECOGNITION_DATA = bytes.fromhex(
    "6624" "7322" "06072A864886FC6B01" "600C060A2A864886FC6B02020201" "6309" "06072A864886FC6B03")

# --- Issuer authentication (project design) -----------------------------------
# card key  = AES-128-ECB(master key, serial(15 ASCII digits) || 0x80)
# cryptogram = AES-CMAC(card key, the 16-byte challenge from GET CHALLENGE)
# The challenge is single-use; a wrong cryptogram answers 63Cx, blocked: 6983.
ISSUER_CHALLENGE_LENGTH = 16
ISSUER_AUTH_TRIES = 10
SERIAL_LENGTH = 15
# The factory key of emulated cards (GlobalPlatform-style test key 40..4F).
TEST_ISSUER_MASTER_KEY = bytes(range(0x40, 0x50))
# Both per-card keys come from the issuer master key, separated by the byte after the serial.
ISSUER_KEY_DOMAIN = 0x80  # the issuer key (EXTERNAL AUTHENTICATE)
CARD_AUTH_KEY_DOMAIN = 0x81  # the card-authentication key (ATTEST KEY)

# --- Key attestation (project design) -------------------------------------------
# MAC = AES-CMAC(card-auth key, label || serial(15) || AID length(1) || AID || key FID(2) ||
#                exponent(3: 01 00 01) || modulus(256) || challenge(16)),
# computed by the JPKI applet over the public key in its own key slot.
KEY_ATTESTATION_LABEL = b"MYNACARD-KEY-ATTEST-1"
KEY_ATTESTATION_P1 = 0x00
KEY_ATTESTATION_CHALLENGE_LENGTH = 16
KEY_ATTESTATION_MAC_LENGTH = 16

# --- Files ---------------------------------------------------------------------


class Access(IntEnum):
    FREE = 0
    NEVER = 1  # key EFs: never readable
    CREDENTIAL = 2  # one of the listed credentials must be verified


@dataclass(frozen=True)
class PinSpec:
    fid: int
    name: str
    min_length: int
    max_length: int
    charset: str  # "digits" or "upper-alnum"
    tries: int
    holder_pin: bool  # a PIN the holder sets (counts for activation) vs a code the issuer sets
    bit: int = 0  # PinBit for holder PINs


@dataclass(frozen=True)
class FileSpec:
    fid: int
    name: str
    size: int  # fixed size; unwritten bytes read as FF filler
    read: Access
    credentials: tuple[int, ...] = ()  # PIN FIDs any one of which opens the file
    record_length: int = 0  # 0: transparent (READ BINARY); else fixed-length records


@dataclass(frozen=True)
class KeySpec:
    fid: int
    name: str
    pin_fid: int  # 0: no PIN (answers INTERNAL AUTHENTICATE with no credential)


@dataclass(frozen=True)
class AreaSpec:
    name: str
    aid: bytes
    files: tuple[FileSpec, ...]
    pins: tuple[PinSpec, ...]
    keys: tuple[KeySpec, ...] = ()

    def file(self, fid: int) -> FileSpec:
        for f in self.files:
            if f.fid == fid:
                return f
        raise KeyError(f"{self.name} has no file {fid:04X}")

    def pin(self, fid: int) -> PinSpec:
        for p in self.pins:
            if p.fid == fid:
                return p
        raise KeyError(f"{self.name} has no PIN {fid:04X}")


# JPKI-AP
JPKI_SIGN_CERT = 0x0001
JPKI_SIGN_CA_CERT = 0x0002
JPKI_TOKEN_INFO = 0x0006
JPKI_CERT_AVAILABILITY = 0x0008
JPKI_AUTH_CERT = 0x000A
JPKI_AUTH_CA_CERT = 0x000B
JPKI_AUTH_KEY = 0x0017
JPKI_AUTH_PIN = 0x0018
JPKI_SIGN_KEY = 0x001A
JPKI_SIGN_PIN = 0x001B
TOKEN_INFO_LABEL = b"JPKIAPICCTOKEN2"
# Shown by the real card, outside the AreaSpec (nothing writes or reads them): an
# unreadable EF of unknown use and the terminal-CA key reference of `80 A2` (6982 on READ).
JPKI_UNKNOWN_PROTECTED = 0x0009
JPKI_TERMINAL_KEY_REFERENCE = 0x0016

JPKI = AreaSpec(
    name="jpki",
    aid=AID_JPKI,
    files=(
        FileSpec(JPKI_SIGN_CERT, "signing certificate", 3072, Access.CREDENTIAL, (JPKI_SIGN_PIN,)),
        FileSpec(JPKI_SIGN_CA_CERT, "signing CA certificate", 3072, Access.FREE),
        FileSpec(JPKI_TOKEN_INFO, "token info", 160, Access.FREE),
        FileSpec(JPKI_CERT_AVAILABILITY, "certificate availability", 3, Access.FREE),
        FileSpec(JPKI_AUTH_CERT, "user-authentication certificate", 3072, Access.FREE),
        FileSpec(JPKI_AUTH_CA_CERT, "user-authentication CA certificate", 3072, Access.FREE),
    ),
    pins=(
        PinSpec(JPKI_AUTH_PIN, "user-authentication PIN", 4, 4, "digits", 3, True,
                PinBit.JPKI_AUTH),
        PinSpec(JPKI_SIGN_PIN, "signing password", 6, 16, "upper-alnum", 5, True,
                PinBit.JPKI_SIGN),
    ),
    keys=(
        KeySpec(JPKI_AUTH_KEY, "user-authentication key", JPKI_AUTH_PIN),
        KeySpec(JPKI_SIGN_KEY, "signing key", JPKI_SIGN_PIN),
    ),
)

# 券面事項入力補助AP
TEXT_MY_NUMBER = 0x0001
TEXT_BASIC_FOUR = 0x0002
TEXT_INTEGRITY = 0x0003
TEXT_CV_CERT = 0x0004
TEXT_AP_BASIC = 0x0005
TEXT_PIN = 0x0011
TEXT_CODE_A = 0x0014
TEXT_CODE_B = 0x0015
# Shown by the real card, outside the AreaSpec: the session-key encryption key
# `A1 { 90 e, 91 n }` and the signed card key `FF50 { DF51 key, DF52 signature }` (both
# opened by the PIN, code A or code B), 16 bytes of FF, and a key reference that is blocked
# on every issued card (empty VERIFY 63C0, VERIFY 6984).
TEXT_SESSION_KEY = 0x0006
TEXT_CARD_KEY = 0x0007
TEXT_UNKNOWN = 0x0008
TEXT_BLOCKED_KEY = 0x0012
TEXT_SESSION_KEY_SIZE = 269
TEXT_CARD_KEY_SIZE = 536

TEXT = AreaSpec(
    name="text",
    aid=AID_TEXT,
    files=(
        FileSpec(TEXT_MY_NUMBER, "My Number", 17, Access.CREDENTIAL, (TEXT_PIN, TEXT_CODE_A)),
        FileSpec(TEXT_BASIC_FOUR, "basic four facts", 1024, Access.CREDENTIAL,
                 (TEXT_PIN, TEXT_CODE_B)),
        FileSpec(TEXT_INTEGRITY, "integrity record", 336, Access.CREDENTIAL,
                 (TEXT_PIN, TEXT_CODE_A, TEXT_CODE_B)),
        FileSpec(TEXT_CV_CERT, "CV certificate", 568, Access.FREE),
        FileSpec(TEXT_AP_BASIC, "AP basic data", 256, Access.FREE),
    ),
    pins=(
        PinSpec(TEXT_PIN, "card-info input support PIN", 4, 4, "digits", 3, True, PinBit.TEXT),
        PinSpec(TEXT_CODE_A, "verification code A", 12, 12, "digits", 10, False),
        PinSpec(TEXT_CODE_B, "verification code B", 14, 14, "digits", 10, False),
    ),
)

# 券面AP
SURFACE_AGE_RECORD = 0x0001
SURFACE_FACE = 0x0002
SURFACE_AP_BASIC = 0x0003
SURFACE_CV_CERT = 0x0004
SURFACE_MY_NUMBER_IMAGE = 0x0005
SURFACE_BIRTH_KEY = 0x0011
SURFACE_CODE_B = 0x0012
SURFACE_CODE_A = 0x0013
SURFACE_UNKNOWN = 0x0006  # 16 bytes of FF, opened by code A or B (outside the AreaSpec)

SURFACE = AreaSpec(
    name="surface",
    aid=AID_SURFACE,
    files=(
        FileSpec(SURFACE_AGE_RECORD, "age record", 1024, Access.CREDENTIAL,
                 (SURFACE_BIRTH_KEY,)),
        FileSpec(SURFACE_FACE, "card face", 8192, Access.CREDENTIAL,
                 (SURFACE_CODE_A, SURFACE_CODE_B)),
        FileSpec(SURFACE_AP_BASIC, "AP basic data", 512, Access.FREE),
        FileSpec(SURFACE_CV_CERT, "CV certificate", 568, Access.FREE),
        FileSpec(SURFACE_MY_NUMBER_IMAGE, "My Number image", 2048, Access.CREDENTIAL,
                 (SURFACE_CODE_A,)),
    ),
    pins=(
        PinSpec(SURFACE_BIRTH_KEY, "birth-date key", 6, 6, "digits", 10, False),
        PinSpec(SURFACE_CODE_B, "verification code B", 14, 14, "digits", 10, False),
        PinSpec(SURFACE_CODE_A, "verification code A", 12, 12, "digits", 10, False),
    ),
)

# 住基AP
JUKI_RESIDENT_CODE = 0x0001  # DF01 0B <11 ASCII digits>, FF filler (project design)
JUKI_KEY_REFERENCE = 0x0002
JUKI_PIN = 0x001C

JUKI = AreaSpec(
    name="juki",
    aid=AID_JUKI,
    files=(
        FileSpec(JUKI_RESIDENT_CODE, "resident code", 32, Access.CREDENTIAL, (JUKI_PIN,)),
        FileSpec(JUKI_KEY_REFERENCE, "key reference", 16, Access.FREE),
    ),
    pins=(PinSpec(JUKI_PIN, "resident-registry PIN", 4, 4, "digits", 3, True, PinBit.JUKI),),
)

# 共通カードAP: a record EF (no credential), the key reference shared with the 住基AP, a key
# that answers INTERNAL AUTHENTICATE with no credential, and its own resident-registry PIN.
COMMON_CARD_INFO = 0x0001  # record 1: 01 1C serial(15) municipality(5) expiry(YYYYMMDD)
COMMON_KEY_REFERENCE = 0x0002
COMMON_AUTH_KEY = 0x0019
COMMON_PIN = 0x001C
COMMON_CARD_INFO_RECORD_LENGTH = 30

COMMON = AreaSpec(
    name="common",
    aid=AID_COMMON,
    files=(
        FileSpec(COMMON_CARD_INFO, "card-info record", 30, Access.FREE,
                 record_length=COMMON_CARD_INFO_RECORD_LENGTH),
        FileSpec(COMMON_KEY_REFERENCE, "key reference", 16, Access.FREE),
    ),
    pins=(PinSpec(COMMON_PIN, "resident-registry PIN (common card copy)", 4, 4, "digits", 3,
                  True, PinBit.COMMON),),
    keys=(KeySpec(COMMON_AUTH_KEY, "internal-authentication key", 0),),
)

# Municipal free area example: a library card (own package, own issuer key).
LIBRARY_NUMBER = 0x0001  # DF01 <len> <ASCII number>, FF filler
LIBRARY_PIN = 0x0011

MUNICIPAL_LIBRARY = AreaSpec(
    name="municipal-library",
    aid=AID_MUNICIPAL_LIBRARY,
    files=(FileSpec(LIBRARY_NUMBER, "library-card number", 32, Access.CREDENTIAL,
                    (LIBRARY_PIN,)),),
    pins=(PinSpec(LIBRARY_PIN, "library PIN", 4, 4, "digits", 3, True),),
)

AREAS: tuple[AreaSpec, ...] = (JPKI, TEXT, SURFACE, JUKI, COMMON, MUNICIPAL_LIBRARY)
