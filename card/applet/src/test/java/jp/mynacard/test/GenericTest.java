package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.lc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import jp.mynacard.common.Contract;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Generic behaviour of every area: CLA, INS, SELECT, READ BINARY, GET DATA, GET CHALLENGE. */
class GenericTest {
    static Card card;

    @BeforeAll
    static void setUp() {
        card = Card.active(false);
    }

    @Test
    void powerOnSelectsCardManager() {
        card.reset();
        assertArrayEquals(ascii(card.serial), card.ok("00CA004500"));
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, card.ok("00CADF7100")[0]);
    }

    @Test
    void getDataObjects() {
        card.select(Contract.AID_CARD_MANAGER);
        assertArrayEquals(ascii("13101"), card.ok("00CA00F000"));
        assertArrayEquals(ascii("20351231"), card.ok("00CA00F200"));
        assertArrayEquals(Arrays.copyOfRange(Contract.ATR, 1, Contract.ATR.length),
                card.ok("00CA5F5100"));
        byte[] pins = card.ok("00CADF7200");
        assertEquals(2, pins.length);
        assertEquals(Contract.PIN_BIT_TEXT | Contract.PIN_BIT_JUKI | Contract.PIN_BIT_COMMON,
                pins[0]);
        assertEquals(0x1F, pins[1]);
        card.expect(0x6A88, "00CA004200");
        card.expect(0x6A88, "00CA7F2100");
        Card blank = new Card();
        blank.expect(0x6A88, "00CA00F000");
        blank.expect(0x6A88, "00CA00F200");
        assertEquals(Contract.LIFE_CYCLE_BLANK, blank.ok("00CADF7100")[0]);
        assertArrayEquals(new byte[] {0, 0}, blank.ok("00CADF7200"));
    }

    @Test
    void claAndIns() {
        for (byte[] aid : new byte[][] {Contract.AID_CARD_MANAGER, Contract.AID_JPKI,
                Contract.AID_TEXT, Contract.AID_SURFACE, Contract.AID_JUKI,
                Contract.AID_MUNICIPAL_LIBRARY}) {
            card.select(aid);
            card.expect(0x69FC, "0CB0000010");  // SM CLA: 69FC but on SELECT
            card.expect(0x69FC, "04B0000010");
            card.expect(0x6882, "08A4020C020001");
            card.expect(0x6E00, "01B0000010");
            card.expect(0x6E00, "10B0000010");
            card.expect(0x6E00, "A0B0000010");
            card.expect(0x6E00, "FFB0000010");
            card.expect(0x6D00, "0000000000");
            card.expect(0x6D00, "00FE000000");
            card.expect(0x6D00, "80880000");
        }
    }

    @Test
    void selectRules() {
        card.select(Contract.AID_TEXT);
        card.ok("00A4040C" + lc(Contract.AID_JPKI));
        card.expect(0x6A82, "00A4040C05D392F00027");
        card.expect(0x6A82, "00A4040C08A000000151999999");
        card.ok("00A4020C020002");
        card.ok("00A40200020002");
        card.expect(0x6A82, "00A4020C020099");
        card.expect(0x6A82, "00A4020C020017".replace("0017", "3F00"));
        card.expect(0x6700, "00A4020C0100");
        card.expect(0x6700, "00A4020C03000100");
        card.expect(0x6A86, "00A4020402 0002".replace(" ", ""));
        card.expect(0x6A86, "00A4000C023F00");
        card.expect(0x6A86, "00A4080C020002");
        card.select(Contract.AID_CARD_MANAGER);
        card.expect(0x6A82, "00A4020C020001");
        card.expect(0x6A82, "00A4040C05F000000000");
    }

    @Test
    void readBinaryRules() {
        card.select(Contract.AID_JPKI);
        card.expect(0x6986, "00B0000010");
        card.selectEf(Contract.FID_JPKI_CERT_AVAILABILITY);
        assertEquals("008F00", hex(card.ok("00B0000000")));
        assertEquals("008F00", hex(card.ok("00B0000010")));
        assertEquals("00", hex(card.ok("00B0000001")));
        assertEquals("8F00", hex(card.ok("00B0000102")));
        card.expect(0x6B00, "00B0000300");
        card.expect(0x6B00, "00B07FFF00");
        // fixed size, FF filler, chunked reads with 15-bit offsets
        card.selectEf(Contract.FID_JPKI_AUTH_CERT);
        byte[] head = card.ok("00B0000000");
        assertEquals(256, head.length);
        assertEquals("30820004AABBCCDD", hex(Arrays.copyOf(head, 8)));
        for (int i = 8; i < 256; i++) {
            assertEquals((byte) 0xFF, head[i]);
        }
        byte[] tail = card.ok("00B00BFF00");
        assertEquals(1, tail.length);
        card.expect(0x6B00, "00B00C0000");
        assertEquals(0xFF, card.ok("00B00B0001")[0] & 0xFF);
        // SFI form: P1 = 80|SFI, P2 = 8-bit offset
        assertEquals("008F00", hex(card.ok("00B0880000")));
        assertEquals("00", hex(card.ok("00B0880200")));
        card.expect(0x6B00, "00B0880300");
        card.expect(0x6A82, "00B0990000");
        card.expect(0x6A86, "00B0A80000");
        // key and PIN EFs cannot be read
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        card.expect(0x6981, "00B0000000");
        card.expect(0x6981, "00B0980000");
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00B0000004");
        card.expect(0x6982, "00B0810000");
        // data with READ BINARY
        card.expect(0x6700, "00B0000001AA");
    }

    @Test
    void everyFileHasItsSize() {
        int[][] layout = {
            {Contract.FID_JPKI_SIGN_CA_CERT, Contract.SIZE_JPKI_SIGN_CA_CERT},
            {Contract.FID_JPKI_TOKEN_INFO, Contract.SIZE_JPKI_TOKEN_INFO},
            {Contract.FID_JPKI_CERT_AVAILABILITY, Contract.SIZE_JPKI_CERT_AVAILABILITY},
            {Contract.FID_JPKI_AUTH_CERT, Contract.SIZE_JPKI_AUTH_CERT},
            {Contract.FID_JPKI_AUTH_CA_CERT, Contract.SIZE_JPKI_AUTH_CA_CERT},
        };
        card.select(Contract.AID_JPKI);
        for (int[] f : layout) {
            assertSize(f[0], f[1]);
        }
        card.select(Contract.AID_TEXT);
        assertSize(Contract.FID_TEXT_CV_CERT, Contract.SIZE_TEXT_CV_CERT);
        assertSize(Contract.FID_TEXT_AP_BASIC, Contract.SIZE_TEXT_AP_BASIC);
        card.select(Contract.AID_SURFACE);
        assertSize(Contract.FID_SURFACE_AP_BASIC, Contract.SIZE_SURFACE_AP_BASIC);
        assertSize(Contract.FID_SURFACE_CV_CERT, Contract.SIZE_SURFACE_CV_CERT);
        card.select(Contract.AID_JUKI);
        assertSize(Contract.FID_JUKI_KEY_REFERENCE, Contract.SIZE_JUKI_KEY_REFERENCE);
    }

    private static void assertSize(int fid, int size) {
        card.selectEf(fid);
        int last = size - 1;
        assertEquals(1, card.ok(String.format("00B0%04X00", last)).length);
        card.expect(0x6B00, String.format("00B0%04X00", size));
    }

    @Test
    void getChallenge() {
        for (byte[] aid : new byte[][] {Contract.AID_CARD_MANAGER, Contract.AID_JPKI,
                Contract.AID_MUNICIPAL_LIBRARY}) {
            card.select(aid);
            assertEquals(1, card.ok("0084000001").length);
            assertEquals(16, card.ok("0084000010").length);
            assertEquals(256, card.ok("0084000000").length);
            byte[] a = card.ok("0084000020");
            byte[] b = card.ok("0084000020");
            assertNotEquals(hex(a), hex(b));
            card.expect(0x6A86, "0084010010");
            card.expect(0x6A86, "0084000110");
            card.expect(0x6700, "00840000");
            card.expect(0x6700, "008400000100");
        }
    }

    @Test
    void malformedApdusAnswer6700() {
        card.select(Contract.AID_JPKI);
        card.expect(0x6700, "00B0");
        card.expect(0x6700, "00A4020C05000102");
        card.expect(0x6700, "");
    }

    @Test
    void resetClearsSecurityStatus() {
        card.select(Contract.AID_JPKI);
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.ok("00B0000004");
        card.reset();
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00B0000004");
        // selecting another one and coming back clears it
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.select(Contract.AID_TEXT);
        card.select(Contract.AID_JPKI);
        card.expect(0x6986, "00B0000004");
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00B0000004");
        assertTrue(true);
    }

    @Test
    void reselectingTheCurrentApplicationKeepsTheSecurityStatus() {
        card.select(Contract.AID_JPKI);
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.ok("00B0000004");
        // ISO 7816-4: the status belongs to the current DF; selecting it again keeps it ...
        card.select(Contract.AID_JPKI);
        card.expect(0x6986, "00B0000004"); // ... but no EF is current any more
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.ok("00B0000004");
        card.select(Contract.AID_JPKI);
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.ok("00B0000004");
        // the card manager in between clears it
        card.select(Contract.AID_CARD_MANAGER);
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00B0000004");
        // so does a reset, even right after a re-SELECT
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.select(Contract.AID_JPKI);
        card.reset();
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00B0000004");
        // a status kept by a re-SELECT does not leak to another application
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.select(Contract.AID_JPKI);
        card.select(Contract.AID_TEXT);
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00B0000004");
    }

    @Test
    void extendedLengthApdus() {
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_AUTH_CERT);
        // short Le: at most 256 bytes, as before
        byte[] shortRead = card.ok("00B0000000");
        assertEquals(256, shortRead.length);
        // extended Le 0000: the whole rest of the file in one response
        byte[] whole = card.ok("00B00000" + "000000");
        assertEquals(Contract.SIZE_JPKI_AUTH_CERT, whole.length);
        assertArrayEquals(shortRead, java.util.Arrays.copyOf(whole, 256));
        byte[] rest = card.ok("00B00100" + "000000");
        assertEquals(Contract.SIZE_JPKI_AUTH_CERT - 256, rest.length);
        assertArrayEquals(java.util.Arrays.copyOfRange(whole, 256, whole.length), rest);
        // an extended Le smaller than the rest bounds it
        assertEquals(300, card.ok("00B00000" + "00012C").length);
        // by SFI too
        assertEquals(Contract.SIZE_JPKI_AUTH_CERT, card.ok("00B08A00" + "000000").length);
        // GET CHALLENGE refuses the extended form, takes the short one
        card.expect(0x6985, "00840000" + "000008");
        assertEquals(8, card.ok("0084000008").length);
        // an extended Lc reaches the command as a short one would
        card.selectEf(Contract.FID_JPKI_AUTH_PIN);
        card.expect(0x63C3, "00200080");
        card.expect(0x63C2, "00200080" + "000004" + "30303030");
        card.ok("00200080" + "000004" + hex(ascii(Card.AUTH_PIN)));
        card.expect(0x63C3, "00200080");
        card.expect(0x6700, "00200080" + "000011" + "31".repeat(17));
    }
}
