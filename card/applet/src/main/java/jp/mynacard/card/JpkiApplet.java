package jp.mynacard.card;

import jp.mynacard.common.Contract;
import jp.mynacard.common.ElementaryFile;
import jp.mynacard.common.KeyAttestation;

/** 公的個人認証AP: certificates, token info, two on-card RSA-2048 keys and their PINs. */
public final class JpkiApplet extends CardArea {
    private static final byte AUTH = 0x01;   // PIN 0: user-authentication PIN
    private static final byte SIGN = 0x02;   // PIN 1: signing password

    private JpkiApplet() {
        super((byte) 8, (byte) 2, (byte) 2);
        pins[0] = pin(Contract.FID_JPKI_AUTH_PIN, Contract.PIN_MIN_JPKI_AUTH_PIN,
                Contract.PIN_MAX_JPKI_AUTH_PIN, Contract.PIN_CHARSET_JPKI_AUTH_PIN,
                Contract.PIN_TRIES_JPKI_AUTH_PIN, true, Contract.PIN_BIT_JPKI_AUTH);
        pins[1] = pin(Contract.FID_JPKI_SIGN_PIN, Contract.PIN_MIN_JPKI_SIGN_PIN,
                Contract.PIN_MAX_JPKI_SIGN_PIN, Contract.PIN_CHARSET_JPKI_SIGN_PIN,
                Contract.PIN_TRIES_JPKI_SIGN_PIN, true, Contract.PIN_BIT_JPKI_SIGN);
        files[0] = new ElementaryFile(Contract.FID_JPKI_SIGN_CERT, Contract.SIZE_JPKI_SIGN_CERT,
                Contract.ACCESS_CREDENTIAL, SIGN);
        files[1] = new ElementaryFile(Contract.FID_JPKI_SIGN_CA_CERT,
                Contract.SIZE_JPKI_SIGN_CA_CERT, Contract.ACCESS_FREE, (byte) 0);
        files[2] = new ElementaryFile(Contract.FID_JPKI_TOKEN_INFO, Contract.SIZE_JPKI_TOKEN_INFO,
                Contract.ACCESS_FREE, (byte) 0);
        files[3] = new ElementaryFile(Contract.FID_JPKI_CERT_AVAILABILITY,
                Contract.SIZE_JPKI_CERT_AVAILABILITY, Contract.ACCESS_FREE, (byte) 0);
        files[4] = new ElementaryFile(Contract.FID_JPKI_AUTH_CERT, Contract.SIZE_JPKI_AUTH_CERT,
                Contract.ACCESS_FREE, (byte) 0);
        files[5] = new ElementaryFile(Contract.FID_JPKI_AUTH_CA_CERT,
                Contract.SIZE_JPKI_AUTH_CA_CERT, Contract.ACCESS_FREE, (byte) 0);
        files[6] = new ElementaryFile(Contract.JPKI_UNKNOWN_PROTECTED,
                Contract.JPKI_UNKNOWN_PROTECTED_SIZE, Contract.ACCESS_NEVER, (byte) 0);
        files[7] = new ElementaryFile(Contract.JPKI_TERMINAL_KEY_REFERENCE,
                Contract.JPKI_TERMINAL_KEY_REFERENCE_SIZE, Contract.ACCESS_NEVER, (byte) 0);
        keys[0] = newKey(Contract.FID_JPKI_AUTH_KEY, AUTH, Contract.PIN_BIT_JPKI_AUTH);
        keys[1] = newKey(Contract.FID_JPKI_SIGN_KEY, SIGN, Contract.PIN_BIT_JPKI_SIGN);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new JpkiApplet().register();
    }

    /** The JPKI keys are the ones a CA certifies: this area answers ATTEST KEY. */
    protected KeyAttestation attestation() {
        return CardState.attestation;
    }

    protected byte updateCredentials(short fid) {
        switch (fid) {
            case Contract.FID_JPKI_SIGN_CERT:
            case Contract.FID_JPKI_SIGN_KEY:
                return SIGN;
            case Contract.FID_JPKI_AUTH_CERT:
            case Contract.FID_JPKI_AUTH_KEY:
                return AUTH;
            default:
                return (byte) (AUTH | SIGN);
        }
    }
}
