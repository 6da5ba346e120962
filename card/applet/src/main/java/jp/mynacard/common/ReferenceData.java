package jp.mynacard.common;

import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * A PIN, password or verification code (key EF): value, format, retry counter and the
 * "set" flag. The verified state is per session and lives in the owning applet.
 */
public final class ReferenceData {
    public final short fid;
    public final byte minLength;
    public final byte maxLength;
    public final byte charset;
    public final byte maxTries;
    /** True for a PIN the holder sets (counts for activation), false for an issuer code. */
    public final boolean holder;
    /** The card-wide PinBit of a holder PIN, 0 for none. */
    public final byte bit;

    private static final byte ST_LENGTH = 0;
    private static final byte ST_TRIES = 1;
    private static final byte ST_SET = 2;

    private final byte[] value;
    private final byte[] state;

    public ReferenceData(short fid, byte minLength, byte maxLength, byte charset, byte maxTries,
                         boolean holder, byte bit) {
        this.fid = fid;
        this.minLength = minLength;
        this.maxLength = maxLength;
        this.charset = charset;
        this.maxTries = maxTries;
        this.holder = holder;
        this.bit = bit;
        value = new byte[Contract.PIN_MAX_LENGTH];
        state = new byte[3];
        state[ST_TRIES] = maxTries;
    }

    /**
     * A key reference that is blocked for good (text area EF 0012 on every issued card): set,
     * no tries and no maximum, so neither a counter reset nor a new value unblocks it.
     */
    public static ReferenceData blockedKey(short fid) {
        ReferenceData key = new ReferenceData(fid, (byte) 1, (byte) Contract.PIN_MAX_LENGTH,
                Contract.PIN_CHARSET_DIGITS, (byte) 0, false, (byte) 0);
        key.state[ST_SET] = 1;
        return key;
    }

    public boolean isSet() {
        return state[ST_SET] != 0;
    }

    public boolean isBlocked() {
        return state[ST_TRIES] == 0;
    }

    public byte triesLeft() {
        return state[ST_TRIES];
    }

    /** True when the candidate fits this PIN's length and character set. */
    public boolean checkFormat(byte[] buf, short off, short len) {
        if (len < minLength || len > maxLength) {
            return false;
        }
        boolean letter = false;
        boolean digit = false;
        for (short i = 0; i < len; i++) {
            byte c = buf[(short) (off + i)];
            if (c >= '0' && c <= '9') {
                digit = true;
            } else if (charset == Contract.PIN_CHARSET_UPPER_ALNUM && c >= 'A' && c <= 'Z') {
                letter = true;
            } else {
                return false;
            }
        }
        return charset == Contract.PIN_CHARSET_DIGITS || (letter && digit);
    }

    /**
     * Compares a candidate; the counter is decremented before the comparison (tearing
     * safe) and restored on success. The caller has checked set and not blocked.
     */
    public boolean check(byte[] buf, short off, short len) {
        state[ST_TRIES] = (byte) (state[ST_TRIES] - 1);
        short stored = state[ST_LENGTH];
        byte diff = (byte) (len == stored ? 0 : 1);
        short n = len < stored ? len : stored;
        for (short i = 0; i < n; i++) {
            diff |= (byte) (buf[(short) (off + i)] ^ value[i]);
        }
        if (diff == 0) {
            state[ST_TRIES] = maxTries;
            return true;
        }
        return false;
    }

    /** Sets a new value (format already checked), counter to maximum, marked set. */
    public void set(byte[] buf, short off, short len) {
        JCSystem.beginTransaction();
        Util.arrayFillNonAtomic(value, (short) 0, (short) value.length, (byte) 0);
        Util.arrayCopy(buf, off, value, (short) 0, len);
        state[ST_LENGTH] = (byte) len;
        state[ST_TRIES] = maxTries;
        state[ST_SET] = 1;
        JCSystem.commitTransaction();
    }

    public void resetCounter() {
        state[ST_TRIES] = maxTries;
    }
}
