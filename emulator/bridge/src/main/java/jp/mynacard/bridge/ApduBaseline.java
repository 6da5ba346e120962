package jp.mynacard.bridge;

import com.licel.jcardsim.smartcardio.CardSimulator;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;
import jp.mynacard.sim.CardImage;

/**
 * Benchmark baseline: SELECT EF + READ BINARY pairs sent straight into an in-process
 * jCardSim card (no PC/SC), the same APDUs bench/apdu_roundtrip.py sends through pcscd.
 *
 * <p>Usage: {@code java -cp mynacard-bridge.jar jp.mynacard.bridge.ApduBaseline [PAIRS [WARMUP]]}.
 * The card is made active first (issuer authentication with the test key, JPKI token info
 * written, the text and juki PINs set, SET STATUS personalised then issued), so READ
 * BINARY of JPKI EF 0006 returns its 160 bytes. Prints one JSON line with the median and
 * p99 of a pair in microseconds.
 */
public final class ApduBaseline {
    static final byte[] SELECT_TOKEN_INFO = Hex.decode("00A4020C020006");
    static final byte[] READ_TOKEN_INFO = Hex.decode("00B00000A0");

    private ApduBaseline() {}

    public static void main(String[] args) throws Exception {
        int pairs = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        int warmup = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
        String serial = randomSerial();
        CardSimulator sim = CardImage.create(serial);
        byte[] cardKey = CardImage.deriveKey(CardImage.TEST_ISSUER_MASTER_KEY, serial);
        activate(sim, cardKey);
        expect(sim, "select JPKI", "00A4040C0AD392F000260100000001");
        for (int i = 0; i < warmup; i++) {
            pair(sim);
        }
        long[] times = new long[pairs];
        byte[] last = null;
        for (int i = 0; i < pairs; i++) {
            long t0 = System.nanoTime();
            last = pair(sim);
            times[i] = System.nanoTime() - t0;
        }
        Arrays.sort(times);
        int sw = last == null ? 0 : sw(last);
        System.out.printf(
                "{\"pairs\": %d, \"median_us\": %.3f, \"p99_us\": %.3f, \"read_sw\": \"%04X\", \"read_len\": %d}%n",
                pairs, times[pairs / 2] / 1000.0, times[Math.min(pairs - 1, (int) (pairs * 0.99))] / 1000.0,
                sw, last == null ? 0 : last.length - 2);
    }

    static byte[] pair(CardSimulator sim) {
        byte[] r = sim.transmitCommand(SELECT_TOKEN_INFO);
        if (sw(r) != 0x9000) {
            throw new IllegalStateException("SELECT EF 0006 answered " + Integer.toHexString(sw(r)));
        }
        return sim.transmitCommand(READ_TOKEN_INFO);
    }

    /** The shortest path from blank to active (PROTOCOL.md), with the test issuer key. */
    static void activate(CardSimulator sim, byte[] cardKey) throws GeneralSecurityException {
        byte[] challenge = expect(sim, "get challenge", "0084000010");
        byte[] cryptogram = cmac(cardKey, Arrays.copyOf(challenge, challenge.length - 2));
        expect(sim, "external authenticate", "0082000010" + Hex.encode(cryptogram));
        expect(sim, "select JPKI", "00A4040C0AD392F000260100000001");
        expect(sim, "select token info", "00A4020C020006");
        byte[] info = new byte[160];
        Arrays.fill(info, (byte) 0x20);
        byte[] label = "JPKIAPICCTOKEN2".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        System.arraycopy(label, 0, info, 0, label.length);
        expect(sim, "write token info", "00D60000A0" + Hex.encode(info));
        expect(sim, "select text", "00A4040C0AD3921000310001010408");
        expect(sim, "select text PIN", "00A4020C020011");
        expect(sim, "set text PIN", "002C028004" + Hex.encode("2345".getBytes()));
        expect(sim, "select juki", "00A4040C0AD3921000310001010401");
        expect(sim, "select juki PIN", "00A4020C02001C");
        expect(sim, "set juki PIN", "002C028004" + Hex.encode("3456".getBytes()));
        expect(sim, "select common", "00A4040C0AD3921000310001010100");
        expect(sim, "select common PIN", "00A4020C02001C");
        expect(sim, "set common PIN", "002C028004" + Hex.encode("3456".getBytes()));
        expect(sim, "select card manager", "00A4040C07A0000001510000");
        expect(sim, "personalised", "80F08002");
        expect(sim, "issued", "80F08003");
        byte[] state = expect(sim, "life cycle", "00CADF7100");
        if (state.length < 3 || state[0] != 0x04) {
            throw new IllegalStateException("card not active after issue: " + Hex.encode(state));
        }
    }

    static byte[] expect(CardSimulator sim, String step, String apduHex) {
        byte[] r = sim.transmitCommand(Hex.decode(apduHex));
        if (sw(r) != 0x9000) {
            System.out.printf("{\"error\": \"%s answered %04X\"}%n", step, sw(r));
            System.exit(1);
        }
        return r;
    }

    static int sw(byte[] r) {
        return ((r[r.length - 2] & 0xFF) << 8) | (r[r.length - 1] & 0xFF);
    }

    /** AES-CMAC (RFC 4493) of a message of whole 16-byte blocks. */
    static byte[] cmac(byte[] key, byte[] message) throws GeneralSecurityException {
        if (message.length == 0 || message.length % 16 != 0) {
            throw new IllegalArgumentException("whole blocks only");
        }
        Cipher aes = Cipher.getInstance("AES/ECB/NoPadding");
        aes.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"));
        byte[] k1 = shift(aes.doFinal(new byte[16]));
        byte[] x = new byte[16];
        for (int off = 0; off < message.length; off += 16) {
            boolean lastBlock = off + 16 == message.length;
            for (int i = 0; i < 16; i++) {
                x[i] ^= message[off + i];
                if (lastBlock) {
                    x[i] ^= k1[i];
                }
            }
            x = aes.doFinal(x);
        }
        return x;
    }

    private static byte[] shift(byte[] l) {
        byte[] k = new byte[16];
        int carry = 0;
        for (int i = 15; i >= 0; i--) {
            int v = (l[i] & 0xFF) << 1 | carry;
            k[i] = (byte) v;
            carry = (l[i] & 0x80) != 0 ? 1 : 0;
        }
        if ((l[0] & 0x80) != 0) {
            k[15] ^= (byte) 0x87;
        }
        return k;
    }

    static String randomSerial() {
        SecureRandom r = new SecureRandom();
        StringBuilder sb = new StringBuilder().append(1 + r.nextInt(9));
        while (sb.length() < 15) {
            sb.append(r.nextInt(10));
        }
        return sb.toString();
    }
}
