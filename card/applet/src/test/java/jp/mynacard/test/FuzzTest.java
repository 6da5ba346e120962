package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.lc;
import static jp.mynacard.test.Card.unhex;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import jp.mynacard.common.Contract;
import jp.mynacard.sim.CardImage;
import org.junit.jupiter.api.Test;

/** Random and mutated APDUs: always an ISO status word, never 6F00, and the card still works. */
class FuzzTest {
    static final int PER_APPLICATION = 3000;

    static boolean isoStatus(int sw) {
        switch (sw) {
            case 0x9000: case 0x66F1: case 0x6700: case 0x6882: case 0x69FC: case 0x6981: case 0x6982: case 0x6983:
            case 0x6984: case 0x6985: case 0x6986: case 0x6A80: case 0x6A82: case 0x6A84:
            case 0x6A83: case 0x6A86: case 0x6A88: case 0x6B00: case 0x6D00: case 0x6E00:
                return true;
            default:
                return (sw & 0xFFF0) == 0x63C0 || (sw & 0xFF00) == 0x6C00;
        }
    }

    static byte[] mutate(Random r, byte[] base) {
        byte[] a = base.clone();
        switch (r.nextInt(6)) {
            case 0:
                a[r.nextInt(a.length)] = (byte) r.nextInt(256);
                return a;
            case 1:
                a[r.nextInt(a.length)] ^= (byte) (1 << r.nextInt(8));
                return a;
            case 2:
                return Arrays.copyOf(a, r.nextInt(a.length + 1));
            case 3: {
                byte[] b = Arrays.copyOf(a, a.length + 1 + r.nextInt(20));
                for (int i = a.length; i < b.length; i++) {
                    b[i] = (byte) r.nextInt(256);
                }
                return b;
            }
            case 4:
                if (a.length > 4) {
                    a[4] = (byte) r.nextInt(256);
                }
                return a;
            default:
                a[2] = (byte) r.nextInt(256);
                a[3] = (byte) r.nextInt(256);
                return a;
        }
    }

    static byte[] random(Random r) {
        int kind = r.nextInt(4);
        byte[] a;
        if (kind == 0) {
            a = new byte[r.nextInt(12)];
            r.nextBytes(a);
            return a;
        }
        int lc = r.nextInt(4) == 0 ? r.nextInt(256) : r.nextInt(24);
        a = new byte[4 + (kind == 1 ? 0 : 1 + lc) + (kind == 3 ? 1 : 0)];
        r.nextBytes(a);
        a[0] = r.nextInt(3) == 0 ? (byte) r.nextInt(256) : (r.nextBoolean() ? 0x00 : (byte) 0x80);
        if (kind != 1) {
            a[4] = (byte) lc;
            if (lc == 0) {
                a = Arrays.copyOf(a, 5);  // case 2 with Le
            }
        }
        return a;
    }

    private void fuzz(Card card, byte[] aid, String[] valid, long seed) {
        Random r = new Random(seed);
        byte[][] bases = new byte[valid.length][];
        for (int i = 0; i < valid.length; i++) {
            bases[i] = unhex(valid[i]);
        }
        for (int n = 0; n < PER_APPLICATION; n++) {
            if (n % 50 == 0) {
                card.select(aid);
            }
            byte[] apdu = r.nextBoolean() ? random(r) : mutate(r, bases[r.nextInt(bases.length)]);
            byte[] resp = CardImage.transmit(card.sim, apdu);
            assertTrue(resp.length >= 2, "response to " + hex(apdu));
            int sw = ((resp[resp.length - 2] & 0xFF) << 8) | (resp[resp.length - 1] & 0xFF);
            assertTrue(isoStatus(sw), String.format("SW %04X for %s", sw, hex(apdu)));
        }
    }

    private void stillWorks(Card card, byte[] aid, int freeFile, int pinFid, String pin) {
        card.reset();
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, card.lifeCycle());
        card.select(aid);
        card.selectEf(freeFile);
        card.ok("00B0000000");
        // a PIN blocked by the fuzzing is reset by the issuer, then the right value works
        card.issuerAuthOk();
        card.selectEf(pinFid);
        card.ok("002C0380");
        card.verifyOk(pinFid, pin);
    }

    private static String[] common(String pinVerify, String free) {
        return new String[] {
            "00A4020C02" + free, "00B0000000", "00B0000010", "00B0810000", "00200080",
            pinVerify, "0084000010", "0084000000", "00D6000001AA", "002C0380",
            "00A4040C" + lc(Contract.AID_JPKI), "00CADF7100",
        };
    }

    @Test
    void everyApplicationSurvivesRandomApdus() {
        Card card = Card.active(true);
        String jpkiVerify = "00200080" + lc(ascii(Card.AUTH_PIN));
        String[] jpki = concat(common(jpkiVerify, "0002"), new String[] {
            "00A4020C020018", jpkiVerify, "00A4020C020017", "802A008020" + "11".repeat(32) + "00",
            "802A0097050102030405" + "00", "0047810000", "0047800000", "00A4020C02001B",
            "00200080" + lc(ascii(Card.SIGN_PIN)), "802A009A03010203" + "00",
            "808A009710" + "22".repeat(16) + "00", "808A008010" + "33".repeat(16),
            "808A009A10" + "44".repeat(16) + "00",
        });
        fuzz(card, Contract.AID_JPKI, jpki, 1);
        stillWorks(card, Contract.AID_JPKI, Contract.FID_JPKI_AUTH_CERT,
                Contract.FID_JPKI_AUTH_PIN, Card.AUTH_PIN);

        String textVerify = "00200080" + lc(ascii(Card.TEXT_PIN));
        fuzz(card, Contract.AID_TEXT, concat(common(textVerify, "0004"), new String[] {
            "00A4020C020011", textVerify, "00A4020C020001", "00B0000011",
        }), 2);
        stillWorks(card, Contract.AID_TEXT, Contract.FID_TEXT_CV_CERT,
                Contract.FID_TEXT_PIN, Card.TEXT_PIN);

        String surfaceVerify = "00200080" + lc(ascii(Card.CODE_A));
        fuzz(card, Contract.AID_SURFACE, concat(common(surfaceVerify, "0003"), new String[] {
            "00A4020C020013", surfaceVerify, "00A4020C020002", "00B0100000",
        }), 3);
        stillWorks(card, Contract.AID_SURFACE, Contract.FID_SURFACE_AP_BASIC,
                Contract.FID_SURFACE_CODE_A, Card.CODE_A);

        String jukiVerify = "00200080" + lc(ascii(Card.JUKI_PIN));
        fuzz(card, Contract.AID_JUKI, concat(common(jukiVerify, "0002"), new String[] {
            "00A4020C02001C", jukiVerify, "00A4020C020001", "80320080" + lc(ascii("12A4")),
        }), 4);
        stillWorks(card, Contract.AID_JUKI, Contract.FID_JUKI_KEY_REFERENCE,
                Contract.FID_JUKI_PIN, Card.JUKI_PIN);

        String commonVerify = "00200080" + lc(ascii(Card.JUKI_PIN));
        fuzz(card, Contract.AID_COMMON, concat(common(commonVerify, "0002"), new String[] {
            "00A4020C02001C", commonVerify, "00A4020C020001", "00B2010400", "00B2010C00",
            "00B2020C00", "00DC0104" + lc(card.cardInfoRecord()), "00880099" + "20"
                + "55".repeat(32) + "00", "00A4020C020019", "0088008003010203",
            "80320080" + lc(ascii("12A4")),
        }), 6);
        stillWorks(card, Contract.AID_COMMON, Contract.FID_COMMON_KEY_REFERENCE,
                Contract.FID_COMMON_PIN, Card.JUKI_PIN);

        fuzz(card, Contract.AID_CARD_MANAGER, new String[] {
            "00CA004500", "00CADF7100", "00CADF7200", "00CA5F5100", "00CA00F000", "0084000010",
            "00CA004200", "00CA006600", "00CA00F8000000", "00CA7F2100", "00CA00F700",
            "80F08003", "00DA00F0053133313031", "00A4040C" + lc(Contract.AID_TEXT),
        }, 5);
        card.reset();
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, card.lifeCycle());
        card.issuerAuthOk();
        assertEquals(card.serial, new String(card.ok("00CA004500")));
    }

    @Test
    void municipalSurvivesRandomApdus() {
        Card card = new Card();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        assertEquals(0x9000, card.issuerAuth(card.municipalKey));
        card.update(Contract.FID_LIBRARY_NUMBER, "DF0103313233");
        card.setPinOk(Contract.FID_LIBRARY_PIN, Card.LIBRARY_PIN);
        card.ok("80F08003");
        card.reset();
        String verify = "00200080" + lc(ascii(Card.LIBRARY_PIN));
        fuzz(card, Contract.AID_MUNICIPAL_LIBRARY, new String[] {
            "00A4020C020011", verify, "00A4020C020001", "00B0000000", "00200080", "0084000010",
            "00CADF7100", "80F08003", "002C0280" + lc(ascii("1234")),
        }, 6);
        card.reset();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        assertEquals(Contract.LIFE_CYCLE_ISSUED, card.ok("00CADF7100")[0]);
        assertEquals(0x9000, card.issuerAuth(card.municipalKey));
        card.selectEf(Contract.FID_LIBRARY_PIN);
        card.ok("002C0380");
        card.verifyOk(Contract.FID_LIBRARY_PIN, Card.LIBRARY_PIN);
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        assertEquals("DF0103313233", hex(card.ok("00B0000006")));
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
