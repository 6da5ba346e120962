package jp.mynacard.bridge;

import com.licel.jcardsim.smartcardio.CardSimulator;
import jp.mynacard.sim.CardImage;

/** One emulated card: a jCardSim simulator with the mynacard card image installed. */
final class Card {
    /** The contact ATR of the contract (card/contract.py ATR). */
    static final byte[] ATR = Hex.decode("3BE000FF8131FE4514");

    private static final byte[] SW_WRONG_LENGTH = {0x67, 0x00};
    private static final byte[] SW_UNKNOWN = {0x6F, 0x00};

    private final CardSimulator sim;
    private final Log log;

    private Card(CardSimulator sim, Log log) {
        this.sim = sim;
        this.log = log;
    }

    /** A fresh card: applets installed with its serial and factory keys, powered on. */
    static Card manufacture(String serial, byte[] cardKey, byte[] cardAuthKey, byte[] municipalKey,
                            Log log) {
        // CardImage sets com.licel.jcardsim.randomdata.secure: real randomness, not a seeded PRNG.
        CardSimulator sim = new CardSimulator();
        CardImage.install(sim, serial, cardKey, cardAuthKey, municipalKey);
        Card card = new Card(sim, log);
        card.reset();
        return card;
    }

    /** Power-on or warm reset: transient state cleared, the card manager selected. */
    void reset() {
        sim.reset();
        try {
            CardImage.afterReset(sim);
        } catch (RuntimeException e) {
            log.error("selecting the card manager after reset failed: " + e.getClass().getName());
        }
    }

    /** Always an ISO response (data + SW): malformed APDUs answer 6700, never an exception. */
    byte[] transmit(byte[] apdu) {
        if (!wellFormed(apdu)) {
            return SW_WRONG_LENGTH.clone();
        }
        if (apdu.length == 261 && (apdu[4] & 0xFF) == 255) {
            // jCardSim's APDU buffer cannot hold a 261-byte command (case 4, Lc 255, Le):
            // it would answer 6F00 without reaching the applet. No command of the contract
            // returns data for 255 data bytes, so the applet gets it as case 3.
            apdu = java.util.Arrays.copyOf(apdu, 260);
        }
        try {
            byte[] response = sim.transmitCommand(apdu);
            if (response == null || response.length < 2) {
                log.error("simulator returned no status word for INS " + ins(apdu));
                return SW_UNKNOWN.clone();
            }
            return response;
        } catch (Throwable t) { // never let one APDU kill the card
            log.error("exception for INS " + ins(apdu) + ": " + t.getClass().getName());
            return SW_UNKNOWN.clone();
        }
    }

    private static String ins(byte[] apdu) {
        return String.format("%02X", apdu[1] & 0xFF);
    }

    /** ISO/IEC 7816-3 command cases 1..4, short or extended. */
    static boolean wellFormed(byte[] a) {
        int n = a.length;
        if (n < 4) {
            return false;
        }
        if (n == 4 || n == 5) {
            return true; // case 1, case 2 short
        }
        int b4 = a[4] & 0xFF;
        if (b4 != 0) {
            return n == 5 + b4 || n == 6 + b4; // case 3 / case 4 short
        }
        if (n == 7) {
            return true; // case 2 extended
        }
        if (n < 8) {
            return false;
        }
        int lc = ((a[5] & 0xFF) << 8) | (a[6] & 0xFF);
        if (lc == 0) {
            return false;
        }
        return n == 7 + lc || n == 9 + lc; // case 3 / case 4 extended
    }
}
