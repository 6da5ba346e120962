package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.hex;
import static jp.mynacard.test.Card.lc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.RSAPublicKeySpec;
import java.util.Arrays;
import javax.crypto.Cipher;
import jp.mynacard.common.Contract;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** On-card RSA-2048 keys and PKCS#1 v1.5 signing; randomness across cards. */
class JpkiTest {
    static Card card;
    static byte[] authModulus;
    static byte[] signModulus;
    static final byte[] SHA256_PREFIX = Card.unhex("3031300d060960864801650304020105000420");

    @BeforeAll
    static void setUp() {
        card = Card.active(true);
        card.select(Contract.AID_JPKI);
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        authModulus = card.ok("0047810000");
        card.selectEf(Contract.FID_JPKI_SIGN_KEY);
        signModulus = card.ok("0047810000");
    }

    static PublicKey publicKey(byte[] modulus) throws Exception {
        return KeyFactory.getInstance("RSA").generatePublic(
                new RSAPublicKeySpec(new BigInteger(1, modulus), BigInteger.valueOf(65537)));
    }

    static byte[] digestInfo(byte[] message) throws Exception {
        byte[] h = MessageDigest.getInstance("SHA-256").digest(message);
        byte[] di = Arrays.copyOf(SHA256_PREFIX, SHA256_PREFIX.length + h.length);
        System.arraycopy(h, 0, di, SHA256_PREFIX.length, h.length);
        return di;
    }

    @Test
    void modulusIsRsa2048() {
        assertEquals(256, authModulus.length);
        assertEquals(256, signModulus.length);
        assertTrue((authModulus[0] & 0x80) != 0);
        assertNotEquals(hex(authModulus), hex(signModulus));
    }

    @Test
    void signWithEachKeyAfterVerify() throws Exception {
        byte[] message = ascii("mynacard signing test");
        byte[] di = digestInfo(message);
        Object[][] keys = {
            {Contract.FID_JPKI_AUTH_KEY, Contract.FID_JPKI_AUTH_PIN, Card.AUTH_PIN, authModulus},
            {Contract.FID_JPKI_SIGN_KEY, Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN, signModulus},
        };
        for (Object[] k : keys) {
            int keyFid = (Short) k[0];
            card.select(Contract.AID_JPKI);
            card.selectEf(keyFid);
            card.expect(0x6982, "802A0080" + lc(di) + "00");
            card.verifyOk((Short) k[1], (String) k[2]);
            card.selectEf(keyFid);
            byte[] sig = card.ok("802A0080" + lc(di) + "00");
            assertEquals(256, sig.length);
            Signature v = Signature.getInstance("SHA256withRSA");
            v.initVerify(publicKey((byte[]) k[3]));
            v.update(message);
            assertTrue(v.verify(sig), "signature verifies with the public key");
            // type-1 padding visible with the raw public operation
            Cipher raw = Cipher.getInstance("RSA/ECB/NoPadding");
            raw.init(Cipher.DECRYPT_MODE, publicKey((byte[]) k[3]));
            byte[] em = raw.doFinal(sig);
            byte[] full = new byte[256];
            System.arraycopy(em, 0, full, 256 - em.length, em.length);
            assertEquals(0x00, full[0]);
            assertEquals(0x01, full[1]);
            assertEquals((byte) 0xFF, full[2]);
            // by SFI, no SELECT: the same signature (deterministic PKCS#1 v1.5)
            String p2 = String.format("%02X", 0x80 | keyFid);
            assertArrayEquals(sig, card.ok("802A00" + p2 + lc(di) + "00"));
            // SHA-1 DigestInfo (35 bytes) as JPKIReader sends
            byte[] sha1 = Card.unhex("3021300906052b0e03021a05000414" + "11".repeat(20));
            assertEquals(256, card.ok("802A00" + p2 + lc(sha1) + "00").length);
        }
    }

    @Test
    void signRefusals() throws Exception {
        card.fresh(Contract.AID_JPKI);
        card.verifyOk(Contract.FID_JPKI_AUTH_PIN, Card.AUTH_PIN);
        // the auth PIN does not open the signing key
        card.expect(0x6982, "802A009A0401020304" + "00");
        card.selectEf(Contract.FID_JPKI_AUTH_KEY);
        card.expect(0x6A86, "802A01800401020304" + "00");
        card.expect(0x6A86, "802A00000401020304" + "00");
        card.expect(0x6700, "802A0080" + "00");
        byte[] big = new byte[246];
        card.expect(0x6700, "802A0080" + lc(big) + "00");
        byte[] max = new byte[245];
        assertEquals(256, card.ok("802A0080" + lc(max) + "00").length);
        card.selectEf(Contract.FID_JPKI_AUTH_CERT);
        card.expect(0x6981, "802A00800401020304" + "00");
        card.expect(0x6A82, "802A009E0401020304" + "00");
        card.select(Contract.AID_JPKI);
        card.expect(0x6986, "802A00800401020304" + "00");
    }

    @Test
    void noKeyGivesConditionsNotSatisfied() {
        Card c = Card.active(false);
        c.select(Contract.AID_JPKI);
        c.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        c.selectEf(Contract.FID_JPKI_SIGN_KEY);
        c.expect(0x6985, "802A00800401020304" + "00");
        c.expect(0x6A88, "0047810000");
    }

    @Test
    void regenerateAfterIssueWithIssuerAndHolder() throws Exception {
        Card c = Card.active(true);
        c.select(Contract.AID_JPKI);
        c.selectEf(Contract.FID_JPKI_SIGN_KEY);
        byte[] before = c.ok("0047810000");
        c.issuerAuthOk();
        c.selectEf(Contract.FID_JPKI_SIGN_KEY);
        c.expect(0x6982, "0047800000");
        c.verifyOk(Contract.FID_JPKI_SIGN_PIN, Card.SIGN_PIN);
        c.selectEf(Contract.FID_JPKI_SIGN_KEY);
        byte[] after = c.ok("0047800000");
        assertNotEquals(hex(before), hex(after));
        assertArrayEquals(after, c.ok("0047810000"));
        byte[] di = digestInfo(ascii("after renewal"));
        byte[] sig = c.ok("802A0080" + lc(di) + "00");
        Signature v = Signature.getInstance("SHA256withRSA");
        v.initVerify(publicKey(after));
        v.update(ascii("after renewal"));
        assertTrue(v.verify(sig));
    }

    @Test
    void twoCardsNeverShareKeysOrChallenges() {
        Card a = new Card();
        Card b = new Card();
        byte[] ca = a.ok("0084000020");
        byte[] cb = b.ok("0084000020");
        assertNotEquals(hex(ca), hex(cb));
        a.issuerAuthOk();
        b.issuerAuthOk();
        a.select(Contract.AID_JPKI);
        b.select(Contract.AID_JPKI);
        a.selectEf(Contract.FID_JPKI_AUTH_KEY);
        b.selectEf(Contract.FID_JPKI_AUTH_KEY);
        byte[] ma = a.ok("0047800000");
        byte[] mb = b.ok("0047800000");
        assertNotEquals(hex(ma), hex(mb));
        assertNotEquals(hex(ma), hex(authModulus));
        // and two cards installed the same way start with different challenges after reset
        a.reset();
        b.reset();
        assertNotEquals(hex(a.ok("0084000010")), hex(b.ok("0084000010")));
    }

    @Test
    void cardsAreIsolatedFromEachOther() {
        Card a = new Card();
        Card b = new Card();
        a.issuerAuthOk();
        a.ok("80F08002");
        assertEquals(Contract.LIFE_CYCLE_PERSONALISED, a.lifeCycle());
        assertEquals(Contract.LIFE_CYCLE_BLANK, b.lifeCycle());
        assertArrayEquals(ascii(a.serial), a.ok("00CA004500"));
        assertArrayEquals(ascii(b.serial), b.ok("00CA004500"));
        // a's card key does not authenticate b
        assertEquals(0x63C9, b.issuerAuth(a.cardKey));
    }
}
