package jp.mynacard.test;

import static jp.mynacard.test.Card.ascii;
import static jp.mynacard.test.Card.lc;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.stream.Stream;
import jp.mynacard.common.Contract;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The PIN rules, for every PIN and code of every area. */
class PinTest {
    static Stream<Arguments> pins() {
        return Stream.of(
            Arguments.of("jpki auth", Contract.AID_JPKI, Contract.FID_JPKI_AUTH_PIN, 3,
                Card.AUTH_PIN, "9999", new String[] {"123", "12345", "12A4", "12 4"}),
            Arguments.of("jpki sign", Contract.AID_JPKI, Contract.FID_JPKI_SIGN_PIN, 5,
                Card.SIGN_PIN, "ZZZZZZZZZZZZZZ99", new String[] {"ABCDEF", "123456", "abc123",
                    "AB12", "ABCD5", "ABC-123"}),
            Arguments.of("text pin", Contract.AID_TEXT, Contract.FID_TEXT_PIN, 3,
                Card.TEXT_PIN, "0000", new String[] {"234", "23456", "abcd"}),
            Arguments.of("text code A", Contract.AID_TEXT, Contract.FID_TEXT_CODE_A, 10,
                Card.CODE_A, "210987654321", new String[] {"12345678901", "1234567890AB"}),
            Arguments.of("text code B", Contract.AID_TEXT, Contract.FID_TEXT_CODE_B, 10,
                Card.CODE_B, "11111111111111", new String[] {"1111111111111", "111111111111111"}),
            Arguments.of("surface birth key", Contract.AID_SURFACE, Contract.FID_SURFACE_BIRTH_KEY,
                10, Card.BIRTH_KEY, "010101", new String[] {"01010", "0101011", "O10101"}),
            Arguments.of("surface code A", Contract.AID_SURFACE, Contract.FID_SURFACE_CODE_A, 10,
                Card.CODE_A, "210987654321", new String[] {"12345678901"}),
            Arguments.of("surface code B", Contract.AID_SURFACE, Contract.FID_SURFACE_CODE_B, 10,
                Card.CODE_B, "11111111111111", new String[] {"1111111111111"}),
            Arguments.of("juki pin", Contract.AID_JUKI, Contract.FID_JUKI_PIN, 3,
                Card.JUKI_PIN, "7777", new String[] {"777", "7777A"}));
    }

    private static String wrong(String good) {
        char c = good.charAt(0) == '9' ? '8' : '9';
        return c + good.substring(1);
    }

    private static int tries(int n) {
        return 0x63C0 | n;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pins")
    void countsDownBlocksAndIsResetByTheIssuer(String name, byte[] aid, int fid, int max,
                                               String good, String fresh, String[] bad) {
        Card card = Card.active(false);
        card.select(aid);
        card.selectEf(fid);
        // empty VERIFY: tries left, no try used
        card.expect(tries(max), "00200080");
        card.expect(tries(max), "00200080");
        // a wrong value uses a try; a right one restores the counter
        card.expect(tries(max - 1), "00200080" + lc(ascii(wrong(good))));
        card.expect(tries(max - 1), "00200080");
        card.ok("00200080" + lc(ascii(good)));
        card.expect(tries(max), "00200080");
        // Lc > 16
        card.expect(0x6700, "0020008011" + "31".repeat(17));
        card.expect(0x6A86, "00200180" + lc(ascii(good)));
        // count down to the blocking try
        for (int left = max - 1; left >= 1; left--) {
            card.expect(tries(left), "00200080" + lc(ascii(wrong(good))));
        }
        card.expect(0x63C0, "00200080" + lc(ascii(wrong(good))));
        card.expect(0x6984, "00200080" + lc(ascii(wrong(good))));
        card.expect(0x6984, "00200080" + lc(ascii(good)));
        card.expect(0x63C0, "00200080");
        // CHANGE on a blocked PIN
        card.expect(0x6984, "00240180" + lc(ascii(fresh)));
        // the holder cannot reset it
        card.expect(0x6982, "002C0380");
        card.expect(0x6982, "002C0280" + lc(ascii(fresh)));
        // the issuer resets the counter, the value is kept
        card.issuerAuthOk();
        card.selectEf(fid);
        card.ok("002C0380");
        card.expect(tries(max), "00200080");
        card.ok("00200080" + lc(ascii(good)));
        // the issuer sets a new value (format checked)
        for (String b : bad) {
            card.expect(0x6A80, "002C0280" + lc(ascii(b)));
        }
        card.ok("002C0280" + lc(ascii(fresh)));
        card.expect(tries(max - 1), "00200080" + lc(ascii(good)));
        card.ok("00200080" + lc(ascii(fresh)));
        card.expect(0x6A86, "002C0480");
        card.expect(0x6700, "002C038001" + "31");
        card.expect(0x6700, "002C0280");
        card.expect(0x6700, "002C028011" + "31".repeat(17));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pins")
    void changeNeedsVerifyAndTheFormat(String name, byte[] aid, int fid, int max,
                                       String good, String fresh, String[] bad) {
        Card card = Card.active(false);
        card.select(aid);
        card.selectEf(fid);
        card.expect(0x6982, "00240180" + lc(ascii(fresh)));
        card.expect(0x6982, "80320080" + lc(ascii(fresh)));
        card.ok("00200080" + lc(ascii(good)));
        for (String b : bad) {
            card.expect(0x6A80, "00240180" + lc(ascii(b)));
            card.expect(0x6A80, "80320080" + lc(ascii(b)));
        }
        card.expect(0x6700, "00240180");
        card.expect(0x6700, "0024018011" + "31".repeat(17));
        card.expect(0x6A86, "00240080" + lc(ascii(fresh)));
        card.expect(0x6A86, "80320180" + lc(ascii(fresh)));
        card.ok("00240180" + lc(ascii(fresh)));
        card.expect(tries(max - 1), "00200080" + lc(ascii(good)));
        card.ok("00200080" + lc(ascii(fresh)));
        // JICSAP CHANGE KEY form back to the old value
        card.ok("80320080" + lc(ascii(good)));
        card.ok("00200080" + lc(ascii(good)));
        // a failed VERIFY drops the verified state
        card.expect(tries(max - 1), "00200080" + lc(ascii(wrong(good))));
        card.expect(0x6982, "00240180" + lc(ascii(fresh)));
        // a re-SELECT of the application keeps it; selecting another one drops it
        card.ok("00200080" + lc(ascii(good)));
        card.select(aid);
        card.selectEf(fid);
        card.ok("00240180" + lc(ascii(good)));
        card.select(Contract.AID_CARD_MANAGER);
        card.select(aid);
        card.selectEf(fid);
        card.expect(0x6982, "00240180" + lc(ascii(fresh)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pins")
    void verifyBySfiAndNonPinFiles(String name, byte[] aid, int fid, int max,
                                   String good, String fresh, String[] bad) {
        Card card = Card.active(false);
        card.select(aid);
        String p2 = String.format("%02X", 0x80 | fid);
        card.expect(0x6986, "00200080");
        card.expect(tries(max), "002000" + p2);
        card.ok("002000" + p2 + lc(ascii(good)));
        card.expect(0x6A82, "0020009E" + lc(ascii(good)));
        card.expect(0x6A86, "00200000" + lc(ascii(good)));
        card.expect(0x6A86, "002000C1" + lc(ascii(good)));
        card.selectEf(0x0001 == fid ? 0x0002 : 0x0002);
        card.expect(0x6981, "00200080" + lc(ascii(good)));
        assertEquals(0x9000, card.verify(fid, good));
    }
}
