package jp.mynacard.municipal;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import jp.mynacard.common.ApduUtil;
import jp.mynacard.common.AreaApplet;
import jp.mynacard.common.Contract;
import jp.mynacard.common.ElementaryFile;
import jp.mynacard.common.IssuerAuth;
import jp.mynacard.common.ReferenceData;

/**
 * Municipal free-area example: a library card. Its own issuer key (install parameters:
 * serial || municipal card key), its own life cycle: blank (issuer writes EF 0001, may set
 * the PIN) → {@code 80 F0 80 03} locks it (holder sets the PIN once if unset, VERIFY opens
 * 0001) → {@code 80 F0 80 05} terminates it. GET DATA DF71 answers its life cycle.
 */
public final class LibraryApplet extends AreaApplet {
    private static final byte PIN = 0x01;
    private final byte[] lifeCycle;
    private final IssuerAuth issuer;

    private LibraryApplet(byte[] b, short off) {
        super((byte) 1, (byte) 1, (byte) 0);
        if (!ApduUtil.isDigits(b, off, Contract.SERIAL_LENGTH)) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        issuer = new IssuerAuth();
        issuer.setKey(b, (short) (off + Contract.SERIAL_LENGTH));
        lifeCycle = new byte[] {Contract.LIFE_CYCLE_BLANK};
        pins[0] = new ReferenceData(Contract.FID_LIBRARY_PIN, Contract.PIN_MIN_LIBRARY_PIN,
                Contract.PIN_MAX_LIBRARY_PIN, Contract.PIN_CHARSET_LIBRARY_PIN,
                Contract.PIN_TRIES_LIBRARY_PIN, true, (byte) 0);
        files[0] = new ElementaryFile(Contract.FID_LIBRARY_NUMBER, Contract.SIZE_LIBRARY_NUMBER,
                Contract.ACCESS_CREDENTIAL, PIN);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        short p = ApduUtil.installParams(bArray, bOffset, bLength,
                (short) (Contract.SERIAL_LENGTH + Contract.CARD_KEY_LENGTH));
        new LibraryApplet(bArray, p).register();
    }

    protected boolean holderState() {
        return lifeCycle[0] == Contract.LIFE_CYCLE_ISSUED;
    }

    protected boolean personalisationState() {
        return lifeCycle[0] == Contract.LIFE_CYCLE_BLANK;
    }

    protected boolean postIssueState() {
        return lifeCycle[0] == Contract.LIFE_CYCLE_ISSUED;
    }

    protected boolean holderMaySetPin() {
        return lifeCycle[0] == Contract.LIFE_CYCLE_ISSUED;
    }

    protected boolean terminated() {
        return lifeCycle[0] == Contract.LIFE_CYCLE_TERMINATED;
    }

    protected IssuerAuth issuer() {
        return issuer;
    }

    protected byte updateCredentials(short fid) {
        return PIN;
    }

    protected void other(APDU apdu, byte ins, short lc) {
        byte[] buf = apdu.getBuffer();
        if (ins == Contract.INS_GET_DATA) {
            if (Util.getShort(buf, ISO7816.OFFSET_P1) != Contract.TAG_LIFE_CYCLE) {
                ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
            }
            buf[0] = lifeCycle[0];
            ApduUtil.send(apdu, (short) 1);
            return;
        }
        if (ins != Contract.INS_SET_STATUS) {
            ISOException.throwIt(Contract.SW_INS_NOT_SUPPORTED);
        }
        if (terminated()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (buf[ISO7816.OFFSET_P1] != (byte) 0x80) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        ApduUtil.requireNoData(lc);
        if (!issuer.isAuthenticated()) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        byte target = buf[ISO7816.OFFSET_P2];
        if (target == Contract.LIFE_CYCLE_TERMINATED
                || (target == Contract.LIFE_CYCLE_ISSUED && lifeCycle[0] == Contract.LIFE_CYCLE_BLANK)) {
            lifeCycle[0] = target;
            return;
        }
        ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
    }
}
