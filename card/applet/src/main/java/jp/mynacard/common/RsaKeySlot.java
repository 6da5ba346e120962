package jp.mynacard.common;

import javacard.security.KeyBuilder;
import javacard.security.KeyPair;
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

    public void generate() {
        generated[0] = 0;
        ((RSAPublicKey) pair.getPublic()).setExponent(Contract.RSA_PUBLIC_EXPONENT, (short) 0,
                (short) Contract.RSA_PUBLIC_EXPONENT.length);
        pair.genKeyPair();
        generated[0] = 1;
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
