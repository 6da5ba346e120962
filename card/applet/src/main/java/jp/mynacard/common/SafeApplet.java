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
        Util.arrayFillNonAtomic(buf, (short) 0, (short) buf.length, (byte) 0);
        wipe();
        ISOException.throwIt(sw);
    }

    private static final short ISO_UNKNOWN = (short) 0x6F00;
}
