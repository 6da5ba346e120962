package jp.mynacard.bridge;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import jdk.net.ExtendedSocketOptions;

/**
 * One emulated card in one vpcd reader.
 *
 * <p>Usage: {@code java -jar mynacard-bridge.jar CONFIG.properties}. The properties file
 * (written 0600 by the launcher) holds {@code serial} (15 digits), {@code card_key},
 * {@code card_auth_key} and {@code municipal_key} (32 hex digits each), {@code host}, {@code port} and optionally
 * {@code connect_timeout_seconds}, {@code name} and {@code control} (see {@link Slot}: the
 * launcher then replaces the card in this process instead of starting a new JVM per card).
 * Keys never appear on the command line or in the log.
 *
 * <p>vpcd wire protocol (the card is the TCP client): every frame is a 2-byte big-endian
 * length and a payload. One-byte payloads are control messages: 00 power off, 01 power on,
 * 02 reset, 04 get ATR (answered with the ATR). Anything longer is a command APDU,
 * answered with the response APDU.
 */
public final class VpcdBridge {
    static final int CTRL_POWER_OFF = 0x00;
    static final int CTRL_POWER_ON = 0x01;
    static final int CTRL_RESET = 0x02;
    static final int CTRL_GET_ATR = 0x04;

    static final int EXIT_OK = 0;
    static final int EXIT_USAGE = 2;
    static final int EXIT_NO_READER = 3;
    static final int EXIT_IO = 4;

    private final Card card;
    private final Log log;

    VpcdBridge(Card card, Log log) {
        this.card = card;
        this.log = log;
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: java -jar mynacard-bridge.jar CONFIG.properties");
            System.exit(EXIT_USAGE);
        }
        Config config;
        try {
            config = Config.load(Path.of(args[0]));
        } catch (IOException | IllegalArgumentException e) {
            System.err.println("mynacard-bridge: bad configuration " + args[0] + ": " + e.getMessage());
            System.exit(EXIT_USAGE);
            return;
        }
        Log log = new Log(config.name);
        Slot slot = new Slot(log);
        if (!config.control.isEmpty()) {
            try {
                slot.listen(Path.of(config.control));
            } catch (IOException e) {
                log.error("cannot listen on the control socket: " + e.getMessage()
                        + "; cards are replaced by restarting the process");
            }
        }
        System.exit(slot.run(config));
    }

    /** Retries for a bounded time at start-up only (pcscd may still be loading the driver). */
    static Socket connect(Config config, Log log) {
        long deadline = System.nanoTime() + config.connectTimeoutSeconds * 1_000_000_000L;
        while (true) {
            Socket socket = new Socket();
            try {
                socket.setTcpNoDelay(true);
                socket.connect(new InetSocketAddress(config.host, config.port), 1000);
                log.info("connected to the reader");
                return socket;
            } catch (IOException e) {
                try {
                    socket.close();
                } catch (IOException ignored) {
                    // nothing to do
                }
                if (System.nanoTime() > deadline) {
                    return null;
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
    }

    /** Serves frames until the reader closes the connection (returns) or the socket fails. */
    void serve(Socket socket) throws IOException {
        socket.setTcpNoDelay(true);
        boolean quickAck = socket.supportedOptions().contains(ExtendedSocketOptions.TCP_QUICKACK);
        if (!quickAck) {
            log.info("TCP_QUICKACK not supported here; APDUs will be slow");
        }
        InputStream raw = socket.getInputStream();
        DataInputStream in = new DataInputStream(new BufferedInputStream(raw, 70_000));
        OutputStream out = socket.getOutputStream();
        byte[] header = new byte[2];
        while (true) {
            try {
                in.readFully(header);
            } catch (EOFException e) {
                return;
            }
            ack(socket, quickAck);
            int length = ((header[0] & 0xFF) << 8) | (header[1] & 0xFF);
            byte[] payload = new byte[length];
            try {
                in.readFully(payload);
            } catch (EOFException e) {
                return;
            }
            ack(socket, quickAck);
            byte[] reply = handle(payload);
            if (reply != null) {
                out.write(frame(reply)); // length and payload in ONE write
                out.flush();
            }
        }
    }

    private static void ack(Socket socket, boolean quickAck) throws IOException {
        if (quickAck) {
            socket.setOption(ExtendedSocketOptions.TCP_QUICKACK, true);
        }
    }

    /** The reply to one frame, or null for control messages that take none. */
    byte[] handle(byte[] payload) {
        if (payload.length == 1) {
            int ctrl = payload[0] & 0xFF;
            switch (ctrl) {
                case CTRL_POWER_OFF:
                case CTRL_POWER_ON:
                case CTRL_RESET:
                    card.reset();
                    return null;
                case CTRL_GET_ATR:
                    return Card.ATR.clone();
                default:
                    log.error("unknown vpcd control message " + ctrl);
                    return null;
            }
        }
        return card.transmit(payload);
    }

    static byte[] frame(byte[] payload) {
        byte[] f = new byte[payload.length + 2];
        f[0] = (byte) (payload.length >> 8);
        f[1] = (byte) payload.length;
        System.arraycopy(payload, 0, f, 2, payload.length);
        return f;
    }

    /**
     * The reader slot this process serves: one card at a time. Without a control socket
     * the process serves its one card and exits when the reader goes away (as before).
     *
     * <p>With one (property {@code control}), the launcher replaces the card without a new
     * JVM: {@code remove} pulls the card (the vpcd connection is closed, the reader shows
     * no card; the card object is dropped), {@code insert CONFIG} manufactures a brand-new
     * card from a new configuration file (new serial and factory keys, fresh applets and
     * state: nothing of the previous card survives) and connects it to the reader. Each
     * command is one line; the answer is one line, {@code ok ...} or {@code error ...}.
     * The socket lives in the emulator's private runtime directory (mode 0700).
     */
    static final class Slot {
        private final Log log;
        private final Object lock = new Object();
        private Socket current;
        private boolean removing;
        private boolean empty;
        private Config next;
        private String serving; // serial of the card connected to the reader, or null
        private String failure;

        Slot(Log log) {
            this.log = log;
        }

        void listen(Path path) throws IOException {
            Files.deleteIfExists(path);
            ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(path));
            Thread t = new Thread(() -> accept(server), "control");
            t.setDaemon(true);
            t.start();
        }

        private void accept(ServerSocketChannel server) {
            while (true) {
                try (SocketChannel ch = server.accept()) {
                    BufferedReader in = new BufferedReader(new InputStreamReader(
                            Channels.newInputStream(ch), StandardCharsets.US_ASCII));
                    String line = in.readLine();
                    String reply = line == null ? "error empty command" : command(line.trim());
                    Channels.newOutputStream(ch).write(
                            (reply + "\n").getBytes(StandardCharsets.US_ASCII));
                } catch (IOException e) {
                    log.error("control connection failed: " + e.getMessage());
                }
            }
        }

        String command(String line) {
            try {
                if (line.equals("remove")) {
                    return remove();
                }
                if (line.startsWith("insert ")) {
                    return insert(Config.load(Path.of(line.substring(7).trim())));
                }
                return "error unknown command";
            } catch (IOException | IllegalArgumentException e) {
                return "error bad configuration: " + e.getMessage();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return "error interrupted";
            }
        }

        private String remove() throws InterruptedException {
            synchronized (lock) {
                if (!empty) {
                    removing = true;
                    closeQuietly(current);
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while (!empty && System.nanoTime() < deadline) {
                        lock.wait(100);
                    }
                    if (!empty) {
                        return "error the card did not come out";
                    }
                }
                return "ok removed";
            }
        }

        private String insert(Config config) throws InterruptedException {
            synchronized (lock) {
                if (!empty) {
                    return "error the reader still holds a card: remove it first";
                }
                failure = null;
                next = config;
                lock.notifyAll();
                long deadline = System.nanoTime()
                        + (config.connectTimeoutSeconds + 15) * 1_000_000_000L;
                while (failure == null && !config.serial.equals(serving)
                        && System.nanoTime() < deadline) {
                    lock.wait(100);
                }
                if (failure != null) {
                    return "error " + failure;
                }
                return config.serial.equals(serving) ? "ok inserted " + config.serial
                        : "error the card did not reach the reader";
            }
        }

        /** Serves cards until the reader goes away; the exit code. */
        int run(Config first) {
            Config config = first;
            while (true) {
                Card card = Card.manufacture(config.serial, config.cardKey, config.cardAuthKey,
                        config.municipalKey, log);
                log.info("card " + config.serial + " manufactured; connecting to vpcd at "
                        + config.host + ":" + config.port);
                Socket socket = connect(config, log);
                if (socket == null) {
                    log.error("no vpcd reader at " + config.host + ":" + config.port + " after "
                            + config.connectTimeoutSeconds + " s");
                    synchronized (lock) {
                        failure = "no vpcd reader";
                        lock.notifyAll();
                    }
                    return EXIT_NO_READER;
                }
                synchronized (lock) {
                    current = socket;
                    empty = false;
                    serving = config.serial;
                    if (removing) { // pulled while it was being inserted
                        closeQuietly(socket);
                    }
                    lock.notifyAll();
                }
                int code;
                try (Socket s = socket) {
                    new VpcdBridge(card, log).serve(s);
                    code = EXIT_OK;
                } catch (IOException e) {
                    code = EXIT_IO;
                    synchronized (lock) {
                        if (!removing) {
                            log.error("connection to the reader failed: " + e.getMessage()
                                    + "; exiting");
                        }
                    }
                }
                synchronized (lock) {
                    current = null;
                    serving = null;
                    if (!removing) {
                        if (code == EXIT_OK) {
                            log.info("reader closed the connection; exiting");
                        }
                        return code;
                    }
                    removing = false;
                    empty = true;
                    next = null;
                    lock.notifyAll();
                    log.info("card " + config.serial + " removed");
                    while (next == null) {
                        try {
                            lock.wait();
                        } catch (InterruptedException e) {
                            return EXIT_OK;
                        }
                    }
                    config = next;
                }
            }
        }

        private static void closeQuietly(Socket s) {
            if (s == null) {
                return;
            }
            try {
                s.close();
            } catch (IOException ignored) {
                // already closed
            }
        }
    }

    /** The card's configuration file. */
    static final class Config {
        final String serial;
        final byte[] cardKey;
        final byte[] cardAuthKey;
        final byte[] municipalKey;
        final String host;
        final int port;
        final int connectTimeoutSeconds;
        final String name;
        /** Optional: a UNIX socket on which the launcher swaps in the next blank card. */
        final String control;

        private Config(Properties p) {
            serial = required(p, "serial");
            if (!serial.matches("[0-9]{15}")) {
                throw new IllegalArgumentException("serial must be 15 digits");
            }
            cardKey = key(p, "card_key");
            cardAuthKey = key(p, "card_auth_key");
            municipalKey = key(p, "municipal_key");
            host = p.getProperty("host", "127.0.0.1").trim();
            port = Integer.parseInt(required(p, "port"));
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port out of range");
            }
            connectTimeoutSeconds = Integer.parseInt(p.getProperty("connect_timeout_seconds", "15").trim());
            name = p.getProperty("name", "card@" + port).trim();
            control = p.getProperty("control", "").trim();
        }

        static Config load(Path path) throws IOException {
            Properties p = new Properties();
            try (InputStream in = Files.newInputStream(path)) {
                p.load(in);
            }
            return new Config(p);
        }

        private static String required(Properties p, String key) {
            String v = p.getProperty(key);
            if (v == null || v.trim().isEmpty()) {
                throw new IllegalArgumentException("missing " + key);
            }
            return v.trim();
        }

        private static byte[] key(Properties p, String name) {
            byte[] k;
            try {
                k = Hex.decode(required(p, name));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + " is not hex"); // never echo the value
            }
            if (k.length != 16) {
                throw new IllegalArgumentException(name + " must be 16 bytes");
            }
            return k;
        }
    }
}
