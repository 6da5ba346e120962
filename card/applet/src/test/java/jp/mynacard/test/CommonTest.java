package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.lc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.security.MessageDigest;
import jp.mynacard.common.Contract;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * 共通カードAP: the card-info record read with READ RECORD (by current EF and by SFI), the
 * shared key reference, INTERNAL AUTHENTICATE with no credential, and its own copy of the
 * resident-registry PIN, blocked independently of the 住基AP's.
 */
class CommonTest {
    static Card card;

    @BeforeAll
    static void setUp() {
        card = Card.active(true);
    }

    @Test
    void cardInfoRecordByCurrentEfAndBySfi() {
        card.fresh(Contract.AID_COMMON);
        card.selectEf(Contract.FID_COMMON_CARD_INFO);
        byte[] record = card.ok("00B2010400");
        assertArrayEquals(card.cardInfoRecord(), record);
        assertEquals(30, record.length);
        assertEquals(0x01, record[0]);
        assertEquals(0x1C, record[1]);
        card.fresh(Contract.AID_COMMON);
        assertArrayEquals(card.cardInfoRecord(), card.ok("00B2010C00"));  // myna's form
    }

    @Test
    void readRecordStatusWords() {
        card.fresh(Contract.AID_COMMON);
        card.expect(0x6986, "00B2010400");                   // no current EF
        card.expect(0x6A83, "00B2020C00");                   // no record 2
        card.expect(0x6A83, "00B2000C00");                   // record 0
        card.expect(0x6A86, "00B2010500");                   // P2 not "record number"
        card.expect(0x6A82, "00B2011C00");                   // SFI 3 absent
        card.expect(0x6981, "00B2011400");                   // SFI 2: a transparent EF
        card.selectEf(Contract.FID_COMMON_PIN);
        card.expect(0x6981, "00B2010400");                   // a PIN EF
        card.selectEf(Contract.FID_COMMON_CARD_INFO);
        card.expect(0x6981, "00B0000000");                   // READ BINARY on a record EF
        card.expect(0x6981, "00B0810000");
        // every other area: READ RECORD on its transparent EFs answers 6981
        card.fresh(Contract.AID_TEXT);
        card.expect(0x6981, "00B2012C00");                   // text EF 0005 by SFI
        card.fresh(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_TOKEN_INFO);
        card.expect(0x6981, "00B2010400");
        card.fresh(Contract.AID_SURFACE);
        card.expect(0x6981, "00B2011C00");
        card.fresh(Contract.AID_JUKI);
        card.expect(0x6981, "00B2011400");
        card.expect(0x6981, "00B2010C00");                   // juki EF 0001: transparent
    }

    @Test
    void keyReferenceIsTheJukiOne() {
        card.fresh(Contract.AID_COMMON);
        card.selectEf(Contract.FID_COMMON_KEY_REFERENCE);
        byte[] common = card.ok("00B0000000");
        card.fresh(Contract.AID_JUKI);
        card.selectEf(Contract.FID_JUKI_KEY_REFERENCE);
        assertArrayEquals(common, card.ok("00B0000000"));
        assertEquals(Card.KEY_REFERENCE, hex(common));
    }

    @Test
    void internalAuthenticateNeedsNoCredential() throws Exception {
        card.fresh(Contract.AID_COMMON);
        byte[] digestInfo = Card.unhex("3031300D060960864801650304020105000420"
                + hex(MessageDigest.getInstance("SHA-256").digest(ascii("challenge"))));
        byte[] sig = card.ok("00880099" + lc(digestInfo) + "00");
        assertEquals(256, sig.length);
        card.selectEf(Contract.FID_COMMON_AUTH_KEY);
        card.ok("00880080" + lc(digestInfo) + "00");
        byte[] modulus = card.ok("0047810000");
        BigInteger m = new BigInteger(1, sig).modPow(BigInteger.valueOf(65537),
                new BigInteger(1, modulus));
        byte[] em = m.toByteArray();
        String tail = hex(em).substring(hex(em).length() - 2 * digestInfo.length);
        assertEquals(hex(digestInfo), tail);
        card.expect(0x6982, "802A0099" + lc(digestInfo) + "00");   // not the signature command
        card.expect(0x6A86, "00880199" + lc(digestInfo) + "00");
        card.expect(0x6700, "00880099" + "00" + "00");
        // JPKI keys are behind a PIN: 6982
        card.fresh(Contract.AID_JPKI);
        card.expect(0x6982, "00880097" + lc(digestInfo) + "00");
        card.expect(0x6982, "0088009A" + lc(digestInfo) + "00");
        card.fresh(Contract.AID_TEXT);
        card.expect(0x6A82, "00880099" + lc(digestInfo) + "00");
    }

    @Test
    void theTwoResidentRegistryPinsBlockIndependently() {
        Card c = Card.active(false);
        c.fresh(Contract.AID_COMMON);
        assertEquals(0x63C3, c.verify(Contract.FID_COMMON_PIN, ""));
        for (int left = 2; left >= 0; left--) {
            assertEquals(0x63C0 | left, c.verify(Contract.FID_COMMON_PIN, "0000"));
        }
        c.expect(0x6984, "00200080" + lc(ascii(Card.JUKI_PIN)));
        c.fresh(Contract.AID_JUKI);
        c.verifyOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        // the issuer resets the common copy alone
        c.select(Contract.AID_CARD_MANAGER);
        c.issuerAuthOk();
        c.select(Contract.AID_COMMON);
        c.selectEf(Contract.FID_COMMON_PIN);
        c.ok("002C0280" + lc(ascii("7777")));
        c.reset();
        c.select(Contract.AID_COMMON);
        c.verifyOk(Contract.FID_COMMON_PIN, "7777");
        c.fresh(Contract.AID_JUKI);
        assertEquals(0x63C2, c.verify(Contract.FID_JUKI_PIN, "7777"));
        // the holder changes one copy with CHANGE KEY; the other keeps its value
        c.verifyOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        c.ok("80320080" + lc(ascii("8888")));
        c.fresh(Contract.AID_COMMON);
        c.verifyOk(Contract.FID_COMMON_PIN, "7777");
        assertTrue(c.lifeCycle() == Contract.LIFE_CYCLE_ACTIVE);
    }
}
