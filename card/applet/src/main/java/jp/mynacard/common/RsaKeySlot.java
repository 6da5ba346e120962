package jp.mynacard.common;

import javacard.framework.Util;
import javacard.security.KeyBuilder;
import javacard.security.KeyPair;
import javacard.security.RSAPrivateCrtKey;
import javacard.security.RSAPublicKey;
import javacardx.crypto.Cipher;

/** An on-card RSA-2048 key pair (e = 65537) that signs with PKCS#1 v1.5 type 1. */
public final class RsaKeySlot {
    public final short fid;
    /** Bit i set: the applet's PIN number i allows this key. */
    public final byte pinMask;
    /** The card-wide PinBit of the key's PIN (0 for none). */
    public final byte bit;
    private final KeyPair pair;
    private final Cipher cipher;
    private final byte[] generated;

    public RsaKeySlot(short fid, byte pinMask, byte bit, Cipher cipher) {
        this.fid = fid;
        this.pinMask = pinMask;
        this.bit = bit;
        this.cipher = cipher;
        pair = new KeyPair(KeyPair.ALG_RSA_CRT, KeyBuilder.LENGTH_RSA_2048);
        generated = new byte[1];
    }

    public boolean isGenerated() {
        return generated[0] != 0;
    }

    /** A new key pair; {@code scratch} (at least the modulus length, 256 bytes) is cleared
     *  afterwards. */
    public void generate(byte[] scratch) {
        generated[0] = 0;
        ((RSAPublicKey) pair.getPublic()).setExponent(Contract.RSA_PUBLIC_EXPONENT, (short) 0,
                (short) Contract.RSA_PUBLIC_EXPONENT.length);
        pair.genKeyPair();
        fullLength((RSAPrivateCrtKey) pair.getPrivate(), scratch);
        generated[0] = 1;
    }

    /**
     * Rewrites each CRT component of {@code key} at its full length (half the modulus),
     * left-padded with zeros; the values are unchanged.
     *
     * <p>Why: jCardSim keeps a key component in a buffer that only ever grows and reads the
     * whole buffer back as the value. A component one byte shorter than the same slot's
     * previous one (d mod p-1, d mod q-1 or q^-1 mod p: about 1 key in 85) would be read with
     * the old key's last byte appended, and the card would sign with a key its certificate
     * does not match. At full length every write covers the whole buffer. On a card without
     * that defect this is a no-op.
     */
    public static void fullLength(RSAPrivateCrtKey key, byte[] scratch) {
        short half = (short) (key.getSize() / 16);
        for (byte c = 0; c < 5; c++) {
            Util.arrayFillNonAtomic(scratch, (short) 0, (short) (half * 2), (byte) 0);
            short len = component(key, c, scratch, half);
            if (len < half) {
                Util.arrayCopyNonAtomic(scratch, half, scratch, (short) (half - len), len);
                Util.arrayFillNonAtomic(scratch, (short) 0, (short) (half - len), (byte) 0);
                setComponent(key, c, scratch, half);
            }
        }
        Util.arrayFillNonAtomic(scratch, (short) 0, (short) (half * 2), (byte) 0);
    }

    private static short component(RSAPrivateCrtKey key, byte c, byte[] out, short off) {
        switch (c) {
            case 0: return key.getP(out, off);
            case 1: return key.getQ(out, off);
            case 2: return key.getDP1(out, off);
            case 3: return key.getDQ1(out, off);
            default: return key.getPQ(out, off);
        }
    }

    private static void setComponent(RSAPrivateCrtKey key, byte c, byte[] in, short len) {
        switch (c) {
            case 0: key.setP(in, (short) 0, len); break;
            case 1: key.setQ(in, (short) 0, len); break;
            case 2: key.setDP1(in, (short) 0, len); break;
            case 3: key.setDQ1(in, (short) 0, len); break;
            default: key.setPQ(in, (short) 0, len); break;
        }
    }

    public short modulus(byte[] out, short off) {
        return ((RSAPublicKey) pair.getPublic()).getModulus(out, off);
    }

    /** The public exponent, big-endian as the key holds it (01 00 01); returns its length. */
    public short exponent(byte[] out, short off) {
        return ((RSAPublicKey) pair.getPublic()).getExponent(out, off);
    }

    /** PKCS#1 v1.5 type-1 signature (RSA private-key operation) of in[off..off+len). */
    public short sign(byte[] in, short off, short len, byte[] out, short outOff) {
        cipher.init(pair.getPrivate(), Cipher.MODE_ENCRYPT);
        return cipher.doFinal(in, off, len, out, outOff);
    }
}
