package jp.mynacard.common;

import javacard.framework.Util;

/**
 * An EF of fixed size: transparent (READ/UPDATE BINARY) or, with a record length, a
 * linear-fixed record file (READ/UPDATE RECORD). Bytes never written read as FF filler.
 */
public final class ElementaryFile {
    public final short fid;
    public final short size;
    /** {@link Contract#ACCESS_FREE} or {@link Contract#ACCESS_CREDENTIAL}. */
    public final byte access;
    /** Bit i set: the applet's PIN number i opens the file for reading. */
    public final byte credentials;
    /** 0 for a transparent EF, else the length of every record. */
    public final short recordLength;
    private final byte[] data;

    public ElementaryFile(short fid, short size, byte access, byte credentials) {
        this(fid, size, access, credentials, (short) 0);
    }

    public ElementaryFile(short fid, short size, byte access, byte credentials,
                          short recordLength) {
        this.fid = fid;
        this.recordLength = recordLength;
        this.size = size;
        this.access = access;
        this.credentials = credentials;
        data = new byte[size];
        Util.arrayFillNonAtomic(data, (short) 0, size, (byte) 0xFF);
    }

    public boolean isRecordFile() {
        return recordLength != 0;
    }

    /** The number of records of a record file. */
    public short records() {
        return recordLength == 0 ? 0 : (short) (size / recordLength);
    }

    /** Copies len bytes from offset; the caller has checked the range. */
    public void read(short offset, byte[] out, short outOff, short len) {
        Util.arrayCopyNonAtomic(data, offset, out, outOff, len);
    }

    /** Writes atomically; the caller has checked the range. */
    public void write(short offset, byte[] in, short inOff, short len) {
        Util.arrayCopy(in, inOff, data, offset, len);
    }
}
