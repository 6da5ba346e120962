package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.lc;
import static org.junit.jupiter.api.Assertions.assertEquals;

import jp.mynacard.common.Contract;
import org.junit.jupiter.api.Test;

/** The municipal library applet: own issuer key, own life cycle, own PIN. */
class MunicipalTest {
    static final String NUMBER = "DF0108" + hex(ascii("LIB00042"));

    private static byte state(Card card) {
        return card.ok("00CADF7100")[0];
    }

    @Test
    void ownKeyAndLifeCycle() {
        Card card = new Card();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        assertEquals(Contract.LIFE_CYCLE_BLANK, state(card));
        card.expect(0x6A88, "00CA004500");
        // the card issuer key does not authenticate here
        assertEquals(0x63C9, card.issuerAuth(card.cardKey));
        // the card-wide issuer authentication does not open it either
        card.select(Contract.AID_CARD_MANAGER);
        card.issuerAuthOk();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.expect(0x6982, "00D6000001AA");
        card.expect(0x6982, "80F08003");
        // its own key
        assertEquals(0x9000, card.issuerAuth(card.municipalKey));
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.ok("00D60000" + lc(Card.unhex(NUMBER)));
        // holder operations before the lock
        card.expect(0x6985, "00B0000000");
        card.selectEf(Contract.FID_LIBRARY_PIN);
        card.expect(0x6985, "00200080");
        card.expect(0x6A86, "80F00003");
        card.expect(0x6985, "80F08002");
        card.expect(0x6985, "80F08004");
        card.ok("80F08003");
        assertEquals(Contract.LIFE_CYCLE_ISSUED, state(card));
        card.expect(0x6985, "80F08003");
        // the card's own life cycle is unaffected
        assertEquals(Contract.LIFE_CYCLE_BLANK, card.lifeCycle());
        card.reset();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        // after the lock: the issuer cannot write without the holder
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.expect(0x6982, "00B0000000");
    }

    @Test
    void holderSetsThePinOnceThenVerifyOpensTheFile() {
        Card card = new Card();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        card.issuerAuth(card.municipalKey);
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.ok("00D60000" + lc(Card.unhex(NUMBER)));
        card.ok("80F08003");
        card.reset();
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        card.selectEf(Contract.FID_LIBRARY_PIN);
        card.expect(0x6985, "00200080");
        card.expect(0x6A80, "002C0280" + lc(ascii("12345")));
        card.ok("002C0280" + lc(ascii(Card.LIBRARY_PIN)));
        card.expect(0x6982, "002C0280" + lc(ascii("9999")));
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.expect(0x6982, "00B0000000");
        // card credentials do not open it
        card.select(Contract.AID_TEXT);
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        card.selectEf(Contract.FID_LIBRARY_PIN);
        card.expect(0x63C3, "00200080");
        card.expect(0x63C2, "00200080" + lc(ascii("0000")));
        card.ok("00200080" + lc(ascii(Card.LIBRARY_PIN)));
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        assertEquals(NUMBER, hex(card.ok("00B000000B")));
        assertEquals(32, card.ok("00B0000000").length);
        // post-lock update: its own issuer + the library PIN
        card.expect(0x6982, "00D6000001DF");
        card.fresh(Contract.AID_MUNICIPAL_LIBRARY);
        assertEquals(0x9000, card.issuerAuth(card.municipalKey));
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.expect(0x6982, "00D6000001DF");
        card.verifyOk(Contract.FID_LIBRARY_PIN, Card.LIBRARY_PIN);
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.ok("00D6000001DF");
        // PIN blocking and reset by its issuer
        card.selectEf(Contract.FID_LIBRARY_PIN);
        card.expect(0x63C2, "00200080" + lc(ascii("0000")));
        card.expect(0x63C1, "00200080" + lc(ascii("0000")));
        card.expect(0x63C0, "00200080" + lc(ascii("0000")));
        card.expect(0x6984, "00200080" + lc(ascii(Card.LIBRARY_PIN)));
        card.ok("002C0380");
        card.ok("00200080" + lc(ascii(Card.LIBRARY_PIN)));
        // terminate it: the card is unaffected
        card.ok("80F08005");
        card.expect(0x6985, "00200080");
        assertEquals(Contract.LIFE_CYCLE_TERMINATED, state(card));
        assertEquals(Contract.LIFE_CYCLE_BLANK, card.lifeCycle());
    }

    @Test
    void unaffectedByCardTermination() {
        Card card = new Card();
        card.issuerAuthOk();
        card.ok("80F08005");
        card.select(Contract.AID_MUNICIPAL_LIBRARY);
        assertEquals(0x9000, card.issuerAuth(card.municipalKey));
        card.selectEf(Contract.FID_LIBRARY_NUMBER);
        card.ok("00D6000001DF");
    }
}
