package jp.mynacard.test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jp.mynacard.common.Contract;
import org.junit.jupiter.api.Test;

/** Contract.java mirrors card/contract.py (parsed here; skipped when the file is absent). */
class ContractTest {
    private static final Map<String, String> ENUM_PREFIX = Map.of(
            "Ins", "INS_", "SW", "SW_", "LifeCycle", "LIFE_CYCLE_", "Tag", "TAG_",
            "PinBit", "PIN_BIT_", "Access", "ACCESS_");

    private static long value(String javaName) throws Exception {
        Field f = Contract.class.getField(javaName);
        Object v = f.get(null);
        if (v instanceof Byte) {
            return ((Byte) v) & 0xFF;
        }
        if (v instanceof Short) {
            return ((Short) v) & 0xFFFF;
        }
        if (v instanceof byte[]) {
            return new java.math.BigInteger(1, (byte[]) v).longValue();
        }
        return ((Number) v).longValue();
    }

    private static long parse(String s) {
        return s.startsWith("0x") ? Long.parseLong(s.substring(2), 16) : Long.parseLong(s);
    }

    private static byte[] unhex(String s) {
        return Card.unhex(s);
    }

    @Test
    void javaMirrorsPython() throws Exception {
        Path py = Paths.get("..", "contract.py");
        assumeTrue(Files.exists(py), "card/contract.py not found");
        String src = new String(Files.readAllBytes(py), StandardCharsets.UTF_8);
        int checked = 0;
        Set<String> fids = new HashSet<>();
        Matcher m = Pattern.compile("(?:FileSpec|PinSpec|KeySpec)\\(\\s*([A-Z_0-9]+),").matcher(src);
        while (m.find()) {
            fids.add(m.group(1));
        }
        // byte strings
        m = Pattern.compile("(?m)^(AID_[A-Z_]+|ATR) = bytes\\.fromhex\\(\"([0-9A-Fa-f]+)\"\\)").matcher(src);
        while (m.find()) {
            byte[] java = (byte[]) Contract.class.getField(m.group(1)).get(null);
            assertArrayEquals(unhex(m.group(2)), java, m.group(1));
            checked++;
        }
        // enums
        Matcher cls = Pattern.compile("(?ms)^class (\\w+)\\(IntEnum\\):(.*?)(?=^\\S|\\z)").matcher(src);
        while (cls.find()) {
            String prefix = ENUM_PREFIX.get(cls.group(1));
            assertTrue(prefix != null, "unknown enum " + cls.group(1));
            Matcher e = Pattern.compile("(?m)^    ([A-Z_0-9]+) = (0x[0-9A-Fa-f]+|\\d+)").matcher(cls.group(2));
            while (e.find()) {
                assertEquals(parse(e.group(2)), value(prefix + e.group(1)), prefix + e.group(1));
                checked++;
            }
        }
        // module-level integers
        m = Pattern.compile("(?m)^([A-Z][A-Z_0-9]*) = (0x[0-9A-Fa-f]+|\\d+)\\s*(?:#.*)?$").matcher(src);
        while (m.find()) {
            String name = fids.contains(m.group(1)) ? "FID_" + m.group(1) : m.group(1);
            assertEquals(parse(m.group(2)), value(name), name);
            checked++;
        }
        // file sizes
        m = Pattern.compile("FileSpec\\(\\s*([A-Z_0-9]+),\\s*\"[^\"]*\",\\s*(\\d+),\\s*Access\\.(\\w+)").matcher(src);
        while (m.find()) {
            assertEquals(parse(m.group(2)), value("SIZE_" + m.group(1)), "SIZE_" + m.group(1));
            checked++;
        }
        // PIN specs
        m = Pattern.compile("PinSpec\\(\\s*([A-Z_0-9]+),\\s*\"[^\"]*\",\\s*(\\d+),\\s*(\\d+),\\s*\"([a-z-]+)\",\\s*(\\d+)").matcher(src);
        int pins = 0;
        while (m.find()) {
            String n = m.group(1);
            assertEquals(parse(m.group(2)), value("PIN_MIN_" + n), n);
            assertEquals(parse(m.group(3)), value("PIN_MAX_" + n), n);
            long charset = m.group(4).equals("digits") ? Contract.PIN_CHARSET_DIGITS
                    : Contract.PIN_CHARSET_UPPER_ALNUM;
            assertTrue(m.group(4).equals("digits") || m.group(4).equals("upper-alnum"));
            assertEquals(charset, value("PIN_CHARSET_" + n), n);
            assertEquals(parse(m.group(5)), value("PIN_TRIES_" + n), n);
            pins++;
        }
        assertEquals(11, pins, "PinSpecs parsed");
        assertTrue(checked > 100, "constants checked: " + checked);
    }
}
