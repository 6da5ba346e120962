package jp.mynacard.test;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.licel.jcardsim.bouncycastle.crypto.engines.AESEngine;
import com.licel.jcardsim.bouncycastle.crypto.macs.CMac;
import com.licel.jcardsim.bouncycastle.crypto.params.KeyParameter;
import com.licel.jcardsim.smartcardio.CardSimulator;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import jp.mynacard.common.Contract;
import jp.mynacard.sim.CardImage;

/** A test card: a jCardSim simulator with the card image, and APDU helpers. */
final class Card {
    static final String AUTH_PIN = "1234";
    static final String SIGN_PIN = "ABC123";
    static final String TEXT_PIN = "2345";
    static final String JUKI_PIN = "3456";
    static final String CODE_A = "123456789012";
    static final String CODE_B = "55021720352285";
    static final String BIRTH_KEY = "550217";
    static final String LIBRARY_PIN = "4321";
    static final String RESIDENT_CODE = "80012345670";
    static final String RESIDENT_CODE_FILE = "DF010B" + hex(ascii(RESIDENT_CODE));
    /** The 16-byte key reference of 住基AP and 共通カードAP EF 0002 (a test value). */
    static final String KEY_REFERENCE = hex(ascii("6000019")) + "A1B2" + hex(ascii("001"))
            + "00000000";

    private static final AtomicInteger SERIALS = new AtomicInteger(1);

    final CardSimulator sim;
    final String serial;
    final byte[] cardKey;
    final byte[] cardAuthKey;
    final byte[] municipalKey;
    byte[] data = new byte[0];
    int sw;

    Card() {
        this(String.format("4000000%08d", SERIALS.getAndIncrement()));
    }

    Card(String serial) {
        this.serial = serial;
        cardKey = CardImage.deriveKey(CardImage.TEST_ISSUER_MASTER_KEY, serial);
        cardAuthKey = CardImage.deriveCardAuthKey(CardImage.TEST_ISSUER_MASTER_KEY, serial);
        municipalKey = CardImage.deriveKey(CardImage.TEST_MUNICIPAL_MASTER_KEY, serial);
        sim = new CardSimulator();
        CardImage.install(sim, serial, cardKey, cardAuthKey, municipalKey);
    }

    // ---- encoding --------------------------------------------------------------------

    static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02X", x));
        }
        return s.toString();
    }

    static byte[] unhex(String s) {
        s = s.replace(" ", "");
        byte[] r = new byte[s.length() / 2];
        for (int i = 0; i < r.length; i++) {
            r[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return r;
    }

    static String aidHex(byte[] aid) {
        return hex(aid);
    }

    static String fid(int fid) {
        return String.format("%04X", fid);
    }

    static String lc(byte[] d) {
        return String.format("%02X", d.length) + hex(d);
    }

    // ---- transport -------------------------------------------------------------------

    int send(byte[] apdu) {
        byte[] r = CardImage.transmit(sim, apdu);
        sw = ((r[r.length - 2] & 0xFF) << 8) | (r[r.length - 1] & 0xFF);
        data = Arrays.copyOf(r, r.length - 2);
        return sw;
    }

    int send(String hex) {
        return send(unhex(hex));
    }

    /** Sends and asserts the status word; returns the data. */
    byte[] expect(int expected, String hex) {
        send(hex);
        assertEquals(String.format("%04X", expected), String.format("%04X", sw), "APDU " + hex);
        return data;
    }

    byte[] ok(String hex) {
        return expect(0x9000, hex);
    }

    void reset() {
        CardImage.reset(sim);
    }

    // ---- commands ----------------------------------------------------------------------

    void select(byte[] aid) {
        ok("00A4040C" + lc(aid));
    }

    /** Selects aid with nothing verified: through the card manager (a re-SELECT keeps the status). */
    void fresh(byte[] aid) {
        select(Contract.AID_CARD_MANAGER);
        select(aid);
    }

    void selectEf(int fid) {
        ok("00A4020C02" + fid(fid));
    }

    /** VERIFY the PIN EF fid (selects it) with the value; returns SW. */
    int verify(int fid, String pin) {
        selectEf(fid);
        return send("00200080" + lc(ascii(pin)));
    }

    void verifyOk(int fid, String pin) {
        assertEquals(0x9000, verify(fid, pin), "VERIFY " + fid(fid));
    }

    /** 00 2C 02 80 with the PIN EF selected. */
    int setPin(int fid, String value) {
        selectEf(fid);
        return send("002C0280" + lc(ascii(value)));
    }

    void setPinOk(int fid, String value) {
        assertEquals(0x9000, setPin(fid, value), "SET PIN " + fid(fid));
    }

    static byte[] cmac(byte[] key, byte[] msg) {
        CMac mac = new CMac(new AESEngine());
        mac.init(new KeyParameter(key));
        mac.update(msg, 0, msg.length);
        byte[] out = new byte[16];
        mac.doFinal(out, 0);
        return out;
    }

    /** GET CHALLENGE + EXTERNAL AUTHENTICATE in the selected applet; returns SW. */
    int issuerAuth(byte[] key) {
        byte[] challenge = ok("0084000010");
        assertEquals(16, challenge.length);
        return send("0082000010" + hex(cmac(key, challenge)));
    }

    void issuerAuthOk() {
        assertEquals(0x9000, issuerAuth(cardKey), "issuer authentication");
    }

    void update(int fid, String hexData) {
        selectEf(fid);
        byte[] d = unhex(hexData);
        for (int off = 0; off < d.length; off += 200) {
            int n = Math.min(200, d.length - off);
            ok(String.format("00D6%04X%02X", off, n) + hex(Arrays.copyOfRange(d, off, off + n)));
        }
    }

    byte lifeCycle() {
        select(Contract.AID_CARD_MANAGER);
        return ok("00CADF7100")[0];
    }

    /** Personalises a blank card up to "issued" (keys on request, codes set, data written). */
    void personalise(boolean authKey, boolean signKey) {
        select(Contract.AID_CARD_MANAGER);
        issuerAuthOk();
        ok("00DA00F005" + hex(ascii("13101")));
        ok("00DA00F208" + hex(ascii("20351231")));
        select(Contract.AID_JPKI);
        if (authKey) {
            selectEf(Contract.FID_JPKI_AUTH_KEY);
            assertEquals(256, ok("0047800000").length);
        }
        if (signKey) {
            selectEf(Contract.FID_JPKI_SIGN_KEY);
            assertEquals(256, ok("0047800000").length);
        }
        update(Contract.FID_JPKI_CERT_AVAILABILITY, signKey ? "8F8F00" : "008F00");
        update(Contract.FID_JPKI_SIGN_CERT, "3082000401020304");
        update(Contract.FID_JPKI_AUTH_CERT, "30820004AABBCCDD");
        select(Contract.AID_TEXT);
        update(Contract.FID_TEXT_MY_NUMBER, "FF100C" + hex(ascii(CODE_A)) + "FFFF");
        update(Contract.FID_TEXT_BASIC_FOUR, "FF2003DF2500");
        setPinOk(Contract.FID_TEXT_CODE_A, CODE_A);
        setPinOk(Contract.FID_TEXT_CODE_B, CODE_B);
        select(Contract.AID_SURFACE);
        update(Contract.FID_SURFACE_FACE, "FF2003DF2300");
        update(Contract.FID_SURFACE_MY_NUMBER_IMAGE, "FF4003DF4100");
        update(Contract.FID_SURFACE_AGE_RECORD, "FF1003DF1100");
        setPinOk(Contract.FID_SURFACE_BIRTH_KEY, BIRTH_KEY);
        setPinOk(Contract.FID_SURFACE_CODE_A, CODE_A);
        setPinOk(Contract.FID_SURFACE_CODE_B, CODE_B);
        select(Contract.AID_JUKI);
        update(Contract.FID_JUKI_RESIDENT_CODE, RESIDENT_CODE_FILE);
        update(Contract.FID_JUKI_KEY_REFERENCE, KEY_REFERENCE);
        select(Contract.AID_COMMON);
        selectEf(Contract.FID_COMMON_CARD_INFO);
        ok("00DC0104" + lc(cardInfoRecord()));
        update(Contract.FID_COMMON_KEY_REFERENCE, KEY_REFERENCE);
        if (authKey) {
            selectEf(Contract.FID_COMMON_AUTH_KEY);
            assertEquals(256, ok("0047800000").length);
        }
        select(Contract.AID_CARD_MANAGER);
        ok("80F08002");
        ok("80F08003");
    }

    /** The holder sets every holder PIN of an issued card. */
    void holderSetsPins(boolean authKey, boolean signKey) {
        select(Contract.AID_JPKI);
        if (authKey) {
            setPinOk(Contract.FID_JPKI_AUTH_PIN, AUTH_PIN);
        }
        if (signKey) {
            setPinOk(Contract.FID_JPKI_SIGN_PIN, SIGN_PIN);
        }
        select(Contract.AID_TEXT);
        setPinOk(Contract.FID_TEXT_PIN, TEXT_PIN);
        select(Contract.AID_JUKI);
        setPinOk(Contract.FID_JUKI_PIN, JUKI_PIN);
        select(Contract.AID_COMMON);
        setPinOk(Contract.FID_COMMON_PIN, JUKI_PIN);
    }

    /** 共通カードAP EF 0001 record 1: 01 1C serial(15) municipality(5) expiry(8). */
    byte[] cardInfoRecord() {
        return unhex("011C" + hex(ascii(serial + "13101" + "20351231")));
    }

    /** A fresh card personalised and activated by the holder; the card is reset afterwards. */
    static Card active(boolean keys) {
        Card c = new Card();
        c.personalise(keys, keys);
        c.holderSetsPins(true, true);
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, c.lifeCycle());
        c.reset();
        return c;
    }
}
