package jp.mynacard.card;

import jp.mynacard.common.Contract;
import jp.mynacard.common.ElementaryFile;

/** 券面AP: age record, card face, My Number image. */
public final class SurfaceApplet extends CardArea {
    private static final byte BIRTH_KEY = 0x01;
    private static final byte CODE_B = 0x02;
    private static final byte CODE_A = 0x04;

    private SurfaceApplet() {
        super((byte) 6, (byte) 3, (byte) 0);
        pins[0] = pin(Contract.FID_SURFACE_BIRTH_KEY, Contract.PIN_MIN_SURFACE_BIRTH_KEY,
                Contract.PIN_MAX_SURFACE_BIRTH_KEY, Contract.PIN_CHARSET_SURFACE_BIRTH_KEY,
                Contract.PIN_TRIES_SURFACE_BIRTH_KEY, false, (byte) 0);
        pins[1] = pin(Contract.FID_SURFACE_CODE_B, Contract.PIN_MIN_SURFACE_CODE_B,
                Contract.PIN_MAX_SURFACE_CODE_B, Contract.PIN_CHARSET_SURFACE_CODE_B,
                Contract.PIN_TRIES_SURFACE_CODE_B, false, (byte) 0);
        pins[2] = pin(Contract.FID_SURFACE_CODE_A, Contract.PIN_MIN_SURFACE_CODE_A,
                Contract.PIN_MAX_SURFACE_CODE_A, Contract.PIN_CHARSET_SURFACE_CODE_A,
                Contract.PIN_TRIES_SURFACE_CODE_A, false, (byte) 0);
        files[0] = new ElementaryFile(Contract.FID_SURFACE_AGE_RECORD,
                Contract.SIZE_SURFACE_AGE_RECORD, Contract.ACCESS_CREDENTIAL, BIRTH_KEY);
        files[1] = new ElementaryFile(Contract.FID_SURFACE_FACE, Contract.SIZE_SURFACE_FACE,
                Contract.ACCESS_CREDENTIAL, (byte) (CODE_A | CODE_B));
        files[2] = new ElementaryFile(Contract.FID_SURFACE_AP_BASIC,
                Contract.SIZE_SURFACE_AP_BASIC, Contract.ACCESS_FREE, (byte) 0);
        files[3] = new ElementaryFile(Contract.FID_SURFACE_CV_CERT,
                Contract.SIZE_SURFACE_CV_CERT, Contract.ACCESS_FREE, (byte) 0);
        files[4] = new ElementaryFile(Contract.FID_SURFACE_MY_NUMBER_IMAGE,
                Contract.SIZE_SURFACE_MY_NUMBER_IMAGE, Contract.ACCESS_CREDENTIAL, CODE_A);
        files[5] = new ElementaryFile(Contract.SURFACE_UNKNOWN, Contract.SURFACE_UNKNOWN_SIZE,
                Contract.ACCESS_CREDENTIAL, (byte) (CODE_A | CODE_B));
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new SurfaceApplet().register();
    }

    protected short sessionKeyRefusal() {
        return Contract.SW_NO_SESSION_KEY;
    }

    protected byte updateCredentials(short fid) {
        return CODE_A;
    }
}
