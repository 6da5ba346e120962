package jp.mynacard.card;

import jp.mynacard.common.Contract;
import jp.mynacard.common.ElementaryFile;

/**
 * 共通カードAP: the card-info record (serial, municipality code, expiry; read with READ
 * RECORD), the 16-byte key reference shared with the 住基AP, the INTERNAL AUTHENTICATE key
 * (no credential) and the second copy of the resident-registry PIN, its own key reference.
 */
public final class CommonApplet extends CardArea {
    private static final byte PIN = 0x01;

    private CommonApplet() {
        super((byte) 2, (byte) 1, (byte) 1);
        pins[0] = pin(Contract.FID_COMMON_PIN, Contract.PIN_MIN_COMMON_PIN,
                Contract.PIN_MAX_COMMON_PIN, Contract.PIN_CHARSET_COMMON_PIN,
                Contract.PIN_TRIES_COMMON_PIN, true, Contract.PIN_BIT_COMMON);
        files[0] = new ElementaryFile(Contract.FID_COMMON_CARD_INFO,
                Contract.SIZE_COMMON_CARD_INFO, Contract.ACCESS_FREE, (byte) 0,
                Contract.COMMON_CARD_INFO_RECORD_LENGTH);
        files[1] = new ElementaryFile(Contract.FID_COMMON_KEY_REFERENCE,
                Contract.SIZE_COMMON_KEY_REFERENCE, Contract.ACCESS_FREE, (byte) 0);
        keys[0] = newKey(Contract.FID_COMMON_AUTH_KEY, (byte) 0, (byte) 0);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CommonApplet().register();
    }

    protected short sessionKeyRefusal() {
        return Contract.SW_NO_SESSION_KEY;
    }

    protected byte updateCredentials(short fid) {
        return PIN;
    }
}
