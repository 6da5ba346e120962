package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static org.junit.jupiter.api.Assertions.assertFalse;

import jp.mynacard.common.Contract;
import org.junit.jupiter.api.Test;

/** No credential of one area opens another area's files. */
class SeparationTest {
    @Test
    void textCredentials() {
        Card card = Card.active(false);
        card.select(Contract.AID_TEXT);
        card.verifyOk(Contract.FID_TEXT_CODE_A, Card.CODE_A);
        card.selectEf(Contract.FID_TEXT_MY_NUMBER);
        card.ok("00B0000011");
        card.selectEf(Contract.FID_TEXT_INTEGRITY);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.expect(0x6982, "00B0000004");
        card.fresh(Contract.AID_TEXT);
        card.verifyOk(Contract.FID_TEXT_CODE_B, Card.CODE_B);
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_TEXT_INTEGRITY);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_TEXT_MY_NUMBER);
        card.expect(0x6982, "00B0000011");
        card.fresh(Contract.AID_TEXT);
        card.verifyOk(Contract.FID_TEXT_PIN, Card.TEXT_PIN);
        for (int f : new int[] {1, 2, 3}) {
            card.selectEf(f);
            card.ok("00B0000004");
        }
    }

    @Test
    void surfaceCredentials() {
        Card card = Card.active(false);
        card.select(Contract.AID_SURFACE);
        card.verifyOk(Contract.FID_SURFACE_CODE_B, Card.CODE_B);
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_SURFACE_MY_NUMBER_IMAGE);
        card.expect(0x6982, "00B0000004");
        card.selectEf(Contract.FID_SURFACE_AGE_RECORD);
        card.expect(0x6982, "00B0000004");
        card.fresh(Contract.AID_SURFACE);
        card.verifyOk(Contract.FID_SURFACE_CODE_A, Card.CODE_A);
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_SURFACE_MY_NUMBER_IMAGE);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_SURFACE_AGE_RECORD);
        card.expect(0x6982, "00B0000004");
        card.fresh(Contract.AID_SURFACE);
        card.verifyOk(Contract.FID_SURFACE_BIRTH_KEY, Card.BIRTH_KEY);
        card.selectEf(Contract.FID_SURFACE_AGE_RECORD);
        card.ok("00B0000004");
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.expect(0x6982, "00B0000004");
    }

    @Test
    void credentialsDoNotCrossAreas() {
        Card card = Card.active(false);
        // verify everything the text area has, then go to juki
        card.select(Contract.AID_TEXT);
        card.verifyOk(Contract.FID_TEXT_PIN, Card.TEXT_PIN);
        card.select(Contract.AID_JUKI);
        card.selectEf(Contract.FID_JUKI_RESIDENT_CODE);
        card.expect(0x6982, "00B0000000");
        // the juki PIN does not open the text area
        card.verifyOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_MY_NUMBER);
        card.expect(0x6982, "00B0000011");
        // the JPKI signing password does not open the text or juki areas
        card.select(Contract.AID_JPKI);
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.expect(0x6982, "00B0000004");
        // the surface code A does not open the text My Number
        card.select(Contract.AID_SURFACE);
        card.verifyOk(Contract.FID_SURFACE_CODE_A, Card.CODE_A);
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_MY_NUMBER);
        card.expect(0x6982, "00B0000011");
        // an area does not know another area's PIN EF
        card.select(Contract.AID_TEXT);
        card.expect(0x6A82, "00A4020C02001C");
        card.expect(0x6A82, "00A4020C020018");
        // no card credential opens the municipal file
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.expect(0x6985, "00B0000000");
    }

    @Test
    void residentCodeIsReadableOnlyInTheJukiArea() {
        Card card = Card.active(false);
        String code = hex(ascii(Card.RESIDENT_CODE));
        Object[][] areas = {
            {Contract.AID_JPKI, new int[] {1, 2, 6, 8, 0x0A, 0x0B},
                new Object[] {Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN}},
            {Contract.AID_TEXT, new int[] {1, 2, 3, 4, 5},
                new Object[] {Contract.FID_TEXT_PIN, Card.TEXT_PIN}},
            {Contract.AID_SURFACE, new int[] {2, 3, 4, 5},
                new Object[] {Contract.FID_SURFACE_CODE_A, Card.CODE_A}},
        };
        for (Object[] a : areas) {
            card.select((byte[]) a[0]);
            Object[] cred = (Object[]) a[2];
            card.verifyOk((Short) cred[0], (String) cred[1]);
            for (int f : (int[]) a[1]) {
                card.selectEf(f);
                StringBuilder all = new StringBuilder();
                for (int off = 0; ; off += 256) {
                    card.send(String.format("00B0%04X00", off));
                    if (card.sw != 0x9000) {
                        break;
                    }
                    all.append(hex(card.data));
                }
                assertFalse(all.toString().contains(code), "resident code outside juki");
            }
        }
        card.select(Contract.AID_JUKI);
        card.verifyOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        card.selectEf(Contract.FID_JUKI_RESIDENT_CODE);
        assertFalse(!hex(card.ok("00B0000000")).contains(code));
    }
}
