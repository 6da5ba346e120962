package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import jp.mynacard.common.Contract;
import jp.mynacard.sim.CardImage;
import org.junit.jupiter.api.Test;

/** ATTEST KEY: the card MACs its own key slot's public key under the card-authentication key. */
class AttestTest {
    static final byte[] CHALLENGE = Card.unhex("000102030405060708090A0B0C0D0E0F");

    /** The message of card/PROTOCOL.md, built independently of the applet. */
    static byte[] message(String serial, byte[] aid, int fid, byte[] modulus, byte[] challenge) {
        ByteArrayOutputStream m = new ByteArrayOutputStream();
        m.writeBytes(ascii("MYNACARD-KEY-ATTEST-1"));
        m.writeBytes(ascii(serial));
        m.write(aid.length);
        m.writeBytes(aid);
        m.write(fid >> 8);
        m.write(fid & 0xFF);
        m.writeBytes(new byte[] {1, 0, 1});
        m.writeBytes(modulus);
        m.writeBytes(challenge);
        return m.toByteArray();
    }

    static byte[] attest(Card card, int p2, byte[] challenge) {
        return card.ok(String.format("808A00%02X10", p2) + hex(challenge) + "00");
    }

    static byte[] modulus(Card card, int fid) {
        card.select(Contract.AID_JPKI);
        card.selectEf(fid);
        return card.ok("0047810000");
    }

    @Test
    void macCoversSerialAidFidKeyAndChallenge() {
        Card card = Card.active(true);
        byte[] auth = modulus(card, Contract.FID_JPKI_AUTH_KEY);
        byte[] sign = modulus(card, Contract.FID_JPKI_SIGN_KEY);
        byte[] macAuth = attest(card, 0x97, CHALLENGE);
        byte[] macSign = attest(card, 0x9A, CHALLENGE);
        assertEquals(16, macAuth.length);
        assertArrayEquals(Card.cmac(card.cardAuthKey, message(card.serial, Contract.AID_JPKI,
                Contract.FID_JPKI_AUTH_KEY, auth, CHALLENGE)), macAuth);
        assertArrayEquals(Card.cmac(card.cardAuthKey, message(card.serial, Contract.AID_JPKI,
                Contract.FID_JPKI_SIGN_KEY, sign, CHALLENGE)), macSign);
        // the current key EF (P2 = 80) is the same slot
        card.selectEf(Contract.FID_JPKI_SIGN_KEY);
        assertArrayEquals(macSign, attest(card, 0x80, CHALLENGE));
        // every field counts: another challenge, another serial, another FID, the issuer key
        byte[] other = CHALLENGE.clone();
        other[15] ^= 1;
        assertFalse(Arrays.equals(macSign, attest(card, 0x9A, other)));
        assertFalse(Arrays.equals(macSign, Card.cmac(card.cardAuthKey, message("400000099999999",
                Contract.AID_JPKI, Contract.FID_JPKI_SIGN_KEY, sign, CHALLENGE))));
        assertFalse(Arrays.equals(macSign, Card.cmac(card.cardAuthKey, message(card.serial,
                Contract.AID_JPKI, Contract.FID_JPKI_AUTH_KEY, sign, CHALLENGE))));
        assertFalse(Arrays.equals(macSign, Card.cmac(card.cardKey, message(card.serial,
                Contract.AID_JPKI, Contract.FID_JPKI_SIGN_KEY, sign, CHALLENGE))));
        assertFalse(Arrays.equals(macSign, Card.cmac(card.cardAuthKey, message(card.serial,
                Contract.AID_TEXT, Contract.FID_JPKI_SIGN_KEY, sign, CHALLENGE))));
    }

    @Test
    void keysAreDomainSeparated() {
        String serial = "400000012345678";
        assertFalse(Arrays.equals(CardImage.deriveKey(CardImage.TEST_ISSUER_MASTER_KEY, serial),
                CardImage.deriveCardAuthKey(CardImage.TEST_ISSUER_MASTER_KEY, serial)));
    }

    @Test
    void aNewKeyChangesTheMac() {
        Card card = new Card();
        card.select(Contract.AID_CARD_MANAGER);
        card.issuerAuthOk();
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        byte[] first = card.ok("0047800000");
        byte[] mac1 = attest(card, 0x97, CHALLENGE);
        assertArrayEquals(Card.cmac(card.cardAuthKey, message(card.serial, Contract.AID_JPKI,
                Contract.FID_JPKI_AUTH_KEY, first, CHALLENGE)), mac1);
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        byte[] second = card.ok("0047800000");
        byte[] mac2 = attest(card, 0x97, CHALLENGE);
        assertFalse(Arrays.equals(mac1, mac2));
        assertArrayEquals(Card.cmac(card.cardAuthKey, message(card.serial, Contract.AID_JPKI,
                Contract.FID_JPKI_AUTH_KEY, second, CHALLENGE)), mac2);
    }

    @Test
    void statusWords() {
        Card card = new Card();
        card.select(Contract.AID_JPKI);
        String c = hex(CHALLENGE);
        card.expect(0x6A88, "808A009710" + c + "00");         // no key yet
        card.expect(0x6A88, "808A009A10" + c);
        card.expect(0x6986, "808A008010" + c + "00");         // no current EF
        card.selectEf(Contract.FID_JPKI_TOKEN_INFO);
        card.expect(0x6981, "808A008010" + c + "00");         // not a key EF
        card.expect(0x6981, "808A009810" + c + "00");         // a PIN EF
        card.expect(0x6A82, "808A009F10" + c + "00");         // no such EF
        card.expect(0x6A86, "808A019710" + c + "00");         // P1
        card.expect(0x6A86, "808A001710" + c + "00");         // P2 not 80|SFI
        card.expect(0x6700, "808A00970F" + c.substring(2) + "00");
        card.expect(0x6700, "808A009711" + c + "AA" + "00");
        card.expect(0x6700, "808A009700");
        // no issuer authentication needed, any state but terminated
        Card active = Card.active(true);
        active.select(Contract.AID_JPKI);
        assertEquals(16, attest(active, 0x97, CHALLENGE).length);
        active.select(Contract.AID_CARD_MANAGER);
        active.issuerAuthOk();
        active.ok("80F08005");
        active.select(Contract.AID_JPKI);
        active.expect(0x6985, "808A009710" + c + "00");
        // only the JPKI area attests
        Card other = Card.active(true);
        other.select(Contract.AID_TEXT);
        other.expect(0x6D00, "808A009710" + c + "00");
        other.select(Contract.AID_CARD_MANAGER);
        other.expect(0x6D00, "808A009710" + c + "00");
        other.select(Contract.AID_MUNICIPAL_LIBRARY);
        other.expect(0x6D00, "808A009710" + c + "00");
    }
}
