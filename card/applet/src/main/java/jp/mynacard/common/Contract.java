package jp.mynacard.common;

/**
 * The APDU contract of the mynacard card: the Java mirror of {@code card/contract.py}.
 *
 * <p>Naming, so that a test can match every constant with its Python counterpart:
 * {@code AID_X} = {@code contract.AID_X}; {@code INS_X} = {@code Ins.X};
 * {@code SW_X} = {@code SW.X}; {@code LIFE_CYCLE_X} = {@code LifeCycle.X};
 * {@code TAG_X} = {@code Tag.X}; {@code PIN_BIT_X} = {@code PinBit.X};
 * {@code FID_X} = the module-level file id {@code X} (for example
 * {@code FID_JPKI_SIGN_CERT} = {@code JPKI_SIGN_CERT}); {@code SIZE_X} = the size of the
 * FileSpec with fid {@code X}; {@code ACCESS_X} = {@code Access.X};
 * {@code PIN_MIN_X}, {@code PIN_MAX_X}, {@code PIN_TRIES_X}, {@code PIN_CHARSET_X} = the PinSpec
 * with fid {@code X}; every other name is the Python module-level name unchanged. Integers
 * that do not fit a short (RSA_PUBLIC_EXPONENT) are big-endian byte arrays. Java-only
 * helpers: PIN_CHARSET_DIGITS / PIN_CHARSET_UPPER_ALNUM (PinSpec charset "digits" /
 * "upper-alnum"), MUNICIPALITY_CODE_LENGTH, EXPIRY_LENGTH, CARD_KEY_LENGTH (issuer and card-authentication keys).
 */
public final class Contract {
    private Contract() {
    }

    // --- Application identifiers -----------------------------------------------------
    public static final byte[] AID_JPKI = {
        (byte) 0xD3, (byte) 0x92, (byte) 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01};
    public static final byte[] AID_TEXT = {
        (byte) 0xD3, (byte) 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08};
    public static final byte[] AID_SURFACE = {
        (byte) 0xD3, (byte) 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02};
    public static final byte[] AID_JUKI = {
        (byte) 0xD3, (byte) 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x01};
    /** 共通カードAP (common card application). */
    public static final byte[] AID_COMMON = {
        (byte) 0xD3, (byte) 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x01, 0x00};
    /** The GlobalPlatform ISD AID of the real card (7 bytes), current at power-on. */
    public static final byte[] AID_CARD_MANAGER = {
        (byte) 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00};
    public static final byte[] AID_MUNICIPAL_LIBRARY = {
        (byte) 0xF0, 0x4A, 0x50, 0x4C, 0x49, 0x42, 0x30, 0x31};

    /** The card's ATR (with TS). GET DATA 5F51 answers it without TS. */
    public static final byte[] ATR = {
        0x3B, (byte) 0xE0, 0x00, (byte) 0xFF, (byte) 0x81, 0x31, (byte) 0xFE, 0x45, 0x14};

    // --- Class and instruction bytes ---------------------------------------------------
    public static final byte CLA_ISO = (byte) 0x00;
    public static final byte CLA_PROPRIETARY = (byte) 0x80;

    public static final byte INS_SELECT = (byte) 0xA4;
    public static final byte INS_READ_BINARY = (byte) 0xB0;
    public static final byte INS_UPDATE_BINARY = (byte) 0xD6;
    public static final byte INS_VERIFY = (byte) 0x20;
    public static final byte INS_CHANGE_REFERENCE_DATA = (byte) 0x24;
    public static final byte INS_CHANGE_KEY = (byte) 0x32;
    public static final byte INS_RESET_RETRY_COUNTER = (byte) 0x2C;
    public static final byte INS_SIGN = (byte) 0x2A;
    public static final byte INS_GENERATE_KEY = (byte) 0x47;
    public static final byte INS_GET_CHALLENGE = (byte) 0x84;
    public static final byte INS_EXTERNAL_AUTHENTICATE = (byte) 0x82;
    public static final byte INS_GET_DATA = (byte) 0xCA;
    public static final byte INS_PUT_DATA = (byte) 0xDA;
    public static final byte INS_SET_STATUS = (byte) 0xF0;
    public static final byte INS_GET_RESPONSE = (byte) 0xC0;
    public static final byte INS_ATTEST_KEY = (byte) 0x8A;
    public static final byte INS_READ_RECORD = (byte) 0xB2;
    public static final byte INS_UPDATE_RECORD = (byte) 0xDC;
    public static final byte INS_INTERNAL_AUTHENTICATE = (byte) 0x88;
    public static final byte INS_SET_SESSION_KEY = (byte) 0xAE;
    public static final byte INS_LAST_COMMAND_INDICATOR = (byte) 0xFC;

    /** READ/UPDATE RECORD P2: low 3 bits 100 = "P1 is a record number"; high 5 bits = SFI. */
    public static final byte RECORD_P2_BY_NUMBER = (byte) 0x04;

    public static final byte GENERATE_P1_GENERATE = (byte) 0x80;
    public static final byte GENERATE_P1_READ_PUBLIC = (byte) 0x81;
    /** 65537, big-endian (Java Card has no int). */
    public static final byte[] RSA_PUBLIC_EXPONENT = {0x01, 0x00, 0x01};
    public static final short RSA_MODULUS_BYTES = 256;

    public static final byte RESET_P1_NEW_VALUE = (byte) 0x02;
    public static final byte RESET_P1_COUNTER_ONLY = (byte) 0x03;

    /** 00 A4 00 00|0C: the MF (6A86 at MF level, 9000 unchanged inside an application). */
    public static final byte SELECT_P1_MF = (byte) 0x00;
    public static final byte SELECT_P1_BY_FID = (byte) 0x02;
    public static final byte SELECT_P1_BY_NAME = (byte) 0x04;
    public static final byte SELECT_P2_NO_RESPONSE = (byte) 0x0C;

    public static final byte P2_CURRENT_KEY = (byte) 0x80;
    public static final byte SIGN_P1_PKCS1_V15 = (byte) 0x00;
    public static final short SIGN_MAX_INPUT = 245;
    public static final short PIN_MAX_LENGTH = 16;

    // --- Status words ------------------------------------------------------------------
    public static final short SW_OK = (short) 0x9000;
    public static final short SW_VERIFICATION_FAILED = (short) 0x63C0;
    public static final short SW_NO_SESSION_KEY = (short) 0x66F1;
    public static final short SW_WRONG_LENGTH = (short) 0x6700;
    public static final short SW_SECURE_MESSAGING_NOT_SUPPORTED = (short) 0x6882;
    public static final short SW_COMMAND_INCOMPATIBLE = (short) 0x6981;
    public static final short SW_SECURITY_STATUS_NOT_SATISFIED = (short) 0x6982;
    public static final short SW_AUTHENTICATION_BLOCKED = (short) 0x6983;
    public static final short SW_REFERENCE_DATA_BLOCKED = (short) 0x6984;
    public static final short SW_CONDITIONS_NOT_SATISFIED = (short) 0x6985;
    public static final short SW_NO_CURRENT_EF = (short) 0x6986;
    public static final short SW_SECURE_MESSAGING_REFUSED = (short) 0x69FC;
    public static final short SW_INCORRECT_DATA = (short) 0x6A80;
    public static final short SW_FILE_NOT_FOUND = (short) 0x6A82;
    public static final short SW_RECORD_NOT_FOUND = (short) 0x6A83;
    public static final short SW_NOT_ENOUGH_SPACE = (short) 0x6A84;
    public static final short SW_INCORRECT_P1P2 = (short) 0x6A86;
    public static final short SW_DATA_NOT_FOUND = (short) 0x6A88;
    public static final short SW_OFFSET_OUT_OF_RANGE = (short) 0x6B00;
    public static final short SW_INS_NOT_SUPPORTED = (short) 0x6D00;
    public static final short SW_CLA_NOT_SUPPORTED = (short) 0x6E00;

    // --- Life cycle ----------------------------------------------------------------------
    public static final byte LIFE_CYCLE_BLANK = 0x01;
    public static final byte LIFE_CYCLE_PERSONALISED = 0x02;
    public static final byte LIFE_CYCLE_ISSUED = 0x03;
    public static final byte LIFE_CYCLE_ACTIVE = 0x04;
    public static final byte LIFE_CYCLE_TERMINATED = 0x05;

    // --- GET DATA / PUT DATA tags ------------------------------------------------------
    public static final short TAG_ISSUER_ID = (short) 0x0042;
    public static final short TAG_CARD_SERIAL = (short) 0x0045;
    public static final short TAG_CARD_RECOGNITION = (short) 0x0066;
    public static final short TAG_INTERMEDIATE_KEY_ID = (short) 0x00F7;
    public static final short TAG_CHAIN_UPPER = (short) 0x00F8;
    public static final short TAG_CHAIN_LOWER = (short) 0x7F21;
    public static final short TAG_MUNICIPALITY_CODE = (short) 0x00F0;
    public static final short TAG_EXPIRY = (short) 0x00F2;
    public static final short TAG_CONTACT_ATR = (short) 0x5F51;
    public static final short TAG_LIFE_CYCLE = (short) 0xDF71;
    public static final short TAG_PIN_STATUS = (short) 0xDF72;
    public static final short MUNICIPALITY_CODE_LENGTH = 5;
    public static final short EXPIRY_LENGTH = 8;
    /** Key IDs and key references: 16 bytes. */
    public static final short KEY_ID_LENGTH = 16;
    /** A card-verifiable certificate with an RSA-2048 key: 7F21 82 02 33 ... (568 bytes). */
    public static final short CV_CERT_LENGTH = 568;
    /** GET DATA 0066: GlobalPlatform card recognition data (GP 2.2.1, no SCP advertised). */
    public static final byte[] CARD_RECOGNITION_DATA = {
        0x66, 0x24, 0x73, 0x22,
        0x06, 0x07, 0x2A, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xFC, 0x6B, 0x01,
        0x60, 0x0C, 0x06, 0x0A, 0x2A, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xFC, 0x6B, 0x02,
        0x02, 0x02, 0x01,
        0x63, 0x09, 0x06, 0x07, 0x2A, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xFC, 0x6B, 0x03};

    public static final byte PIN_BIT_JPKI_AUTH = 0x01;
    public static final byte PIN_BIT_JPKI_SIGN = 0x02;
    public static final byte PIN_BIT_TEXT = 0x04;
    public static final byte PIN_BIT_JUKI = 0x08;
    public static final byte PIN_BIT_COMMON = 0x10;

    // --- Issuer authentication -------------------------------------------------------------
    public static final short ISSUER_CHALLENGE_LENGTH = 16;
    public static final byte ISSUER_AUTH_TRIES = 10;
    public static final short SERIAL_LENGTH = 15;
    public static final short CARD_KEY_LENGTH = 16;

    // --- Key attestation -------------------------------------------------------------------
    /** "MYNACARD-KEY-ATTEST-1" in ASCII: the first bytes of every attested message. */
    public static final byte[] KEY_ATTESTATION_LABEL = {
        0x4D, 0x59, 0x4E, 0x41, 0x43, 0x41, 0x52, 0x44, 0x2D, 0x4B, 0x45, 0x59, 0x2D, 0x41,
        0x54, 0x54, 0x45, 0x53, 0x54, 0x2D, 0x31};
    public static final byte KEY_ATTESTATION_P1 = (byte) 0x00;
    public static final short KEY_ATTESTATION_CHALLENGE_LENGTH = 16;
    public static final short KEY_ATTESTATION_MAC_LENGTH = 16;
    /** The domain byte after the serial: 0x80 derives the issuer key, 0x81 the card-authentication key. */
    public static final byte ISSUER_KEY_DOMAIN = (byte) 0x80;
    public static final byte CARD_AUTH_KEY_DOMAIN = (byte) 0x81;

    // --- Files ---------------------------------------------------------------------------
    public static final byte ACCESS_FREE = 0;
    public static final byte ACCESS_NEVER = 1;
    public static final byte ACCESS_CREDENTIAL = 2;

    public static final byte PIN_CHARSET_DIGITS = 0;
    public static final byte PIN_CHARSET_UPPER_ALNUM = 1;

    // JPKI-AP
    public static final short FID_JPKI_SIGN_CERT = 0x0001;
    public static final short FID_JPKI_SIGN_CA_CERT = 0x0002;
    public static final short FID_JPKI_TOKEN_INFO = 0x0006;
    public static final short FID_JPKI_CERT_AVAILABILITY = 0x0008;
    public static final short FID_JPKI_AUTH_CERT = 0x000A;
    public static final short FID_JPKI_AUTH_CA_CERT = 0x000B;
    public static final short FID_JPKI_AUTH_KEY = 0x0017;
    public static final short FID_JPKI_AUTH_PIN = 0x0018;
    public static final short FID_JPKI_SIGN_KEY = 0x001A;
    public static final short FID_JPKI_SIGN_PIN = 0x001B;
    /** An unreadable EF of unknown use (the real card shows it; nothing writes it). */
    public static final short JPKI_UNKNOWN_PROTECTED = 0x0009;
    /** The terminal-CA key reference of the proprietary 80 A2 (not emulated): unreadable. */
    public static final short JPKI_TERMINAL_KEY_REFERENCE = 0x0016;
    public static final short JPKI_UNKNOWN_PROTECTED_SIZE = 16;
    public static final short JPKI_TERMINAL_KEY_REFERENCE_SIZE = 16;
    public static final short SIZE_JPKI_SIGN_CERT = 3072;
    public static final short SIZE_JPKI_SIGN_CA_CERT = 3072;
    public static final short SIZE_JPKI_TOKEN_INFO = 160;
    public static final short SIZE_JPKI_CERT_AVAILABILITY = 3;
    public static final short SIZE_JPKI_AUTH_CERT = 3072;
    public static final short SIZE_JPKI_AUTH_CA_CERT = 3072;
    public static final byte PIN_MIN_JPKI_AUTH_PIN = 4;
    public static final byte PIN_MAX_JPKI_AUTH_PIN = 4;
    public static final byte PIN_TRIES_JPKI_AUTH_PIN = 3;
    public static final byte PIN_CHARSET_JPKI_AUTH_PIN = PIN_CHARSET_DIGITS;
    public static final byte PIN_MIN_JPKI_SIGN_PIN = 6;
    public static final byte PIN_MAX_JPKI_SIGN_PIN = 16;
    public static final byte PIN_TRIES_JPKI_SIGN_PIN = 5;
    public static final byte PIN_CHARSET_JPKI_SIGN_PIN = PIN_CHARSET_UPPER_ALNUM;

    // 券面事項入力補助AP (text)
    public static final short FID_TEXT_MY_NUMBER = 0x0001;
    public static final short FID_TEXT_BASIC_FOUR = 0x0002;
    public static final short FID_TEXT_INTEGRITY = 0x0003;
    public static final short FID_TEXT_CV_CERT = 0x0004;
    public static final short FID_TEXT_AP_BASIC = 0x0005;
    public static final short FID_TEXT_PIN = 0x0011;
    public static final short FID_TEXT_CODE_A = 0x0014;
    public static final short FID_TEXT_CODE_B = 0x0015;
    /** A1 { 90 exponent, 91 modulus }: the session-key encryption key (PIN, A or B). */
    public static final short TEXT_SESSION_KEY = 0x0006;
    /** FF50 { DF51 card public key, DF52 signature } (PIN, A or B). */
    public static final short TEXT_CARD_KEY = 0x0007;
    /** 16 bytes of FF, no credential. */
    public static final short TEXT_UNKNOWN = 0x0008;
    /** A key reference blocked on issued cards: empty VERIFY 63C0, VERIFY 6984. */
    public static final short TEXT_BLOCKED_KEY = 0x0012;
    public static final short SIZE_TEXT_MY_NUMBER = 17;
    public static final short SIZE_TEXT_BASIC_FOUR = 1024;
    public static final short SIZE_TEXT_INTEGRITY = 336;
    public static final short SIZE_TEXT_CV_CERT = 568;
    public static final short SIZE_TEXT_AP_BASIC = 256;
    /** A1 82 01 09 { 90 03 e, 91 82 01 00 n }. */
    public static final short TEXT_SESSION_KEY_SIZE = 269;
    /** FF50 82 02 13 { DF51 82 01 09 key, DF52 82 01 00 signature }. */
    public static final short TEXT_CARD_KEY_SIZE = 536;
    public static final short TEXT_UNKNOWN_SIZE = 16;
    public static final byte PIN_MIN_TEXT_PIN = 4;
    public static final byte PIN_MAX_TEXT_PIN = 4;
    public static final byte PIN_TRIES_TEXT_PIN = 3;
    public static final byte PIN_CHARSET_TEXT_PIN = PIN_CHARSET_DIGITS;
    public static final byte PIN_MIN_TEXT_CODE_A = 12;
    public static final byte PIN_MAX_TEXT_CODE_A = 12;
    public static final byte PIN_TRIES_TEXT_CODE_A = 10;
    public static final byte PIN_CHARSET_TEXT_CODE_A = PIN_CHARSET_DIGITS;
    public static final byte PIN_MIN_TEXT_CODE_B = 14;
    public static final byte PIN_MAX_TEXT_CODE_B = 14;
    public static final byte PIN_TRIES_TEXT_CODE_B = 10;
    public static final byte PIN_CHARSET_TEXT_CODE_B = PIN_CHARSET_DIGITS;

    // 券面AP (surface)
    public static final short FID_SURFACE_AGE_RECORD = 0x0001;
    public static final short FID_SURFACE_FACE = 0x0002;
    public static final short FID_SURFACE_AP_BASIC = 0x0003;
    public static final short FID_SURFACE_CV_CERT = 0x0004;
    public static final short FID_SURFACE_MY_NUMBER_IMAGE = 0x0005;
    public static final short FID_SURFACE_BIRTH_KEY = 0x0011;
    public static final short FID_SURFACE_CODE_B = 0x0012;
    public static final short FID_SURFACE_CODE_A = 0x0013;
    /** 16 bytes of FF, opened by code A or B. */
    public static final short SURFACE_UNKNOWN = 0x0006;
    public static final short SURFACE_UNKNOWN_SIZE = 16;
    public static final short SIZE_SURFACE_AGE_RECORD = 1024;
    public static final short SIZE_SURFACE_FACE = 8192;
    public static final short SIZE_SURFACE_AP_BASIC = 512;
    public static final short SIZE_SURFACE_CV_CERT = 568;
    public static final short SIZE_SURFACE_MY_NUMBER_IMAGE = 2048;
    public static final byte PIN_MIN_SURFACE_BIRTH_KEY = 6;
    public static final byte PIN_MAX_SURFACE_BIRTH_KEY = 6;
    public static final byte PIN_TRIES_SURFACE_BIRTH_KEY = 10;
    public static final byte PIN_CHARSET_SURFACE_BIRTH_KEY = PIN_CHARSET_DIGITS;
    public static final byte PIN_MIN_SURFACE_CODE_B = 14;
    public static final byte PIN_MAX_SURFACE_CODE_B = 14;
    public static final byte PIN_TRIES_SURFACE_CODE_B = 10;
    public static final byte PIN_CHARSET_SURFACE_CODE_B = PIN_CHARSET_DIGITS;
    public static final byte PIN_MIN_SURFACE_CODE_A = 12;
    public static final byte PIN_MAX_SURFACE_CODE_A = 12;
    public static final byte PIN_TRIES_SURFACE_CODE_A = 10;
    public static final byte PIN_CHARSET_SURFACE_CODE_A = PIN_CHARSET_DIGITS;

    // 住基AP (juki)
    public static final short FID_JUKI_RESIDENT_CODE = 0x0001;
    public static final short FID_JUKI_KEY_REFERENCE = 0x0002;
    public static final short FID_JUKI_PIN = 0x001C;
    public static final short SIZE_JUKI_RESIDENT_CODE = 32;
    public static final short SIZE_JUKI_KEY_REFERENCE = 16;
    public static final byte PIN_MIN_JUKI_PIN = 4;
    public static final byte PIN_MAX_JUKI_PIN = 4;
    public static final byte PIN_TRIES_JUKI_PIN = 3;
    public static final byte PIN_CHARSET_JUKI_PIN = PIN_CHARSET_DIGITS;

    // 共通カードAP (common)
    public static final short FID_COMMON_CARD_INFO = 0x0001;
    public static final short FID_COMMON_KEY_REFERENCE = 0x0002;
    public static final short FID_COMMON_AUTH_KEY = 0x0019;
    public static final short FID_COMMON_PIN = 0x001C;
    public static final short SIZE_COMMON_CARD_INFO = 30;
    public static final short SIZE_COMMON_KEY_REFERENCE = 16;
    /** EF 0001 holds one record of 30 bytes: 01 1C + 28 ASCII digits. */
    public static final short COMMON_CARD_INFO_RECORD_LENGTH = 30;
    public static final byte PIN_MIN_COMMON_PIN = 4;
    public static final byte PIN_MAX_COMMON_PIN = 4;
    public static final byte PIN_TRIES_COMMON_PIN = 3;
    public static final byte PIN_CHARSET_COMMON_PIN = PIN_CHARSET_DIGITS;

    // Municipal library card
    public static final short FID_LIBRARY_NUMBER = 0x0001;
    public static final short FID_LIBRARY_PIN = 0x0011;
    public static final short SIZE_LIBRARY_NUMBER = 32;
    public static final byte PIN_MIN_LIBRARY_PIN = 4;
    public static final byte PIN_MAX_LIBRARY_PIN = 4;
    public static final byte PIN_TRIES_LIBRARY_PIN = 3;
    public static final byte PIN_CHARSET_LIBRARY_PIN = PIN_CHARSET_DIGITS;
}
