package jp.mynacard.card;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import jp.mynacard.common.ApduUtil;
import jp.mynacard.common.Contract;
import jp.mynacard.common.SafeApplet;
import javacardx.apdu.ExtendedLength;

/**
 * The card manager (ISD AID), selected at power-on: MF-level GET DATA, PUT DATA and
 * SET STATUS, issuer authentication. An object longer than 256 bytes (the two CV
 * certificates) answers only an extended Le; a short one gives 6700, as on the real card. Install parameters: serial (15 ASCII digits) ||
 * card key (16 bytes) || card-authentication key (16 bytes, for key attestation).
 */
public final class CardManagerApplet extends SafeApplet implements ExtendedLength {
    /** The one EF the real card lets one select at MF level: it holds nothing readable. */
    private static final short FID_MF_UNREADABLE = 0x001E;

    /** [0] = 1 when EF 001E is the current EF; cleared when the card manager is left. */
    private final byte[] current;

    private CardManagerApplet(byte[] b, short off) {
        CardState.ensure();
        current = JCSystem.makeTransientByteArray((short) 1, JCSystem.CLEAR_ON_DESELECT);
        if (!ApduUtil.isDigits(b, off, Contract.SERIAL_LENGTH)) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        Util.arrayCopy(b, off, CardState.serial, (short) 0, Contract.SERIAL_LENGTH);
        CardState.issuer.setKey(b, (short) (off + Contract.SERIAL_LENGTH));
        CardState.attestation.setKey(b,
                (short) (off + Contract.SERIAL_LENGTH + Contract.CARD_KEY_LENGTH));
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        short p = ApduUtil.installParams(bArray, bOffset, bLength,
                (short) (Contract.SERIAL_LENGTH + 2 * Contract.CARD_KEY_LENGTH));
        new CardManagerApplet(bArray, p).register();
    }

    protected void handle(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        ApduUtil.checkCla(buf[ISO7816.OFFSET_CLA], buf[ISO7816.OFFSET_INS]);
        if (selectingApplet()) {
            return;
        }
        byte ins = buf[ISO7816.OFFSET_INS];
        short lc = ApduUtil.receive(apdu);
        switch (ins) {
            case Contract.INS_SELECT:
                select(buf, lc);
                return;
            case Contract.INS_GET_DATA:
                getData(apdu, buf);
                return;
            case Contract.INS_READ_BINARY:
            case Contract.INS_READ_RECORD:
                readUnreadable(buf, ins);
                return;
            case Contract.INS_LAST_COMMAND_INDICATOR:
                if (buf[ISO7816.OFFSET_CLA] == Contract.CLA_PROPRIETARY) {
                    ISOException.throwIt(Contract.SW_WRONG_LENGTH);  // a phone token's command
                }
                ISOException.throwIt(Contract.SW_INS_NOT_SUPPORTED);
                return;
            case Contract.INS_PUT_DATA:
            case Contract.INS_SET_STATUS:
            case Contract.INS_GET_CHALLENGE:
            case Contract.INS_EXTERNAL_AUTHENTICATE:
                break;
            default:
                ISOException.throwIt(Contract.SW_INS_NOT_SUPPORTED);
        }
        if (CardState.lifeCycle() == Contract.LIFE_CYCLE_TERMINATED) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        switch (ins) {
            case Contract.INS_PUT_DATA:
                putData(buf, lc);
                return;
            case Contract.INS_SET_STATUS:
                setStatus(buf, lc);
                return;
            case Contract.INS_GET_CHALLENGE:
                ApduUtil.getChallenge(apdu, lc, CardState.issuer);
                return;
            default:
                ApduUtil.externalAuthenticate(apdu, lc, CardState.issuer);
        }
    }

    /**
     * READ BINARY / READ RECORD at MF level: on EF 001E (current, or named by SFI 1E) 6981, as
     * on the real card; the card manager has no other EF to read (6D00, as before).
     */
    private void readUnreadable(byte[] buf, byte ins) {
        boolean target;
        if (ins == Contract.INS_READ_BINARY) {
            byte p1 = buf[ISO7816.OFFSET_P1];
            target = (p1 & 0x80) != 0 ? (p1 & 0x1F) == FID_MF_UNREADABLE : current[0] != 0;
        } else {
            byte sfi = (byte) ((buf[ISO7816.OFFSET_P2] >> 3) & 0x1F);
            target = sfi == 0 ? current[0] != 0 : sfi == FID_MF_UNREADABLE;
        }
        ISOException.throwIt(target ? Contract.SW_COMMAND_INCOMPATIBLE
                : Contract.SW_INS_NOT_SUPPORTED);
    }

    /** The card manager has one selectable EF, 001E (unreadable); unknown AIDs are not found. */
    private void select(byte[] buf, short lc) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        if ((p1 != Contract.SELECT_P1_BY_NAME && p1 != Contract.SELECT_P1_BY_FID)
                || (p2 != Contract.SELECT_P2_NO_RESPONSE && p2 != 0)) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        if (p1 == Contract.SELECT_P1_BY_FID && lc != 2) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (p1 == Contract.SELECT_P1_BY_FID
                && Util.getShort(buf, ISO7816.OFFSET_CDATA) == FID_MF_UNREADABLE) {
            current[0] = 1;
            return;
        }
        ISOException.throwIt(Contract.SW_FILE_NOT_FOUND);
    }

    private void getData(APDU apdu, byte[] buf) {
        short tag = Util.getShort(buf, ISO7816.OFFSET_P1);
        short len;
        boolean extended = ApduUtil.isExtended(apdu);
        switch (tag) {
            case Contract.TAG_ISSUER_ID:
                len = mfObject(CardState.M_ISSUER_ID, buf);
                break;
            case Contract.TAG_INTERMEDIATE_KEY_ID:
                len = mfObject(CardState.M_INTERMEDIATE_KEY_ID, buf);
                break;
            case Contract.TAG_CHAIN_UPPER:
                len = mfObject(CardState.M_CHAIN_UPPER, buf);
                break;
            case Contract.TAG_CHAIN_LOWER:
                len = mfObject(CardState.M_CHAIN_LOWER, buf);
                break;
            case Contract.TAG_CARD_RECOGNITION:
                len = Util.arrayCopyNonAtomic(Contract.CARD_RECOGNITION_DATA, (short) 0, buf,
                        (short) 0, (short) Contract.CARD_RECOGNITION_DATA.length);
                break;
            case Contract.TAG_CARD_SERIAL:
                len = Util.arrayCopyNonAtomic(CardState.serial, (short) 0, buf, (short) 0,
                        Contract.SERIAL_LENGTH);
                break;
            case Contract.TAG_MUNICIPALITY_CODE:
                if (CardState.state[CardState.S_HAS_MUNICIPALITY] == 0) {
                    ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
                }
                len = Util.arrayCopyNonAtomic(CardState.municipality, (short) 0, buf, (short) 0,
                        Contract.MUNICIPALITY_CODE_LENGTH);
                break;
            case Contract.TAG_EXPIRY:
                if (CardState.state[CardState.S_HAS_EXPIRY] == 0) {
                    ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
                }
                len = Util.arrayCopyNonAtomic(CardState.expiry, (short) 0, buf, (short) 0,
                        Contract.EXPIRY_LENGTH);
                break;
            case Contract.TAG_CONTACT_ATR:
                len = Util.arrayCopyNonAtomic(Contract.ATR, (short) 1, buf, (short) 0,
                        (short) (Contract.ATR.length - 1));
                break;
            case Contract.TAG_LIFE_CYCLE:
                buf[0] = CardState.lifeCycle();
                len = 1;
                break;
            case Contract.TAG_PIN_STATUS:
                buf[0] = CardState.state[CardState.S_REQUIRED];
                buf[1] = CardState.state[CardState.S_SET];
                len = 2;
                break;
            default:
                ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
                return;
        }
        if (len > 256 && !extended) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        short le = apdu.setOutgoing();
        if (le > 0 && le < len && len <= 256) {
            ISOException.throwIt((short) (0x6C00 | len));
        }
        apdu.setOutgoingLength(len);
        apdu.sendBytes((short) 0, len);
    }

    /**
     * Copies MF object i to the buffer; 6A88 when never written, 6700 when it does not fit
     * the buffer (a CV certificate asked for with a short APDU).
     */
    private short mfObject(short i, byte[] buf) {
        short len = CardState.mfLengths[i];
        if (len == 0) {
            ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
        }
        if (len > ApduUtil.usableLength(buf)) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        return Util.arrayCopyNonAtomic(CardState.mfObjects[i], (short) 0, buf, (short) 0, len);
    }

    private void putData(byte[] buf, short lc) {
        CardState.requirePersonalisation();
        short tag = Util.getShort(buf, ISO7816.OFFSET_P1);
        short object = -1;
        if (tag == Contract.TAG_ISSUER_ID) {
            object = CardState.M_ISSUER_ID;
        } else if (tag == Contract.TAG_INTERMEDIATE_KEY_ID) {
            object = CardState.M_INTERMEDIATE_KEY_ID;
        } else if (tag == Contract.TAG_CHAIN_UPPER) {
            object = CardState.M_CHAIN_UPPER;
        } else if (tag == Contract.TAG_CHAIN_LOWER) {
            object = CardState.M_CHAIN_LOWER;
        }
        if (object >= 0) {
            putObject(object, buf, lc);
            return;
        }
        byte[] target;
        short flag;
        if (tag == Contract.TAG_MUNICIPALITY_CODE) {
            target = CardState.municipality;
            flag = CardState.S_HAS_MUNICIPALITY;
        } else if (tag == Contract.TAG_EXPIRY) {
            target = CardState.expiry;
            flag = CardState.S_HAS_EXPIRY;
        } else {
            ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
            return;
        }
        if (lc != (short) target.length) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!ApduUtil.isDigits(buf, ISO7816.OFFSET_CDATA, lc)) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        Util.arrayCopy(buf, ISO7816.OFFSET_CDATA, target, (short) 0, lc);
        CardState.state[flag] = 1;
    }

    /** A key ID is exactly 16 bytes; a CV certificate 1..568 bytes starting 7F21. */
    private void putObject(short i, byte[] buf, short lc) {
        byte[] target = CardState.mfObjects[i];
        boolean keyId = i == CardState.M_ISSUER_ID || i == CardState.M_INTERMEDIATE_KEY_ID;
        if (keyId ? lc != Contract.KEY_ID_LENGTH : (lc < 4 || lc > (short) target.length)) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!keyId && Util.getShort(buf, ISO7816.OFFSET_CDATA) != Contract.TAG_CHAIN_LOWER) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, ISO7816.OFFSET_CDATA, target, (short) 0, lc);
        CardState.mfLengths[i] = lc;
        JCSystem.commitTransaction();
    }

    private void setStatus(byte[] buf, short lc) {
        if (buf[ISO7816.OFFSET_P1] != (byte) 0x80) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        ApduUtil.requireNoData(lc);
        if (!CardState.issuer.isAuthenticated()) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        CardState.setStatus(buf[ISO7816.OFFSET_P2]);
    }
}
