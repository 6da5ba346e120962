package jp.mynacard.test;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.security.AESKey;
import javacard.security.KeyBuilder;
import jp.mynacard.common.AesCmac;
import jp.mynacard.common.ApduUtil;

/** Test-only applet: 80 01 00 00 Lc key(16) || message → AES-CMAC computed on the card. */
public class CmacProbeApplet extends Applet {
    private final AesCmac cmac = new AesCmac();
    private final AESKey key = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES,
            KeyBuilder.LENGTH_AES_128, false);

    public static void install(byte[] b, short off, byte len) {
        new CmacProbeApplet().register();
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        short lc = ApduUtil.receive(apdu);
        key.setKey(buf, ISO7816.OFFSET_CDATA);
        short n = cmac.sign(key, buf, (short) (ISO7816.OFFSET_CDATA + 16), (short) (lc - 16),
                buf, (short) 0);
        ApduUtil.send(apdu, n);
    }
}
