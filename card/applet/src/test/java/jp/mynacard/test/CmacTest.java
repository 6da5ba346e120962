package jp.mynacard.test;

import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.unhex;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.licel.jcardsim.smartcardio.CardSimulator;
import java.util.Random;
import javax.smartcardio.CommandAPDU;
import javax.smartcardio.ResponseAPDU;
import jp.mynacard.sim.CardImage;
import org.junit.jupiter.api.Test;

/** AES-CMAC (RFC 4493) on the card, and the key derivation used for issuer authentication. */
class CmacTest {
    static final String K = "2b7e151628aed2a6abf7158809cf4f3c";
    static final String M = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
            + "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    static final String[][] VECTORS = {
        {"", "bb1d6929e95937287fa37d129b756746"},
        {M.substring(0, 32), "070a16b46b4d4144f79bdd9dd04a287c"},
        {M.substring(0, 80), "dfa66747de9ae63030ca32611497c827"},
        {M, "51f0bebf7e3b9d92fc49741779363cfe"},
    };

    private static CardSimulator probe() {
        CardSimulator sim = new CardSimulator();
        javacard.framework.AID aid = CardImage.aid(unhex("F0000000C1"));
        sim.installApplet(aid, CmacProbeApplet.class);
        sim.selectApplet(aid);
        return sim;
    }

    private static byte[] cardCmac(CardSimulator sim, byte[] key, byte[] msg) {
        byte[] data = new byte[16 + msg.length];
        System.arraycopy(key, 0, data, 0, 16);
        System.arraycopy(msg, 0, data, 16, msg.length);
        ResponseAPDU r = sim.transmitCommand(new CommandAPDU(0x80, 0x01, 0, 0, data, 256));
        assertEquals(0x9000, r.getSW());
        return r.getData();
    }

    @Test
    void rfc4493Vectors() {
        CardSimulator sim = probe();
        for (String[] v : VECTORS) {
            assertEquals(v[1].toUpperCase(), hex(cardCmac(sim, unhex(K), unhex(v[0]))),
                    "message length " + v[0].length() / 2);
            assertEquals(v[1].toUpperCase(), hex(Card.cmac(unhex(K), unhex(v[0]))));
        }
    }

    @Test
    void matchesTheHostForEveryLength() {
        CardSimulator sim = probe();
        Random r = new Random(4493);
        for (int len = 0; len <= 100; len++) {
            byte[] key = new byte[16];
            byte[] msg = new byte[len];
            r.nextBytes(key);
            r.nextBytes(msg);
            assertEquals(hex(Card.cmac(key, msg)), hex(cardCmac(sim, key, msg)));
        }
    }

    @Test
    void keyDerivation() throws Exception {
        String serial = "400000012719843";
        byte[] key = CardImage.deriveKey(CardImage.TEST_ISSUER_MASTER_KEY, serial);
        javax.crypto.Cipher c = javax.crypto.Cipher.getInstance("AES/ECB/NoPadding");
        c.init(javax.crypto.Cipher.DECRYPT_MODE,
                new javax.crypto.spec.SecretKeySpec(unhex("404142434445464748494A4B4C4D4E4F"), "AES"));
        assertEquals(hex(serial.getBytes("US-ASCII")) + "80", hex(c.doFinal(key)));
        assertEquals("505152535455565758595A5B5C5D5E5F", hex(CardImage.TEST_MUNICIPAL_MASTER_KEY));
        assertEquals("1", System.getProperty(CardImage.RANDOM_SECURE_PROPERTY));
    }
}
