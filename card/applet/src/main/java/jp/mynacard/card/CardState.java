package jp.mynacard.card;

import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import jp.mynacard.common.Contract;
import jp.mynacard.common.IssuerAuth;
import jp.mynacard.common.KeyAttestation;

/**
 * Card-wide state shared by the card manager and the four areas (one package): life
 * cycle, required/set PIN bits, which JPKI keys exist, serial, municipality code, expiry
 * the issuer authentication (card key, challenge, authenticated flag) and the key
 * attestation (card-authentication key).
 */
final class CardState {
    private CardState() {
    }

    static final short S_LIFE_CYCLE = 0;
    static final short S_REQUIRED = 1;
    static final short S_SET = 2;
    static final short S_KEYS = 3;
    static final short S_HAS_MUNICIPALITY = 4;
    static final short S_HAS_EXPIRY = 5;

    static byte[] state;
    static byte[] serial;
    static byte[] municipality;
    static byte[] expiry;
    /** MF-level objects the issuer writes (PUT DATA): issuer ID, key ID, the two CV certs. */
    static final short M_ISSUER_ID = 0;
    static final short M_INTERMEDIATE_KEY_ID = 1;
    static final short M_CHAIN_UPPER = 2;
    static final short M_CHAIN_LOWER = 3;
    static byte[][] mfObjects;
    static short[] mfLengths;
    static IssuerAuth issuer;
    static KeyAttestation attestation;

    /** Allocates the shared state once (whichever applet of the package is installed first). */
    static void ensure() {
        if (state != null) {
            return;
        }
        state = new byte[6];
        state[S_LIFE_CYCLE] = Contract.LIFE_CYCLE_BLANK;
        serial = new byte[Contract.SERIAL_LENGTH];
        Util.arrayFillNonAtomic(serial, (short) 0, Contract.SERIAL_LENGTH, (byte) '0');
        municipality = new byte[Contract.MUNICIPALITY_CODE_LENGTH];
        expiry = new byte[Contract.EXPIRY_LENGTH];
        mfObjects = new byte[4][];
        mfObjects[M_ISSUER_ID] = new byte[Contract.KEY_ID_LENGTH];
        mfObjects[M_INTERMEDIATE_KEY_ID] = new byte[Contract.KEY_ID_LENGTH];
        mfObjects[M_CHAIN_UPPER] = new byte[Contract.CV_CERT_LENGTH];
        mfObjects[M_CHAIN_LOWER] = new byte[Contract.CV_CERT_LENGTH];
        mfLengths = new short[4];
        issuer = new IssuerAuth();
        attestation = new KeyAttestation(serial);
    }

    static byte lifeCycle() {
        return state[S_LIFE_CYCLE];
    }

    static boolean isPersonalisation() {
        byte lc = state[S_LIFE_CYCLE];
        return lc == Contract.LIFE_CYCLE_BLANK || lc == Contract.LIFE_CYCLE_PERSONALISED;
    }

    static boolean isPostIssue() {
        byte lc = state[S_LIFE_CYCLE];
        return lc == Contract.LIFE_CYCLE_ISSUED || lc == Contract.LIFE_CYCLE_ACTIVE;
    }

    static void requirePersonalisation() {
        if (!isPersonalisation()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (!issuer.isAuthenticated()) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
    }

    /** A holder PIN was set: record it and activate when it was the last required one. */
    static void pinSet(byte bit) {
        if (bit == 0) {
            return;
        }
        JCSystem.beginTransaction();
        state[S_SET] |= bit;
        activateIfComplete();
        JCSystem.commitTransaction();
    }

    static void keyGenerated(byte bit) {
        state[S_KEYS] |= bit;
    }

    /** SET STATUS: the allowed transitions, issuer already authenticated. */
    static void setStatus(byte target) {
        byte lc = state[S_LIFE_CYCLE];
        if (target == Contract.LIFE_CYCLE_TERMINATED) {
            state[S_LIFE_CYCLE] = target;
            return;
        }
        if (lc == Contract.LIFE_CYCLE_BLANK && target == Contract.LIFE_CYCLE_PERSONALISED) {
            state[S_LIFE_CYCLE] = target;
            return;
        }
        if (lc == Contract.LIFE_CYCLE_PERSONALISED && target == Contract.LIFE_CYCLE_ISSUED) {
            byte required = (byte) (Contract.PIN_BIT_TEXT | Contract.PIN_BIT_JUKI
                    | Contract.PIN_BIT_COMMON
                    | (state[S_KEYS] & (Contract.PIN_BIT_JPKI_AUTH | Contract.PIN_BIT_JPKI_SIGN)));
            JCSystem.beginTransaction();
            state[S_REQUIRED] = required;
            state[S_LIFE_CYCLE] = target;
            activateIfComplete();
            JCSystem.commitTransaction();
            return;
        }
        ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
    }

    private static void activateIfComplete() {
        if (state[S_LIFE_CYCLE] == Contract.LIFE_CYCLE_ISSUED
                && (byte) (state[S_REQUIRED] & ~state[S_SET]) == 0) {
            state[S_LIFE_CYCLE] = Contract.LIFE_CYCLE_ACTIVE;
        }
    }
}
