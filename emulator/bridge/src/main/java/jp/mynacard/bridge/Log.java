package jp.mynacard.bridge;

import java.time.Instant;

/** Timestamped lines on stderr (the launcher sends them to the card's log file). Never key material. */
final class Log {
    private final String name;

    Log(String name) {
        this.name = name;
    }

    void info(String msg) {
        System.err.println(Instant.now() + " " + name + " " + msg);
    }

    void error(String msg) {
        System.err.println(Instant.now() + " " + name + " ERROR " + msg);
    }
}
