package jp.mynacard.card;

import javacard.framework.APDU;
import javacard.framework.ISOException;
import jp.mynacard.common.AreaApplet;
import jp.mynacard.common.Contract;
import jp.mynacard.common.IssuerAuth;
import jp.mynacard.common.ReferenceData;
import jp.mynacard.common.RsaKeySlot;

/** An area of the card-wide life cycle (JPKI, text, surface, juki). */
abstract class CardArea extends AreaApplet {
    protected CardArea(byte fileCount, byte pinCount, byte keyCount) {
        super(fileCount, pinCount, keyCount);
        CardState.ensure();
    }

    protected boolean holderState() {
        return CardState.lifeCycle() == Contract.LIFE_CYCLE_ACTIVE;
    }

    protected boolean personalisationState() {
        return CardState.isPersonalisation();
    }

    protected boolean postIssueState() {
        return CardState.isPostIssue();
    }

    protected boolean holderMaySetPin() {
        return CardState.lifeCycle() == Contract.LIFE_CYCLE_ISSUED;
    }

    protected boolean terminated() {
        return CardState.lifeCycle() == Contract.LIFE_CYCLE_TERMINATED;
    }

    protected IssuerAuth issuer() {
        return CardState.issuer;
    }

    protected void pinSet(ReferenceData pin) {
        CardState.pinSet(pin.bit);
    }

    protected void keyGenerated(RsaKeySlot key) {
        CardState.keyGenerated(key.bit);
    }

    /**
     * SET SESSION KEY 80 AE: only the card-info input support area has secure messaging; the
     * others refuse as the real card's do (sessionKeyRefusal()).
     */
    protected void setSessionKey(APDU apdu, byte[] buf, short lc) {
        ISOException.throwIt(sessionKeyRefusal());
    }

    /** JPKI and 住基: 6982; 共通 and 券面確認: 66F1 (overridden). */
    protected short sessionKeyRefusal() {
        return Contract.SW_SECURITY_STATUS_NOT_SATISFIED;
    }

    protected static ReferenceData pin(short fid, byte min, byte max, byte charset, byte tries,
                                       boolean holder, byte bit) {
        return new ReferenceData(fid, min, max, charset, tries, holder, bit);
    }
}
