package jp.mynacard.common;

import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.KeyBuilder;

/**
 * Key attestation: the card vouches, under its card-authentication key (installed at
 * manufacture, never the issuer key), that a public key sits in one of its own key slots.
 *
 * <pre>
 * MAC = AES-CMAC(card-auth key, "MYNACARD-KEY-ATTEST-1" || serial (15) || AID length (1) ||
 *                AID || key FID (2) || exponent (3) || modulus (256) || challenge (16))
 * </pre>
 *
 * The message is always built here from the key slot's own public key: a host can never
 * make the card MAC a key it supplies, so a genuine card cannot vouch for an off-card key.
 */
public final class KeyAttestation {
    /** Longest message: label, serial, AID (up to 16), FID, exponent, modulus, challenge. */
    private static final short MAX_MESSAGE = (short) (21 + 15 + 1 + 16 + 2 + 3 + 256 + 16);

    private final AESKey key;
    private final AesCmac cmac;
    private final byte[] serial;
    private final byte[] message;

    /** {@code serial} is the card-wide serial array (read at each attestation). */
    public KeyAttestation(byte[] serial) {
        this.serial = serial;
        key = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES, KeyBuilder.LENGTH_AES_128, false);
        cmac = new AesCmac();
        message = JCSystem.makeTransientByteArray(MAX_MESSAGE, JCSystem.CLEAR_ON_RESET);
    }

    public void setKey(byte[] buf, short off) {
        key.setKey(buf, off);
    }

    /**
     * Writes the 16-byte MAC over the current applet's AID, {@code slot}'s FID and public key
     * and the challenge at challenge[cOff..cOff+16) to out[outOff..); returns 16.
     */
    public short attest(RsaKeySlot slot, byte[] challenge, short cOff, byte[] out, short outOff) {
        short p = Util.arrayCopyNonAtomic(Contract.KEY_ATTESTATION_LABEL, (short) 0, message,
                (short) 0, (short) Contract.KEY_ATTESTATION_LABEL.length);
        p = Util.arrayCopyNonAtomic(serial, (short) 0, message, p, Contract.SERIAL_LENGTH);
        byte aidLength = JCSystem.getAID().getBytes(message, (short) (p + 1));
        message[p] = aidLength;
        p = (short) (p + 1 + aidLength);
        p = Util.setShort(message, p, slot.fid);
        short e = slot.exponent(message, p);
        if (e != (short) Contract.RSA_PUBLIC_EXPONENT.length
                || Util.arrayCompare(message, p, Contract.RSA_PUBLIC_EXPONENT, (short) 0, e) != 0) {
            wipe();
            javacard.framework.ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        p = (short) (p + e);
        short n = slot.modulus(message, p);
        if (n != Contract.RSA_MODULUS_BYTES) {
            wipe();
            javacard.framework.ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        p = (short) (p + n);
        p = Util.arrayCopyNonAtomic(challenge, cOff, message, p,
                Contract.KEY_ATTESTATION_CHALLENGE_LENGTH);
        short len = cmac.sign(key, message, (short) 0, p, out, outOff);
        wipe();
        return len;
    }

    private void wipe() {
        Util.arrayFillNonAtomic(message, (short) 0, MAX_MESSAGE, (byte) 0);
    }
}
