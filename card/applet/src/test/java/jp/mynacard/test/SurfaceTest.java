package jp.mynacard.test;

import static org.junit.jupiter.api.Assertions.assertEquals;

import jp.mynacard.common.Contract;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** 券面AP: file sizes (the face holds images, a JP2 photo and a signature) and who opens what. */
class SurfaceTest {
    static Card card;

    @BeforeEach
    void setUp() {
        card = Card.active(false);
        card.reset();
        card.select(Contract.AID_SURFACE);
    }

    private static void assertSize(int fid, int size) {
        card.selectEf(fid);
        assertEquals(1, card.ok(String.format("00B0%04X01", size - 1)).length);
        card.expect(0x6B00, String.format("00B0%04X00", size));
    }

    @Test
    void codeAOpensFaceAndMyNumberImageWithTheirSizes() {
        card.verifyOk(Contract.FID_SURFACE_CODE_A, Card.CODE_A);
        assertSize(Contract.FID_SURFACE_FACE, Contract.SIZE_SURFACE_FACE);
        assertSize(Contract.FID_SURFACE_MY_NUMBER_IMAGE, Contract.SIZE_SURFACE_MY_NUMBER_IMAGE);
        assertEquals(8192, Contract.SIZE_SURFACE_FACE);
        assertEquals(2048, Contract.SIZE_SURFACE_MY_NUMBER_IMAGE);
        card.selectEf(Contract.FID_SURFACE_AGE_RECORD);
        card.expect(0x6982, "00B0000001");
    }

    @Test
    void codeBOpensTheFaceButNotTheMyNumberImage() {
        card.verifyOk(Contract.FID_SURFACE_CODE_B, Card.CODE_B);
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.ok("00B0000002");
        card.selectEf(Contract.FID_SURFACE_MY_NUMBER_IMAGE);
        card.expect(0x6982, "00B0000001");
    }

    @Test
    void noCodeOpensOnlyBasicDataAndCertificate() {
        assertSize(Contract.FID_SURFACE_AP_BASIC, Contract.SIZE_SURFACE_AP_BASIC);
        assertSize(Contract.FID_SURFACE_CV_CERT, Contract.SIZE_SURFACE_CV_CERT);
        assertEquals(568, Contract.SIZE_SURFACE_CV_CERT);
        for (int fid : new int[] {Contract.FID_SURFACE_FACE, Contract.FID_SURFACE_MY_NUMBER_IMAGE,
                Contract.FID_SURFACE_AGE_RECORD}) {
            card.selectEf(fid);
            card.expect(0x6982, "00B0000001");
        }
    }

    @Test
    void birthKeyOpensOnlyTheAgeRecord() {
        card.verifyOk(Contract.FID_SURFACE_BIRTH_KEY, Card.BIRTH_KEY);
        assertSize(Contract.FID_SURFACE_AGE_RECORD, Contract.SIZE_SURFACE_AGE_RECORD);
        card.selectEf(Contract.FID_SURFACE_FACE);
        card.expect(0x6982, "00B0000001");
    }
}
