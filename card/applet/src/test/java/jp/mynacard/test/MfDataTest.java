package jp.mynacard.test;

import static jp.mynacard.test.Card.hex;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import jp.mynacard.common.Contract;
import org.junit.jupiter.api.Test;

/**
 * MF-level GET DATA objects of the card manager: issuer ID (0042), card recognition data
 * (0066), intermediate key ID (00F7) and the two card-verifiable certificates (00F8, 7F21),
 * which are longer than a short response and answer only an extended Le (short: 6700).
 */
class MfDataTest {
    static final String ID = "36303030303031" + "AABB" + "303031" + "00000000";
    static final String KEY_ID = "36303030303133" + "CCDD" + "303031" + "00000000";

    static byte[] cvCert(int fill) {
        byte[] c = new byte[Contract.CV_CERT_LENGTH];
        Arrays.fill(c, (byte) fill);
        c[0] = 0x7F;
        c[1] = 0x21;
        return c;
    }

    static String extLc(byte[] d) {
        return String.format("00%04X", d.length) + hex(d);
    }

    @Test
    void objectsWrittenAtPersonalisationAnswerGetData() {
        Card card = new Card();
        card.select(Contract.AID_CARD_MANAGER);
        card.expect(0x6982, "00DA004210" + ID);                    // issuer only
        card.issuerAuthOk();
        card.expect(0x6700, "00DA00420F" + ID.substring(2));       // a key ID is 16 bytes
        card.ok("00DA004210" + ID);
        card.ok("00DA00F710" + KEY_ID);
        byte[] upper = cvCert(0x11);
        byte[] lower = cvCert(0x22);
        card.expect(0x6A80, "00DA00F8" + extLc(new byte[568]));   // not a CV certificate
        card.ok("00DA00F8" + extLc(upper));
        card.ok("00DA7F21" + extLc(lower));
        card.reset();                                               // power-on: card manager
        assertEquals(ID, hex(card.ok("00CA004200")));
        assertEquals(KEY_ID, hex(card.ok("00CA00F700")));
        assertArrayEquals(Contract.CARD_RECOGNITION_DATA, card.ok("00CA006600"));
        card.expect(0x6700, "00CA00F800");                          // short Le: too long
        card.expect(0x6700, "00CA7F2100");
        assertArrayEquals(upper, card.ok("00CA00F8000000"));        // extended Le
        assertArrayEquals(lower, card.ok("00CA7F21000000"));
        // only at MF level: an application answers no GET DATA
        card.select(Contract.AID_COMMON);
        card.expect(0x6D00, "00CA004200");
        card.select(Contract.AID_CARD_MANAGER);
        assertEquals(ID, hex(card.ok("00CA004200")));
        // personalisation ends: the objects are fixed
        card.issuerAuthOk();
        card.ok("80F08002");
        card.ok("80F08003");
        card.expect(0x6985, "00DA004210" + ID);
    }

    @Test
    void theIsdAtItsSevenByteAidRestoresTheMfLevel() {
        Card card = new Card();
        card.select(Contract.AID_COMMON);
        card.expect(0x6D00, "00CA004500");
        card.ok("00A4040C07A0000001510000");  // myna-card's DEFAULT_DF, GP's default ISD AID
        assertArrayEquals(Card.ascii(card.serial), card.ok("00CA004500"));
    }

    @Test
    void cardRecognitionDataIsGlobalPlatformTlv() {
        byte[] crd = Contract.CARD_RECOGNITION_DATA;
        assertEquals(0x66, crd[0]);
        assertEquals(crd.length - 2, crd[1]);
        assertEquals(0x73, crd[2]);
        assertEquals(crd.length - 4, crd[3]);
        Card blank = new Card();
        assertArrayEquals(crd, blank.ok("00CA006600"));
        blank.expect(0x6A88, "00CA004200");
        blank.expect(0x6A88, "00CA00F7000000");
        blank.expect(0x6A88, "00CA00F8000000");
    }
}
