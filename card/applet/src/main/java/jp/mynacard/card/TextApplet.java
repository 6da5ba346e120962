package jp.mynacard.card;

import javacard.framework.APDU;
import javacard.framework.ISOException;
import jp.mynacard.common.Contract;
import jp.mynacard.common.ElementaryFile;
import jp.mynacard.common.ReferenceData;

/** 券面事項入力補助AP: My Number, basic four facts, integrity record. */
public final class TextApplet extends CardArea {
    private static final byte PIN = 0x01;
    private static final byte CODE_A = 0x02;
    private static final byte CODE_B = 0x04;

    private TextApplet() {
        super((byte) 8, (byte) 4, (byte) 0);
        pins[0] = pin(Contract.FID_TEXT_PIN, Contract.PIN_MIN_TEXT_PIN, Contract.PIN_MAX_TEXT_PIN,
                Contract.PIN_CHARSET_TEXT_PIN, Contract.PIN_TRIES_TEXT_PIN, true,
                Contract.PIN_BIT_TEXT);
        pins[1] = pin(Contract.FID_TEXT_CODE_A, Contract.PIN_MIN_TEXT_CODE_A,
                Contract.PIN_MAX_TEXT_CODE_A, Contract.PIN_CHARSET_TEXT_CODE_A,
                Contract.PIN_TRIES_TEXT_CODE_A, false, (byte) 0);
        pins[2] = pin(Contract.FID_TEXT_CODE_B, Contract.PIN_MIN_TEXT_CODE_B,
                Contract.PIN_MAX_TEXT_CODE_B, Contract.PIN_CHARSET_TEXT_CODE_B,
                Contract.PIN_TRIES_TEXT_CODE_B, false, (byte) 0);
        files[0] = new ElementaryFile(Contract.FID_TEXT_MY_NUMBER, Contract.SIZE_TEXT_MY_NUMBER,
                Contract.ACCESS_CREDENTIAL, (byte) (PIN | CODE_A));
        files[1] = new ElementaryFile(Contract.FID_TEXT_BASIC_FOUR, Contract.SIZE_TEXT_BASIC_FOUR,
                Contract.ACCESS_CREDENTIAL, (byte) (PIN | CODE_B));
        files[2] = new ElementaryFile(Contract.FID_TEXT_INTEGRITY, Contract.SIZE_TEXT_INTEGRITY,
                Contract.ACCESS_CREDENTIAL, (byte) (PIN | CODE_A | CODE_B));
        files[3] = new ElementaryFile(Contract.FID_TEXT_CV_CERT, Contract.SIZE_TEXT_CV_CERT,
                Contract.ACCESS_FREE, (byte) 0);
        files[4] = new ElementaryFile(Contract.FID_TEXT_AP_BASIC, Contract.SIZE_TEXT_AP_BASIC,
                Contract.ACCESS_FREE, (byte) 0);
        files[5] = new ElementaryFile(Contract.TEXT_SESSION_KEY,
                Contract.TEXT_SESSION_KEY_SIZE, Contract.ACCESS_CREDENTIAL,
                (byte) (PIN | CODE_A | CODE_B));
        files[6] = new ElementaryFile(Contract.TEXT_CARD_KEY, Contract.TEXT_CARD_KEY_SIZE,
                Contract.ACCESS_CREDENTIAL, (byte) (PIN | CODE_A | CODE_B));
        files[7] = new ElementaryFile(Contract.TEXT_UNKNOWN, Contract.TEXT_UNKNOWN_SIZE,
                Contract.ACCESS_FREE, (byte) 0);
        pins[3] = ReferenceData.blockedKey(Contract.TEXT_BLOCKED_KEY);
    }

    /**
     * SET SESSION KEY: the only area with secure messaging answers 9000 to the bare command;
     * it cannot open a session key sent to it (the real card's key is not emulated): 6A80.
     */
    protected void setSessionKey(APDU apdu, byte[] buf, short lc) {
        if (lc != 0) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new TextApplet().register();
    }

    protected byte updateCredentials(short fid) {
        return PIN;
    }
}
