package jp.mynacard.common;

import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.KeyBuilder;
import javacard.security.RandomData;

/**
 * Issuer authentication: GET CHALLENGE then EXTERNAL AUTHENTICATE with
 * AES-CMAC(card key, challenge). The challenge is single use; the authenticated flag and
 * the challenge are cleared on reset; the retry counter is persistent.
 */
public final class IssuerAuth {
    private static final short F_CHALLENGE = 0;
    private static final short F_AUTHENTICATED = 1;
    private static final short W_MAC = 16;

    private final AESKey key;
    private final AesCmac cmac;
    private final RandomData random;
    private final byte[] tries;
    private final byte[] flags;
    private final byte[] work;   // challenge (16) || computed MAC (16)

    public IssuerAuth() {
        key = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES, KeyBuilder.LENGTH_AES_128, false);
        cmac = new AesCmac();
        random = RandomData.getInstance(RandomData.ALG_SECURE_RANDOM);
        tries = new byte[] {Contract.ISSUER_AUTH_TRIES};
        flags = JCSystem.makeTransientByteArray((short) 2, JCSystem.CLEAR_ON_RESET);
        work = JCSystem.makeTransientByteArray((short) 32, JCSystem.CLEAR_ON_RESET);
    }

    public void setKey(byte[] buf, short off) {
        key.setKey(buf, off);
    }

    public boolean isAuthenticated() {
        return flags[F_AUTHENTICATED] != 0;
    }

    /** Writes len random bytes; a 16-byte challenge is remembered for one EXTERNAL AUTHENTICATE. */
    public void challenge(byte[] out, short off, short len) {
        random.generateData(out, off, len);
        if (len == Contract.ISSUER_CHALLENGE_LENGTH) {
            Util.arrayCopyNonAtomic(out, off, work, (short) 0, len);
            flags[F_CHALLENGE] = 1;
        } else {
            flags[F_CHALLENGE] = 0;
        }
    }

    /** Random bytes for other uses (never remembered as a challenge). */
    public void random(byte[] out, short off, short len) {
        random.generateData(out, off, len);
    }

    /** EXTERNAL AUTHENTICATE with the cryptogram at buf[off..off+len). */
    public void authenticate(byte[] buf, short off, short len) {
        if (tries[0] == 0) {
            ISOException.throwIt(Contract.SW_AUTHENTICATION_BLOCKED);
        }
        if (len != Contract.ISSUER_CHALLENGE_LENGTH) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (flags[F_CHALLENGE] == 0) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        flags[F_CHALLENGE] = 0;
        flags[F_AUTHENTICATED] = 0;
        tries[0] = (byte) (tries[0] - 1);
        cmac.sign(key, work, (short) 0, Contract.ISSUER_CHALLENGE_LENGTH, work, W_MAC);
        byte diff = 0;
        for (short i = 0; i < Contract.ISSUER_CHALLENGE_LENGTH; i++) {
            diff |= (byte) (work[(short) (W_MAC + i)] ^ buf[(short) (off + i)]);
        }
        Util.arrayFillNonAtomic(work, (short) 0, (short) 32, (byte) 0);
        if (diff != 0) {
            ISOException.throwIt((short) (Contract.SW_VERIFICATION_FAILED | tries[0]));
        }
        tries[0] = Contract.ISSUER_AUTH_TRIES;
        flags[F_AUTHENTICATED] = 1;
    }
}
