package jp.mynacard.common;

import javacard.framework.APDU;
import javacard.framework.APDUException;
import javacard.framework.Applet;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * An applet whose dispatch can never answer 6F00: every exception is mapped to an ISO
 * status word, an open transaction is aborted and the scratch buffers are wiped.
 */
public abstract class SafeApplet extends Applet {
    /**
     * Slot 0: the applet whose deselect() ran last, consumed by the next select(). jCardSim (like
     * the Java Card runtime) calls deselect() then select() on the same applet when the current
     * application is selected again; that is how select() tells a re-SELECT from a switch.
     * CLEAR_ON_RESET, so a reset or a power cycle forgets it.
     */
    private static Object[] leaving;

    protected SafeApplet() {
        if (leaving == null) {
            leaving = JCSystem.makeTransientObjectArray((short) 1, JCSystem.CLEAR_ON_RESET);
        }
    }

    public final boolean select() {
        boolean again = leaving[0] == this;
        leaving[0] = null;
        return selected(again);
    }

    public final void deselect() {
        leaving[0] = this;
        deselected();
    }

    /**
     * This applet became the current application; again is true when it already was (a re-SELECT
     * of the current application, ISO 7816-4: the security status of the current DF is kept).
     */
    protected boolean selected(boolean again) {
        return true;
    }

    /** Another application is being selected, or this one again (see selected). */
    protected void deselected() {
    }

    /** Handles one command; throw ISOException for any status other than 9000. */
    protected abstract void handle(APDU apdu);

    /** Wipes sensitive transient buffers after a failed command. */
    protected void wipe() {
    }

    public final void process(APDU apdu) {
        short sw = 0;
        try {
            handle(apdu);
            return;
        } catch (ISOException e) {
            sw = e.getReason();
            if (sw == ISO_UNKNOWN || sw == 0) {
                sw = Contract.SW_CONDITIONS_NOT_SATISFIED;
            }
        } catch (APDUException e) {
            sw = Contract.SW_WRONG_LENGTH;
        } catch (ArrayIndexOutOfBoundsException e) {
            sw = Contract.SW_WRONG_LENGTH;
        } catch (Exception e) {
            // CryptoException, SystemException, TransactionException, ...
            sw = Contract.SW_CONDITIONS_NOT_SATISFIED;
        }
        if (JCSystem.getTransactionDepth() != 0) {
            JCSystem.abortTransaction();
        }
        byte[] buf = apdu.getBuffer();
        Util.arrayFillNonAtomic(buf, (short) 0, ApduUtil.usableLength(buf), (byte) 0);
        wipe();
        ISOException.throwIt(sw);
    }

    private static final short ISO_UNKNOWN = (short) 0x6F00;
}
