package jp.mynacard.common;

import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.AESKey;
import javacardx.crypto.Cipher;

/** AES-CMAC (RFC 4493) on top of AES-128-ECB without padding. */
public final class AesCmac {
    public static final short BLOCK = 16;
    private static final short L = 0;   // subkey K1 / K2
    private static final short X = 16;  // chaining value
    private static final short M = 32;  // last block
    private final Cipher ecb;
    private final byte[] work;

    public AesCmac() {
        ecb = Cipher.getInstance(Cipher.ALG_AES_BLOCK_128_ECB_NOPAD, false);
        work = JCSystem.makeTransientByteArray((short) 48, JCSystem.CLEAR_ON_RESET);
    }

    /** Doubling in GF(2^128): block = block << 1, xor 0x87 when the top bit was set. */
    private static void dbl(byte[] b, short off) {
        byte carry = (byte) ((b[off] & 0x80) != 0 ? 0x87 : 0);
        for (short i = 0; i < BLOCK - 1; i++) {
            b[(short) (off + i)] = (byte) ((b[(short) (off + i)] << 1)
                    | ((b[(short) (off + i + 1)] >> 7) & 1));
        }
        b[(short) (off + BLOCK - 1)] = (byte) ((b[(short) (off + BLOCK - 1)] << 1) ^ carry);
    }

    private static void xor(byte[] a, short aOff, byte[] b, short bOff) {
        for (short i = 0; i < BLOCK; i++) {
            a[(short) (aOff + i)] ^= b[(short) (bOff + i)];
        }
    }

    /** Writes the 16-byte CMAC of msg under key to out; returns 16. */
    public short sign(AESKey key, byte[] msg, short off, short len, byte[] out, short outOff) {
        ecb.init(key, Cipher.MODE_ENCRYPT);
        Util.arrayFillNonAtomic(work, (short) 0, (short) 48, (byte) 0);
        ecb.doFinal(work, L, BLOCK, work, L);  // L = AES(0)
        dbl(work, L);                           // K1
        short n = (short) ((short) (len + BLOCK - 1) / BLOCK);
        boolean complete;
        if (n == 0) {
            n = 1;
            complete = false;
        } else {
            complete = (short) (len % BLOCK) == 0;
        }
        for (short i = 0; i < (short) (n - 1); i++) {
            xor(work, X, msg, (short) (off + i * BLOCK));
            ecb.doFinal(work, X, BLOCK, work, X);
        }
        short lastOff = (short) (off + (short) ((short) (n - 1) * BLOCK));
        short lastLen = (short) (len - (short) ((short) (n - 1) * BLOCK));
        Util.arrayCopyNonAtomic(msg, lastOff, work, M, lastLen);
        if (!complete) {
            work[(short) (M + lastLen)] = (byte) 0x80;
            dbl(work, L);                       // K2
        }
        xor(work, M, work, L);
        xor(work, X, work, M);
        ecb.doFinal(work, X, BLOCK, out, outOff);
        Util.arrayFillNonAtomic(work, (short) 0, (short) 48, (byte) 0);
        return BLOCK;
    }
}
