package jp.mynacard.common;

import javacard.framework.Util;

/** A transparent EF of fixed size; bytes never written read as FF filler. */
public final class ElementaryFile {
    public final short fid;
    public final short size;
    /** {@link Contract#ACCESS_FREE} or {@link Contract#ACCESS_CREDENTIAL}. */
    public final byte access;
    /** Bit i set: the applet's PIN number i opens the file for reading. */
    public final byte credentials;
    private final byte[] data;

    public ElementaryFile(short fid, short size, byte access, byte credentials) {
        this.fid = fid;
        this.size = size;
        this.access = access;
        this.credentials = credentials;
        data = new byte[size];
        Util.arrayFillNonAtomic(data, (short) 0, size, (byte) 0xFF);
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
