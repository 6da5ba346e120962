package jp.mynacard.common;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacardx.apdu.ExtendedLength;
import javacardx.crypto.Cipher;

/**
 * An application area with a flat file system of data EFs, PIN EFs and RSA key EFs:
 * SELECT, READ BINARY, UPDATE BINARY, VERIFY, CHANGE REFERENCE DATA / CHANGE KEY,
 * RESET RETRY COUNTER, GENERATE, SIGN, GET CHALLENGE, EXTERNAL AUTHENTICATE, READ RECORD /
 * UPDATE RECORD (record EFs; a transparent EF answers 6981) and INTERNAL AUTHENTICATE (a key
 * without a PIN signs with no credential; a key behind a PIN answers 6982).
 * Subclasses declare their files and say which life-cycle state allows what.
 * Extended-length APDUs are taken: READ BINARY with an extended Le returns the whole rest of
 * the file, an extended Lc reaches the handler as if short, GET CHALLENGE refuses it (6985).
 */
public abstract class AreaApplet extends SafeApplet implements ExtendedLength {
    private static final byte KIND_NONE = 0;
    private static final byte KIND_DATA = 1;
    private static final byte KIND_PIN = 2;
    private static final byte KIND_KEY = 3;

    private static final short R_KIND = 0;
    private static final short R_INDEX = 1;
    private static final short R_VERIFIED = 2;
    private static final short R_FOUND_KIND = 3;
    private static final short R_FOUND_INDEX = 4;

    protected final ElementaryFile[] files;
    protected final ReferenceData[] pins;
    protected final RsaKeySlot[] keys;
    private final byte[] ram;
    private final byte[] scratch;
    private final Cipher rsa;

    protected AreaApplet(byte fileCount, byte pinCount, byte keyCount) {
        files = new ElementaryFile[fileCount];
        pins = new ReferenceData[pinCount];
        keys = new RsaKeySlot[keyCount];
        ram = JCSystem.makeTransientByteArray((short) 5, JCSystem.CLEAR_ON_RESET);
        scratch = keyCount == 0 ? null
                : JCSystem.makeTransientByteArray(Contract.RSA_MODULUS_BYTES, JCSystem.CLEAR_ON_RESET);
        rsa = keyCount == 0 ? null : Cipher.getInstance(Cipher.ALG_RSA_PKCS1, false);
    }

    protected final RsaKeySlot newKey(short fid, byte pinMask, byte bit) {
        return new RsaKeySlot(fid, pinMask, bit, rsa);
    }

    // ---- life-cycle hooks ------------------------------------------------------------

    /** Holder operations (READ BINARY, VERIFY, CHANGE, SIGN) are allowed. */
    protected abstract boolean holderState();

    /** The issuer may personalise (with issuer authentication alone). */
    protected abstract boolean personalisationState();

    /** After issue: issuer updates need the issuer and a holder credential. */
    protected abstract boolean postIssueState();

    /** The holder may set a holder PIN that is not set yet. */
    protected abstract boolean holderMaySetPin();

    /** Everything but SELECT and GET DATA is refused. */
    protected abstract boolean terminated();

    protected abstract IssuerAuth issuer();

    /** Bit i: PIN i is a holder credential that allows updating the file or key fid. */
    protected abstract byte updateCredentials(short fid);

    /** Called after a PIN was set (by the issuer or the holder). */
    protected void pinSet(ReferenceData pin) {
    }

    /** Called after a key pair was generated. */
    protected void keyGenerated(RsaKeySlot key) {
    }

    /** The key attestation of the card, or null when this area answers no ATTEST KEY (6D00). */
    protected KeyAttestation attestation() {
        return null;
    }

    /**
     * SET SESSION KEY 80 AE: what the area answers. Default: not known (other(), 6D00); the
     * card areas answer as the real card's applications do.
     */
    protected void setSessionKey(APDU apdu, byte[] buf, short lc) {
        other(apdu, Contract.INS_SET_SESSION_KEY, lc);
    }

    /** Commands this class does not know; default 6D00. */
    protected void other(APDU apdu, byte ins, short lc) {
        ISOException.throwIt(Contract.SW_INS_NOT_SUPPORTED);
    }

    // ---- session -------------------------------------------------------------------

    /**
     * Selecting the current application again keeps the verified PINs (ISO 7816-4 ties the
     * security status to the current DF) but no current EF; selecting it from another
     * application starts from nothing. A reset clears the RAM anyway.
     */
    protected boolean selected(boolean again) {
        if (again) {
            byte verifiedPins = ram[R_VERIFIED];
            clearSession();
            ram[R_VERIFIED] = verifiedPins;
        } else {
            clearSession();
        }
        return true;
    }

    protected void deselected() {
        wipe();
    }

    private void clearSession() {
        Util.arrayFillNonAtomic(ram, (short) 0, (short) ram.length, (byte) 0);
        wipe();
    }

    protected void wipe() {
        if (scratch != null) {
            Util.arrayFillNonAtomic(scratch, (short) 0, (short) scratch.length, (byte) 0);
        }
    }

    protected final boolean verified(byte mask) {
        return (ram[R_VERIFIED] & mask) != 0;
    }

    // ---- dispatch ---------------------------------------------------------------------

    protected void handle(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        ApduUtil.checkCla(buf[ISO7816.OFFSET_CLA], buf[ISO7816.OFFSET_INS]);
        if (selectingApplet()) {
            return;
        }
        byte ins = buf[ISO7816.OFFSET_INS];
        short lc = ApduUtil.receive(apdu);
        boolean proprietary = buf[ISO7816.OFFSET_CLA] == Contract.CLA_PROPRIETARY;
        switch (ins) {
            case Contract.INS_SELECT:
                selectFile(buf, lc);
                return;
            case Contract.INS_LAST_COMMAND_INDICATOR:
                if (proprietary) {  // a phone token's command: a physical card says 6700
                    ISOException.throwIt(Contract.SW_WRONG_LENGTH);
                }
                other(apdu, ins, lc);
                return;
            case Contract.INS_SET_SESSION_KEY:
                if (proprietary) {
                    setSessionKey(apdu, buf, lc);
                } else {
                    other(apdu, ins, lc);
                }
                return;
            case Contract.INS_READ_BINARY:
            case Contract.INS_UPDATE_BINARY:
            case Contract.INS_VERIFY:
            case Contract.INS_CHANGE_REFERENCE_DATA:
            case Contract.INS_CHANGE_KEY:
            case Contract.INS_RESET_RETRY_COUNTER:
            case Contract.INS_SIGN:
            case Contract.INS_GENERATE_KEY:
            case Contract.INS_GET_CHALLENGE:
            case Contract.INS_EXTERNAL_AUTHENTICATE:
            case Contract.INS_READ_RECORD:
            case Contract.INS_UPDATE_RECORD:
                break;
            case Contract.INS_INTERNAL_AUTHENTICATE:
                if (buf[ISO7816.OFFSET_CLA] != Contract.CLA_ISO) {  // an ISO command only
                    other(apdu, ins, lc);
                    return;
                }
                break;
            case Contract.INS_ATTEST_KEY:
                if (attestation() == null) {
                    other(apdu, ins, lc);
                    return;
                }
                break;
            default:
                other(apdu, ins, lc);
                return;
        }
        if (terminated()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        switch (ins) {
            case Contract.INS_READ_BINARY:
                readBinary(apdu, buf, lc);
                return;
            case Contract.INS_UPDATE_BINARY:
                updateBinary(buf, lc);
                return;
            case Contract.INS_VERIFY:
                verify(buf, lc);
                return;
            case Contract.INS_CHANGE_REFERENCE_DATA:
            case Contract.INS_CHANGE_KEY:
                change(buf, ins, lc);
                return;
            case Contract.INS_RESET_RETRY_COUNTER:
                resetRetryCounter(buf, lc);
                return;
            case Contract.INS_SIGN:
                sign(apdu, buf, lc);
                return;
            case Contract.INS_GENERATE_KEY:
                generate(apdu, buf, lc);
                return;
            case Contract.INS_GET_CHALLENGE:
                ApduUtil.getChallenge(apdu, lc, issuer());
                return;
            case Contract.INS_ATTEST_KEY:
                attestKey(apdu, buf, lc);
                return;
            case Contract.INS_READ_RECORD:
                readRecord(apdu, buf, lc);
                return;
            case Contract.INS_UPDATE_RECORD:
                updateRecord(buf, lc);
                return;
            case Contract.INS_INTERNAL_AUTHENTICATE:
                internalAuthenticate(apdu, buf, lc);
                return;
            default: // INS_EXTERNAL_AUTHENTICATE
                ApduUtil.externalAuthenticate(apdu, lc, issuer());
        }
    }

    // ---- file system ---------------------------------------------------------------

    /** Finds fid; sets R_FOUND_KIND / R_FOUND_INDEX; false when absent. */
    private boolean find(short fid) {
        for (byte i = 0; i < files.length; i++) {
            if (files[i].fid == fid) {
                return found(KIND_DATA, i);
            }
        }
        for (byte i = 0; i < pins.length; i++) {
            if (pins[i].fid == fid) {
                return found(KIND_PIN, i);
            }
        }
        for (byte i = 0; i < keys.length; i++) {
            if (keys[i].fid == fid) {
                return found(KIND_KEY, i);
            }
        }
        return false;
    }

    private boolean found(byte kind, byte index) {
        ram[R_FOUND_KIND] = kind;
        ram[R_FOUND_INDEX] = index;
        return true;
    }

    private void makeFoundCurrent() {
        ram[R_KIND] = ram[R_FOUND_KIND];
        ram[R_INDEX] = ram[R_FOUND_INDEX];
    }

    /** The current EF into R_FOUND_*; 6986 when none. */
    private void current() {
        if (ram[R_KIND] == KIND_NONE) {
            ISOException.throwIt(Contract.SW_NO_CURRENT_EF);
        }
        ram[R_FOUND_KIND] = ram[R_KIND];
        ram[R_FOUND_INDEX] = ram[R_INDEX];
    }

    private void bySfi(byte sfi) {
        if (sfi == 0 || !find(sfi)) {
            ISOException.throwIt(Contract.SW_FILE_NOT_FOUND);
        }
    }

    /** P2 = 80 (current EF) or 80|SFI. */
    private void byReference(byte p2) {
        if (p2 == Contract.P2_CURRENT_KEY) {
            current();
        } else if ((p2 & 0xE0) == 0x80) {
            bySfi((byte) (p2 & 0x1F));
        } else {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
    }

    private void requireKind(byte kind) {
        if (ram[R_FOUND_KIND] != kind) {
            ISOException.throwIt(Contract.SW_COMMAND_INCOMPATIBLE);
        }
    }


    private void selectFile(byte[] buf, short lc) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        if (p2 != Contract.SELECT_P2_NO_RESPONSE && p2 != 0) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        if (p1 == Contract.SELECT_P1_BY_NAME) {
            // A known AID is selected by the runtime before we see it.
            ISOException.throwIt(Contract.SW_FILE_NOT_FOUND);
        }
        if (p1 == Contract.SELECT_P1_MF && lc == 0) {
            // SELECT MF with an application selected: 9000, the current DF (and EF) unchanged
            return;
        }
        if (p1 != Contract.SELECT_P1_BY_FID) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        if (lc != 2) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!find(Util.getShort(buf, ISO7816.OFFSET_CDATA))) {
            ISOException.throwIt(Contract.SW_FILE_NOT_FOUND);
        }
        makeFoundCurrent();
    }

    /** Resolves READ/UPDATE BINARY P1-P2 to a data EF; returns the offset. */
    private short binaryTarget(byte[] buf) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        short offset;
        if ((p1 & 0x80) != 0) {
            if ((p1 & 0x60) != 0) {
                ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
            }
            bySfi((byte) (p1 & 0x1F));
            makeFoundCurrent();
            offset = (short) (p2 & 0xFF);
        } else {
            current();
            offset = Util.getShort(buf, ISO7816.OFFSET_P1);
        }
        requireKind(KIND_DATA);
        if (files[ram[R_FOUND_INDEX]].isRecordFile()) {
            ISOException.throwIt(Contract.SW_COMMAND_INCOMPATIBLE);
        }
        return offset;
    }

    /**
     * Resolves READ/UPDATE RECORD P1-P2 to a record EF: P2 = SFI<<3 | 100 (SFI 0 = the current
     * EF), P1 = the record number. Returns the offset of the record in the file.
     */
    private short recordTarget(byte[] buf) {
        byte p2 = buf[ISO7816.OFFSET_P2];
        if ((p2 & 0x07) != Contract.RECORD_P2_BY_NUMBER) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        byte sfi = (byte) ((p2 >> 3) & 0x1F);
        if (sfi == 0) {
            current();
        } else {
            bySfi(sfi);
            makeFoundCurrent();
        }
        requireKind(KIND_DATA);
        ElementaryFile f = files[ram[R_FOUND_INDEX]];
        if (!f.isRecordFile()) {
            ISOException.throwIt(Contract.SW_COMMAND_INCOMPATIBLE);
        }
        short record = (short) (buf[ISO7816.OFFSET_P1] & 0xFF);
        if (record == 0 || record > f.records()) {
            ISOException.throwIt(Contract.SW_RECORD_NOT_FOUND);
        }
        return (short) ((short) (record - 1) * f.recordLength);
    }

    private void readRecord(APDU apdu, byte[] buf, short lc) {
        requireHolderState();
        ApduUtil.requireNoData(lc);
        short offset = recordTarget(buf);
        ElementaryFile f = files[ram[R_FOUND_INDEX]];
        if (f.access != Contract.ACCESS_FREE && !verified(f.credentials)) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        f.read(offset, buf, (short) 0, f.recordLength);
        ApduUtil.send(apdu, f.recordLength);
    }

    private void updateRecord(byte[] buf, short lc) {
        short offset = recordTarget(buf);
        ElementaryFile f = files[ram[R_FOUND_INDEX]];
        requireIssuerWrite(f.fid);
        if (lc != f.recordLength) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        f.write(offset, buf, ISO7816.OFFSET_CDATA, lc);
    }

    private void requireHolderState() {
        if (!holderState()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
    }

    private void readBinary(APDU apdu, byte[] buf, short lc) {
        requireHolderState();
        ApduUtil.requireNoData(lc);
        short offset = binaryTarget(buf);
        ElementaryFile f = files[ram[R_FOUND_INDEX]];
        if (f.access != Contract.ACCESS_FREE && !verified(f.credentials)) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (offset >= f.size) {
            ISOException.throwIt(Contract.SW_OFFSET_OUT_OF_RANGE);
        }
        short max = ApduUtil.isExtended(apdu) ? ApduUtil.usableLength(buf) : (short) 256;
        short le = apdu.setOutgoing();
        if (le <= 0 || le > max) {
            le = max;
        }
        short n = (short) (f.size - offset);
        if (n > le) {
            n = le;
        }
        f.read(offset, buf, (short) 0, n);
        apdu.setOutgoingLength(n);
        apdu.sendBytes((short) 0, n);
    }

    /** Issuer write access to fid: personalisation, or issuer + holder credential after issue. */
    private void requireIssuerWrite(short fid) {
        if (personalisationState()) {
            if (!issuer().isAuthenticated()) {
                ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
            }
        } else if (postIssueState()) {
            if (!issuer().isAuthenticated() || !verified(updateCredentials(fid))) {
                ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
            }
        } else {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
    }

    private void updateBinary(byte[] buf, short lc) {
        short offset = binaryTarget(buf);
        ElementaryFile f = files[ram[R_FOUND_INDEX]];
        requireIssuerWrite(f.fid);
        if (lc == 0) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (offset < 0 || (short) (offset + lc) > f.size || (short) (offset + lc) < 0) {
            ISOException.throwIt(Contract.SW_NOT_ENOUGH_SPACE);
        }
        f.write(offset, buf, ISO7816.OFFSET_CDATA, lc);
    }

    // ---- PINs --------------------------------------------------------------------------

    private ReferenceData pinByReference(byte p2) {
        byReference(p2);
        requireKind(KIND_PIN);
        return pins[ram[R_FOUND_INDEX]];
    }

    private byte foundPinMask() {
        return (byte) (1 << ram[R_FOUND_INDEX]);
    }

    private void verify(byte[] buf, short lc) {
        requireHolderState();
        if (buf[ISO7816.OFFSET_P1] != 0) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        ReferenceData pin = pinByReference(buf[ISO7816.OFFSET_P2]);
        byte mask = foundPinMask();
        if (lc > Contract.PIN_MAX_LENGTH) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!pin.isSet()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (lc == 0) {
            ISOException.throwIt((short) (Contract.SW_VERIFICATION_FAILED | pin.triesLeft()));
        }
        if (pin.isBlocked()) {
            ISOException.throwIt(Contract.SW_REFERENCE_DATA_BLOCKED);
        }
        boolean ok = pin.check(buf, ISO7816.OFFSET_CDATA, lc);
        Util.arrayFillNonAtomic(buf, ISO7816.OFFSET_CDATA, lc, (byte) 0);
        if (ok) {
            ram[R_VERIFIED] |= mask;
        } else {
            ram[R_VERIFIED] &= (byte) ~mask;
            ISOException.throwIt((short) (Contract.SW_VERIFICATION_FAILED | pin.triesLeft()));
        }
    }

    private void change(byte[] buf, byte ins, short lc) {
        requireHolderState();
        byte expectedP1 = ins == Contract.INS_CHANGE_KEY ? (byte) 0x00 : (byte) 0x01;
        if (buf[ISO7816.OFFSET_P1] != expectedP1) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        ReferenceData pin = pinByReference(buf[ISO7816.OFFSET_P2]);
        byte mask = foundPinMask();
        if (lc == 0 || lc > Contract.PIN_MAX_LENGTH) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!pin.isSet()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (pin.isBlocked()) {
            ISOException.throwIt(Contract.SW_REFERENCE_DATA_BLOCKED);
        }
        if (!verified(mask)) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (!pin.checkFormat(buf, ISO7816.OFFSET_CDATA, lc)) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        pin.set(buf, ISO7816.OFFSET_CDATA, lc);
        Util.arrayFillNonAtomic(buf, ISO7816.OFFSET_CDATA, lc, (byte) 0);
    }

    private void resetRetryCounter(byte[] buf, short lc) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        if (p1 != Contract.RESET_P1_NEW_VALUE && p1 != Contract.RESET_P1_COUNTER_ONLY) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        ReferenceData pin = pinByReference(buf[ISO7816.OFFSET_P2]);
        boolean issuerOk = issuer().isAuthenticated()
                && (personalisationState() || postIssueState());
        if (p1 == Contract.RESET_P1_COUNTER_ONLY) {
            ApduUtil.requireNoData(lc);
            if (!issuerOk) {
                ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
            }
            if (!pin.isSet()) {
                ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
            }
            pin.resetCounter();
            return;
        }
        if (lc == 0 || lc > Contract.PIN_MAX_LENGTH) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!issuerOk && !(holderMaySetPin() && pin.holder && !pin.isSet())) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (!pin.checkFormat(buf, ISO7816.OFFSET_CDATA, lc)) {
            ISOException.throwIt(Contract.SW_INCORRECT_DATA);
        }
        pin.set(buf, ISO7816.OFFSET_CDATA, lc);
        Util.arrayFillNonAtomic(buf, ISO7816.OFFSET_CDATA, lc, (byte) 0);
        pinSet(pin);
    }

    // ---- keys ----------------------------------------------------------------------------

    private void generate(APDU apdu, byte[] buf, short lc) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        if (buf[ISO7816.OFFSET_P2] != 0
                || (p1 != Contract.GENERATE_P1_GENERATE && p1 != Contract.GENERATE_P1_READ_PUBLIC)) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        ApduUtil.requireNoData(lc);
        current();
        requireKind(KIND_KEY);
        RsaKeySlot key = keys[ram[R_FOUND_INDEX]];
        if (p1 == Contract.GENERATE_P1_GENERATE) {
            requireIssuerWrite(key.fid);
            key.generate(scratch);
            keyGenerated(key);
        } else if (!key.isGenerated()) {
            ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
        }
        short n = key.modulus(buf, (short) 0);
        ApduUtil.send(apdu, n);
    }

    /**
     * ATTEST KEY 80 8A 00 P2 10 challenge: the MAC of the key slot's own public key under the
     * card-authentication key. Any state but terminated, no credential (it reveals nothing).
     */
    private void attestKey(APDU apdu, byte[] buf, short lc) {
        if (buf[ISO7816.OFFSET_P1] != Contract.KEY_ATTESTATION_P1) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        byReference(buf[ISO7816.OFFSET_P2]);
        requireKind(KIND_KEY);
        RsaKeySlot key = keys[ram[R_FOUND_INDEX]];
        if (lc != Contract.KEY_ATTESTATION_CHALLENGE_LENGTH) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        if (!key.isGenerated()) {
            ISOException.throwIt(Contract.SW_DATA_NOT_FOUND);
        }
        Util.arrayCopyNonAtomic(buf, ISO7816.OFFSET_CDATA, scratch, (short) 0, lc);
        short n = attestation().attest(key, scratch, (short) 0, buf, (short) 0);
        Util.arrayFillNonAtomic(scratch, (short) 0, lc, (byte) 0);
        ApduUtil.send(apdu, n);
    }

    /**
     * INTERNAL AUTHENTICATE 00 88 00 80|SFI Lc DigestInfo 00: PKCS#1 v1.5 with a key that needs
     * no credential (共通カードAP EF 0019); a key behind a PIN answers 6982, as on the real card.
     */
    private void internalAuthenticate(APDU apdu, byte[] buf, short lc) {
        requireHolderState();
        if (buf[ISO7816.OFFSET_P1] != 0) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        byReference(buf[ISO7816.OFFSET_P2]);
        requireKind(KIND_KEY);
        RsaKeySlot key = keys[ram[R_FOUND_INDEX]];
        if (key.pinMask != 0) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        signWith(apdu, buf, lc, key);
    }

    private void signWith(APDU apdu, byte[] buf, short lc, RsaKeySlot key) {
        if (!key.isGenerated()) {
            ISOException.throwIt(Contract.SW_CONDITIONS_NOT_SATISFIED);
        }
        if (lc < 1 || lc > Contract.SIGN_MAX_INPUT) {
            ISOException.throwIt(Contract.SW_WRONG_LENGTH);
        }
        Util.arrayCopyNonAtomic(buf, ISO7816.OFFSET_CDATA, scratch, (short) 0, lc);
        short n = key.sign(scratch, (short) 0, lc, buf, (short) 0);
        Util.arrayFillNonAtomic(scratch, (short) 0, lc, (byte) 0);
        ApduUtil.send(apdu, n);
    }

    private void sign(APDU apdu, byte[] buf, short lc) {
        requireHolderState();
        if (buf[ISO7816.OFFSET_P1] != Contract.SIGN_P1_PKCS1_V15) {
            ISOException.throwIt(Contract.SW_INCORRECT_P1P2);
        }
        byReference(buf[ISO7816.OFFSET_P2]);
        requireKind(KIND_KEY);
        RsaKeySlot key = keys[ram[R_FOUND_INDEX]];
        if (!verified(key.pinMask)) {
            ISOException.throwIt(Contract.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        signWith(apdu, buf, lc, key);
    }
}
