package jp.mynacard.test;

import static jp.mynacard.test.Card.hex;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.licel.jcardsim.crypto.RandomDataImpl;
import java.util.HashSet;
import java.util.Set;
import javacard.security.RandomData;
import jp.mynacard.common.Contract;
import jp.mynacard.sim.CardImage;
import org.junit.jupiter.api.Test;

/** jCardSim's RandomData is deterministic by default; CardImage makes it secure. */
class RandomnessTest {
    private static String sample() {
        RandomData r = new RandomDataImpl(RandomData.ALG_SECURE_RANDOM);
        byte[] b = new byte[16];
        r.generateData(b, (short) 0, (short) 16);
        return hex(b);
    }

    @Test
    void defaultIsDeterministicSecureIsNot() {
        String saved = System.getProperty(CardImage.RANDOM_SECURE_PROPERTY);
        try {
            System.setProperty(CardImage.RANDOM_SECURE_PROPERTY, "0");
            assertEquals(sample(), sample(), "jCardSim default: same bytes every time");
            System.setProperty(CardImage.RANDOM_SECURE_PROPERTY, "1");
            assertNotEquals(sample(), sample());
        } finally {
            System.setProperty(CardImage.RANDOM_SECURE_PROPERTY, saved == null ? "1" : saved);
        }
    }

    @Test
    void challengesDifferAcrossCards() {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 5; i++) {
            Card c = new Card();
            seen.add(hex(c.ok("0084000010")));
            c.select(Contract.AID_JPKI);
            seen.add(hex(c.ok("0084000010")));
        }
        assertEquals(10, seen.size());
    }
}
