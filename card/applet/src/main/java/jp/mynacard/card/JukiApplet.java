package jp.mynacard.card;

import jp.mynacard.common.Contract;
import jp.mynacard.common.ElementaryFile;

/** 住基AP: the resident code (readable only here, with the juki PIN) and key reference. */
public final class JukiApplet extends CardArea {
    private static final byte PIN = 0x01;

    private JukiApplet() {
        super((byte) 2, (byte) 1, (byte) 0);
        pins[0] = pin(Contract.FID_JUKI_PIN, Contract.PIN_MIN_JUKI_PIN, Contract.PIN_MAX_JUKI_PIN,
                Contract.PIN_CHARSET_JUKI_PIN, Contract.PIN_TRIES_JUKI_PIN, true,
                Contract.PIN_BIT_JUKI);
        files[0] = new ElementaryFile(Contract.FID_JUKI_RESIDENT_CODE,
                Contract.SIZE_JUKI_RESIDENT_CODE, Contract.ACCESS_CREDENTIAL, PIN);
        files[1] = new ElementaryFile(Contract.FID_JUKI_KEY_REFERENCE,
                Contract.SIZE_JUKI_KEY_REFERENCE, Contract.ACCESS_FREE, (byte) 0);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new JukiApplet().register();
    }

    protected byte updateCredentials(short fid) {
        return PIN;
    }
}
