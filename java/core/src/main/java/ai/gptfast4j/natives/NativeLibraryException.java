package ai.gptfast4j.natives;

import ai.gptfast4j.GptFastException;

/** The native libraries cannot be used (missing, or a libtorch of another version): not bad input. */
public final class NativeLibraryException extends GptFastException {
    public NativeLibraryException(String message) {
        super(message);
    }

    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
