package jp.mynacard.sim;

import com.licel.jcardsim.smartcardio.CardSimulator;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.security.CodeSource;
import java.security.GeneralSecurityException;
import javacard.framework.AID;
import javacard.framework.Applet;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;
import jp.mynacard.common.Contract;

/**
 * Installs the mynacard applets into a jCardSim {@link CardSimulator} (plain Java, not Java
 * Card code; used by the tests and by the emulator bridge).
 *
 * <ul>
 *   <li>{@link #install} installs every applet and leaves the card manager selected.</li>
 *   <li>jCardSim has no default-selected applet: after {@code sim.reset()} nothing is
 *       selected, so call {@link #afterReset} (or use {@link #reset}) to select the card
 *       manager, as the real card does at power-on.</li>
 *   <li>{@link #transmit} maps APDUs that jCardSim cannot even parse (it throws) to 6700.</li>
 *   <li>Randomness: jCardSim's RandomData is a SHA-1 DRBG with a fixed seed unless the
 *       system property {@code com.licel.jcardsim.randomdata.secure} is {@code 1}; this class
 *       sets it before any applet is installed. Key pairs use {@code java.security.SecureRandom}.</li>
 *   <li>Each card gets its own class loader for the applet packages, so the card-wide static
 *       state of one simulator is never shared with another in the same JVM.</li>
 * </ul>
 */
public final class CardImage {
    private CardImage() {
    }

    public static final String RANDOM_SECURE_PROPERTY = "com.licel.jcardsim.randomdata.secure";

    static {
        System.setProperty(RANDOM_SECURE_PROPERTY, "1");
    }

    /** Test issuer master key 40..4F (GlobalPlatform-style test key). */
    public static final byte[] TEST_ISSUER_MASTER_KEY = range(0x40);
    /** Test municipal master key 50..5F. */
    public static final byte[] TEST_MUNICIPAL_MASTER_KEY = range(0x50);

    public static final String CARD_MANAGER_CLASS = "jp.mynacard.card.CardManagerApplet";
    public static final String JPKI_CLASS = "jp.mynacard.card.JpkiApplet";
    public static final String TEXT_CLASS = "jp.mynacard.card.TextApplet";
    public static final String SURFACE_CLASS = "jp.mynacard.card.SurfaceApplet";
    public static final String JUKI_CLASS = "jp.mynacard.card.JukiApplet";
    public static final String COMMON_CLASS = "jp.mynacard.card.CommonApplet";
    public static final String LIBRARY_CLASS = "jp.mynacard.municipal.LibraryApplet";

    private static byte[] range(int start) {
        byte[] b = new byte[16];
        for (int i = 0; i < 16; i++) {
            b[i] = (byte) (start + i);
        }
        return b;
    }

    /**
     * Installs the card manager (params serial || card key || card-authentication key), the
     * five areas (JPKI, text, surface, 住基, 共通カードAP) and the municipal library applet (params serial || municipal key), then
     * selects the card manager.
     */
    public static void install(CardSimulator sim, String serial15, byte[] cardKey16,
                               byte[] cardAuthKey16, byte[] municipalKey16) {
        System.setProperty(RANDOM_SECURE_PROPERTY, "1");
        byte[] serial = checkSerial(serial15);
        if (cardKey16 == null || cardKey16.length != 16 || municipalKey16 == null
                || municipalKey16.length != 16 || cardAuthKey16 == null
                || cardAuthKey16.length != 16) {
            throw new IllegalArgumentException("keys must be 16 bytes");
        }
        ClassLoader loader = isolatedLoader();
        install(sim, loader, CARD_MANAGER_CLASS, Contract.AID_CARD_MANAGER,
                concat(concat(serial, cardKey16), cardAuthKey16));
        install(sim, loader, JPKI_CLASS, Contract.AID_JPKI, new byte[0]);
        install(sim, loader, TEXT_CLASS, Contract.AID_TEXT, new byte[0]);
        install(sim, loader, SURFACE_CLASS, Contract.AID_SURFACE, new byte[0]);
        install(sim, loader, JUKI_CLASS, Contract.AID_JUKI, new byte[0]);
        install(sim, loader, COMMON_CLASS, Contract.AID_COMMON, new byte[0]);
        install(sim, loader, LIBRARY_CLASS, Contract.AID_MUNICIPAL_LIBRARY,
                concat(serial, municipalKey16));
        afterReset(sim);
    }

    /** A new simulator with the card image and keys derived from the test master keys. */
    public static CardSimulator create(String serial15) {
        CardSimulator sim = new CardSimulator();
        install(sim, serial15, deriveKey(TEST_ISSUER_MASTER_KEY, serial15),
                deriveCardAuthKey(TEST_ISSUER_MASTER_KEY, serial15),
                deriveKey(TEST_MUNICIPAL_MASTER_KEY, serial15));
        return sim;
    }

    /** Power-on state: selects the card manager (call after every {@code sim.reset()}). */
    public static void afterReset(CardSimulator sim) {
        if (!sim.selectApplet(aid(Contract.AID_CARD_MANAGER))) {
            throw new IllegalStateException("card manager not selectable");
        }
    }

    /** A warm reset: transient state cleared, card manager selected. */
    public static void reset(CardSimulator sim) {
        sim.reset();
        afterReset(sim);
    }

    /**
     * Sends a raw command APDU and returns the response (data || SW). Commands jCardSim
     * cannot parse (shorter than 4 bytes, inconsistent Lc/Le) answer 6700 instead of throwing.
     * jCardSim's short APDU buffer holds 260 bytes, so a short case-4 command with Lc = 255
     * (261 bytes) would overflow it (6F00): its Le byte is dropped (no command of the card
     * answers data to a 255-byte command).
     */
    public static byte[] transmit(CardSimulator sim, byte[] command) {
        if (command != null && command.length == 261 && command[4] == (byte) 0xFF) {
            command = java.util.Arrays.copyOf(command, 260);
        }
        try {
            return sim.transmitCommand(command);
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            return new byte[] {0x67, 0x00};
        }
    }

    /** card key = AES-128-ECB(master, serial(15 ASCII digits) || 0x80). */
    public static byte[] deriveKey(byte[] master16, String serial15) {
        return deriveKey(master16, serial15, Contract.ISSUER_KEY_DOMAIN);
    }

    /** card-authentication key = AES-128-ECB(master, serial(15 ASCII digits) || 0x81). */
    public static byte[] deriveCardAuthKey(byte[] master16, String serial15) {
        return deriveKey(master16, serial15, Contract.CARD_AUTH_KEY_DOMAIN);
    }

    private static byte[] deriveKey(byte[] master16, String serial15, byte domain) {
        byte[] block = new byte[16];
        System.arraycopy(checkSerial(serial15), 0, block, 0, 15);
        block[15] = domain;
        try {
            Cipher c = Cipher.getInstance("AES/ECB/NoPadding");
            c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(master16, "AES"));
            return c.doFinal(block);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    public static AID aid(byte[] aid) {
        return new AID(aid, (short) 0, (byte) aid.length);
    }

    private static byte[] checkSerial(String serial15) {
        if (serial15 == null || !serial15.matches("[0-9]{15}")) {
            throw new IllegalArgumentException("serial must be 15 ASCII digits");
        }
        return serial15.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = new byte[a.length + b.length];
        System.arraycopy(a, 0, r, 0, a.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    /** GlobalPlatform INSTALL data: AID-len AID 00 (no privileges) param-len params. */
    private static void install(CardSimulator sim, ClassLoader loader, String className,
                                byte[] aid, byte[] params) {
        byte[] data = new byte[1 + aid.length + 1 + 1 + params.length];
        int p = 0;
        data[p++] = (byte) aid.length;
        System.arraycopy(aid, 0, data, p, aid.length);
        p += aid.length;
        data[p++] = 0;
        data[p++] = (byte) params.length;
        System.arraycopy(params, 0, data, p, params.length);
        Class<? extends Applet> cls;
        try {
            cls = Class.forName(className, true, loader).asSubclass(Applet.class);
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(e);
        }
        sim.installApplet(aid(aid), cls, data, (short) 0, (byte) data.length);
    }

    /** Child-first loader for the applet packages: one set of static fields per card. */
    private static ClassLoader isolatedLoader() {
        ClassLoader parent = CardImage.class.getClassLoader();
        CodeSource cs = CardImage.class.getProtectionDomain().getCodeSource();
        if (cs == null || cs.getLocation() == null) {
            return parent;
        }
        return new AppletLoader(new URL[] {cs.getLocation()}, parent);
    }

    private static final class AppletLoader extends URLClassLoader {
        static {
            ClassLoader.registerAsParallelCapable();
        }

        AppletLoader(URL[] urls, ClassLoader parent) {
            super(urls, parent);
        }

        private static boolean isolated(String name) {
            return name.startsWith("jp.mynacard.card.") || name.startsWith("jp.mynacard.common.")
                    || name.startsWith("jp.mynacard.municipal.");
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            if (!isolated(name)) {
                return super.loadClass(name, resolve);
            }
            synchronized (getClassLoadingLock(name)) {
                Class<?> c = findLoadedClass(name);
                if (c == null) {
                    try {
                        c = findClass(name);
                    } catch (ClassNotFoundException e) {
                        c = super.loadClass(name, false);
                    }
                }
                if (resolve) {
                    resolveClass(c);
                }
                return c;
            }
        }

        @Override
        public void close() throws IOException {
            super.close();
        }
    }
}
