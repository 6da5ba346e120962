package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.lc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import jp.mynacard.common.Contract;
import org.junit.jupiter.api.Test;

/** Issuer authentication, personalisation, issue, activation, post-issue updates, termination. */
class LifeCycleTest {
    private static byte[] pinStatus(Card card) {
        card.select(Contract.AID_CARD_MANAGER);
        return card.ok("00CADF7200");
    }

    @Test
    void issuerAuthentication() {
        Card card = new Card();
        // no challenge yet
        card.expect(0x6985, "0082000010" + "00".repeat(16));
        // wrong length
        card.ok("0084000010");
        card.expect(0x6700, "008200000F" + "00".repeat(15));
        card.expect(0x6700, "00820000");
        card.expect(0x6A86, "0082010010" + "00".repeat(16));
        // right cryptogram
        card.issuerAuthOk();
        // the challenge is single use
        byte[] challenge = card.ok("0084000010");
        String crypt = hex(Card.cmac(card.cardKey, challenge));
        card.ok("0082000010" + crypt);
        card.expect(0x6985, "0082000010" + crypt);
        // a challenge of another length is not remembered
        card.ok("0084000008");
        card.expect(0x6985, "0082000010" + crypt);
        // the wrong key (another card's) fails and counts down; success restores the counter
        byte[] other = new Card().cardKey;
        assertEquals(0x63C9, card.issuerAuth(other));
        assertEquals(0x63C8, card.issuerAuth(other));
        card.issuerAuthOk();
        for (int left = 9; left >= 1; left--) {
            assertEquals(0x63C0 | left, card.issuerAuth(other));
        }
        assertEquals(0x63C0, card.issuerAuth(other));
        assertEquals(0x6983, card.issuerAuth(card.cardKey));
        card.reset();
        assertEquals(0x6983, card.issuerAuth(card.cardKey));
        // authentication is cleared by reset; a blocked issuer cannot personalise
        card.expect(0x6982, "00DA00F005" + hex(ascii("13101")));
    }

    @Test
    void authenticationIsCardWideUntilReset() {
        Card card = new Card();
        card.select(Contract.AID_JUKI);
        card.issuerAuthOk();                       // in an area
        card.select(Contract.AID_CARD_MANAGER);
        card.ok("00DA00F005" + hex(ascii("13101")));  // valid in the card manager
        card.reset();
        card.expect(0x6982, "00DA00F005" + hex(ascii("13101")));
        card.expect(0x6982, "80F08002");
        card.select(Contract.AID_JUKI);
        card.selectEf(Contract.FID_JUKI_RESIDENT_CODE);
        card.expect(0x6982, "00D6000003DF0100");
        card.selectEf(Contract.FID_JUKI_PIN);
        card.expect(0x6982, "002C0280" + lc(ascii("1234")));
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        card.expect(0x6982, "0047800000");
        card.expect(0x6A88, "0047810000");
    }

    @Test
    void personalisationCommands() {
        Card card = new Card();
        card.issuerAuthOk();
        card.expect(0x6700, "00DA00F004" + hex(ascii("1310")));
        card.expect(0x6A80, "00DA00F005" + hex(ascii("1310A")));
        card.expect(0x6A88, "00DA004505" + hex(ascii("13101")));
        card.expect(0x6700, "00DA00F209" + hex(ascii("203512310")));
        card.expect(0x6A86, "80F00002");
        card.expect(0x6985, "80F08003");       // blank -> issued is not a transition
        card.expect(0x6985, "80F08004");
        card.expect(0x6985, "80F08001");
        card.expect(0x6700, "80F0800201AA");
        card.select(Contract.AID_TEXT);
        card.expect(0x6986, "00D6000001AA");
        card.selectEf(Contract.FID_TEXT_PIN);
        card.expect(0x6981, "00D6000001AA");
        card.selectEf(Contract.FID_TEXT_MY_NUMBER);
        card.expect(0x6A84, "00D6001002AAAA");
        card.expect(0x6A84, "00D6000012" + "AA".repeat(18));
        card.expect(0x6700, "00D60000");
        card.ok("00D6001001AA");
        card.ok("00D6810001BB");               // SFI form
        card.expect(0x6A84, "00D6811101BB");
        card.selectEf(Contract.FID_TEXT_CODE_A);
        card.expect(0x6A80, "002C0280" + lc(ascii("12345")));
        card.ok("002C0280" + lc(ascii(Card.CODE_A)));
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6981, "0047800000");
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        card.expect(0x6A86, "0047820000");
        card.expect(0x6A86, "0047800100");
        // holder operations before active
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_CV_CERT);
        card.expect(0x6985, "00B0000000");
        card.selectEf(Contract.FID_TEXT_CODE_A);
        card.expect(0x6985, "00200080");
        card.expect(0x6985, "00200080" + lc(ascii(Card.CODE_A)));
        card.expect(0x6985, "00240180" + lc(ascii(Card.CODE_A)));
        card.select(Contract.AID_CARD_MANAGER);
        card.ok("80F08002");
        assertEquals(Contract.LIFE_CYCLE_PERSONALISED, card.lifeCycle());
        card.expect(0x6985, "80F08002");
    }

    @Test
    void issueActivationAndRefusals() {
        Card card = new Card();
        card.personalise(true, true);
        assertEquals(Contract.LIFE_CYCLE_ISSUED, card.lifeCycle());
        assertArrayEquals(new byte[] {0x1F, 0x00}, pinStatus(card));
        // personalisation after issue
        card.expect(0x6985, "00DA00F005" + hex(ascii("13101")));
        card.expect(0x6985, "80F08002");
        card.expect(0x6985, "80F08003");
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_CV_CERT);
        card.expect(0x6982, "00D6000001AA");      // issuer alone is not enough after issue
        card.expect(0x6985, "00B0000000");        // holder ops before active
        card.selectEf(Contract.FID_TEXT_CODE_A);
        card.expect(0x6985, "00200080");
        // the holder may set an unset holder PIN, format checked, once
        card.reset();
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_CODE_A);
        card.expect(0x6982, "002C0280" + lc(ascii("999999999999")));  // not a holder PIN
        card.selectEf(Contract.FID_TEXT_PIN);
        card.expect(0x6A80, "002C0280" + lc(ascii("12A4")));
        card.ok("002C0280" + lc(ascii(Card.TEXT_PIN)));
        card.expect(0x6982, "002C0280" + lc(ascii("9999")));
        assertArrayEquals(new byte[] {0x1F, Contract.PIN_BIT_TEXT}, pinStatus(card));
        card.select(Contract.AID_JPKI);
        card.setPinOk(Contract.FID_JPKI_AUTH_PIN, Card.AUTH_PIN);
        card.selectEf(Contract.FID_JPKI_SIGN_PIN);
        card.expect(0x6A80, "002C0280" + lc(ascii("ABCDEF")));
        card.setPinOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        assertEquals(Contract.LIFE_CYCLE_ISSUED, card.lifeCycle());
        card.select(Contract.AID_JUKI);
        card.setPinOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        // the 共通カードAP's copy of the resident-registry PIN is its own key reference
        assertEquals(Contract.LIFE_CYCLE_ISSUED, card.lifeCycle());
        card.select(Contract.AID_COMMON);
        card.setPinOk(Contract.FID_COMMON_PIN, Card.JUKI_PIN);
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, card.lifeCycle());
        assertArrayEquals(new byte[] {0x1F, 0x1F}, pinStatus(card));
        // active: holder ops work, the holder cannot set a PIN again
        card.select(Contract.AID_JUKI);
        card.selectEf(Contract.FID_JUKI_PIN);
        card.expect(0x6982, "002C0280" + lc(ascii("1111")));
        card.verifyOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        card.selectEf(Contract.FID_JUKI_RESIDENT_CODE);
        assertEquals(Card.RESIDENT_CODE_FILE, hex(card.ok("00B000000E")));
    }

    @Test
    void requiredPinsFollowTheKeys() {
        Card card = new Card();
        card.personalise(false, false);
        assertArrayEquals(new byte[] {Contract.PIN_BIT_TEXT | Contract.PIN_BIT_JUKI
                | Contract.PIN_BIT_COMMON, 0}, pinStatus(card));
        card.select(Contract.AID_TEXT);
        card.setPinOk(Contract.FID_TEXT_PIN, Card.TEXT_PIN);
        assertEquals(Contract.LIFE_CYCLE_ISSUED, card.lifeCycle());
        card.select(Contract.AID_JUKI);
        card.setPinOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        card.select(Contract.AID_COMMON);
        card.setPinOk(Contract.FID_COMMON_PIN, Card.JUKI_PIN);
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, card.lifeCycle());
        // JPKI PINs never set: VERIFY says 6985; setting them now needs the issuer
        card.reset();
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_AUTH_PIN);
        card.expect(0x6985, "00200080");
        card.expect(0x6985, "00200080" + lc(ascii("1234")));
        card.expect(0x6982, "002C0280" + lc(ascii("1234")));
    }

    @Test
    void pinsSetAtPersonalisationActivateAtIssue() {
        Card card = new Card();
        card.issuerAuthOk();
        card.select(Contract.AID_TEXT);
        card.setPinOk(Contract.FID_TEXT_PIN, Card.TEXT_PIN);
        card.select(Contract.AID_JUKI);
        card.setPinOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        card.select(Contract.AID_COMMON);
        card.setPinOk(Contract.FID_COMMON_PIN, Card.JUKI_PIN);
        card.select(Contract.AID_CARD_MANAGER);
        card.ok("80F08002");
        assertEquals(Contract.LIFE_CYCLE_PERSONALISED, card.lifeCycle());
        card.ok("80F08003");
        assertEquals(Contract.LIFE_CYCLE_ACTIVE, card.lifeCycle());
    }

    @Test
    void postIssueUpdatesNeedIssuerAndHolder() {
        Card card = Card.active(false);
        // text: the text PIN
        card.select(Contract.AID_TEXT);
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.expect(0x6982, "00D6000003FF2000");
        card.issuerAuthOk();
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.expect(0x6982, "00D6000003FF2000");
        card.verifyOk(Contract.FID_TEXT_CODE_B, Card.CODE_B);   // a code is not the holder PIN
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.expect(0x6982, "00D6000003FF2000");
        card.verifyOk(Contract.FID_TEXT_PIN, Card.TEXT_PIN);
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.ok("00D6000004FF200100");
        assertEquals("FF200100", hex(card.ok("00B0000004")));
        // without the issuer (after reset) the holder alone cannot write
        card.reset();
        card.select(Contract.AID_TEXT);
        card.verifyOk(Contract.FID_TEXT_PIN, Card.TEXT_PIN);
        card.selectEf(Contract.FID_TEXT_BASIC_FOUR);
        card.expect(0x6982, "00D6000001AA");
        // surface: code A, not code B
        card.select(Contract.AID_SURFACE);
        card.issuerAuthOk();
        card.verifyOk(Contract.FID_SURFACE_CODE_B, Card.CODE_B);
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.expect(0x6982, "00D6000001AA");
        card.verifyOk(Contract.FID_SURFACE_CODE_A, Card.CODE_A);
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.ok("00D6000001AA");
        // juki: the juki PIN
        card.select(Contract.AID_JUKI);
        card.selectEf(Contract.FID_JUKI_RESIDENT_CODE);
        card.expect(0x6982, "00D6000001DF");
        card.verifyOk(Contract.FID_JUKI_PIN, Card.JUKI_PIN);
        card.selectEf(Contract.FID_JUKI_RESIDENT_CODE);
        card.ok("00D6000001DF");
        // jpki: the signing password for 0001, the auth PIN for 000A, either for the rest
        card.select(Contract.AID_JPKI);
        card.verifyOk(Contract.FID_JPKI_AUTH_PIN, Card.AUTH_PIN);
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.expect(0x6982, "00D6000001AA");
        card.selectEf(Contract.FID_JPKI_SIGN_KEY);
        card.expect(0x6982, "0047800000");
        card.selectEf(Contract.FID_JPKI_AUTH_CERT);
        card.ok("00D6000001AA");
        card.selectEf(Contract.FID_JPKI_CERT_AVAILABILITY);
        card.ok("00D60000038F8F00");
        card.fresh(Contract.AID_JPKI);
        card.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        card.selectEf(Contract.FID_JPKI_AUTH_CERT);
        card.expect(0x6982, "00D6000001AA");
        card.selectEf(Contract.FID_JPKI_SIGN_CERT);
        card.ok("00D6000001AA");
        card.selectEf(Contract.FID_JPKI_TOKEN_INFO);
        card.ok("00D6000001AA");
        // PUT DATA stays a personalisation command
        card.select(Contract.AID_CARD_MANAGER);
        card.expect(0x6985, "00DA00F005" + hex(ascii("13101")));
    }

    @Test
    void terminatedRefusesAllButSelectAndGetData() {
        Card card = Card.active(false);
        card.select(Contract.AID_CARD_MANAGER);
        card.expect(0x6982, "80F08005");
        card.issuerAuthOk();
        card.ok("80F08005");
        assertEquals(Contract.LIFE_CYCLE_TERMINATED, card.lifeCycle());
        assertArrayEquals(ascii(card.serial), card.ok("00CA004500"));
        card.expect(0x6985, "0084000010");
        card.expect(0x6985, "0082000010" + "00".repeat(16));
        card.expect(0x6985, "80F08005");
        card.expect(0x6985, "00DA00F005" + hex(ascii("13101")));
        card.expect(0x6D00, "00B0000000");
        for (byte[] aid : new byte[][] {Contract.AID_JPKI, Contract.AID_TEXT,
                Contract.AID_SURFACE, Contract.AID_JUKI}) {
            card.select(aid);
            card.selectEf(0x0002);
            card.expect(0x6985, "00B0000000");
            card.expect(0x6985, "00D6000001AA");
            card.expect(0x6985, "0084000010");
            card.expect(0x6985, "0082000010" + "00".repeat(16));
            card.expect(0x6985, "002C0380");
            card.expect(0x6985, "00200080");
            card.expect(0x6985, "802A00800100");
            card.expect(0x6985, "0047810000");
        }
        card.select(Contract.AID_JUKI);
        card.selectEf(Contract.FID_JUKI_PIN);
        card.expect(0x6985, "00200080" + lc(ascii(Card.JUKI_PIN)));
        card.expect(0x6985, "80320080" + lc(ascii("1111")));
        // the municipal applet has its own life cycle
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        card.ok("0084000010");
    }

    @Test
    void terminateFromBlank() {
        Card card = new Card();
        card.issuerAuthOk();
        card.ok("80F08005");
        assertEquals(Contract.LIFE_CYCLE_TERMINATED, card.lifeCycle());
        card.expect(0x6985, "80F08002");
    }
}
