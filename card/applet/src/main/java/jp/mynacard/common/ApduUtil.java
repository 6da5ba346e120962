package jp.mynacard.common;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/** Small APDU helpers shared by every applet. */
public final class ApduUtil {
    private ApduUtil() {
    }

    /**
     * CLA 00 or 80; 0X/8X with secure-messaging bits (0C) are refused as the real card does:
     * 6882 on SELECT, 69FC on every other instruction (READ BINARY, VERIFY, ...); anything
     * else → 6E00.
     */
    public static void checkCla(byte cla, byte ins) {
        byte high = (byte) (cla & 0xF0);
        if ((high == 0x00 || high == (byte) 0x80) && (cla & 0x0C) != 0) {
            ISOException.throwIt(ins == Contract.INS_SELECT
                    ? Contract.SW_SECURE_MESSAGING_NOT_SUPPORTED
                    : Contract.SW_SECURE_MESSAGING_REFUSED);
        }
        if (cla != Contract.CLA_ISO && cla != Contract.CLA_PROPRIETARY) {
            ISOException.throwIt(Contract.SW_CLA_NOT_SUPPORTED);
        }
    }

    /** Receives the whole command data field at OFFSET_CDATA; returns Lc (0 when absent). */
    public static short receive(APDU apdu) {
        short read = apdu.setIncomingAndReceive();
        short total = apdu.getIncomingLength();
        short off = apdu.getOffsetCdata();
        if ((short) (off + total) > usableLength(apdu.getBuffer()) || (short) (off + total) < 0) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        while (read < total) {
            short n = apdu.receiveBytes((short) (off + read));
            if (n <= 0) {
                ISOException.throwIt(Contract.SW_WRONG_LENGTH);
            }
            read += n;
        }
        if (off != ISO7816.OFFSET_CDATA && total > 0) {
            // extended Lc: the data starts at 7; every handler reads it at OFFSET_CDATA
            byte[] buf = apdu.getBuffer();
            Util.arrayCopyNonAtomic(buf, off, buf, ISO7816.OFFSET_CDATA, total);
        }
        return total;
    }

    /**
     * The buffer length as a short: jCardSim's extended APDU buffer is 32777 bytes, which
     * (short) would turn negative.
     */
    public static short usableLength(byte[] buf) {
        return buf.length > Short.MAX_VALUE ? Short.MAX_VALUE : (short) buf.length;
    }

    /** Whether the command came in the extended form (3-byte Lc or Le); before setOutgoing. */
    public static boolean isExtended(APDU apdu) {
        return apdu.getOffsetCdata() == EXTENDED_CDATA;
    }

    private static final short EXTENDED_CDATA = 7;

    public static void requireP1P2Zero(byte[] buf) {
        if (buf[ISO7816.OFFSET_P1] != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
    }

    public static void requireNoData(short lc) {
        if (lc != 0) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
    }

    /** Sends buf[0..len). */
    public static void send(APDU apdu, short len) {
        apdu.setOutgoing();
        apdu.setOutgoingLength(len);
        apdu.sendBytes((short) 0, len);
    }

    /** Copies a value to the APDU buffer and sends it. */
    public static void sendValue(APDU apdu, byte[] value, short off, short len) {
        Util.arrayCopyNonAtomic(value, off, apdu.getBuffer(), (short) 0, len);
        send(apdu, len);
    }

    public static boolean isDigits(byte[] buf, short off, short len) {
        for (short i = 0; i < len; i++) {
            byte c = buf[(short) (off + i)];
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
    }

    /** GET CHALLENGE 00 84 00 00 Le, answered from the issuer-auth generator. */
    public static void getChallenge(APDU apdu, short lc, IssuerAuth issuer) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        requireNoData(lc);
        if (isExtended(apdu)) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED); // as the real card: 6985
        }
        short le = apdu.setOutgoing();
        if (le <= 0 || le > 256) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        issuer.challenge(buf, (short) 0, le);
        apdu.setOutgoingLength(le);
        apdu.sendBytes((short) 0, le);
    }

    /** EXTERNAL AUTHENTICATE 00 82 00 00 10 cryptogram. */
    public static void externalAuthenticate(APDU apdu, short lc, IssuerAuth issuer) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        issuer.authenticate(buf, ISO7816.OFFSET_CDATA, lc);
    }

    /**
     * The offset of the application-specific install parameters in a GlobalPlatform
     * INSTALL [for install] data block (AID-len AID priv-len priv param-len params);
     * the parameter length is at the returned offset - 1. Throws 6A80 when shorter than
     * minLength.
     */
    public static short installParams(byte[] b, short off, byte len, short minLength) {
        short end = (short) (off + (len & 0xFF));
        short p = (short) (off + 1 + (b[off] & 0xFF));          // skip AID
        p = (short) (p + 1 + (b[p] & 0xFF));                      // skip privileges
        short plen = (short) (b[p] & 0xFF);
        p++;
        if (plen < minLength || (short) (p + plen) > end) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        return p;
    }
}
