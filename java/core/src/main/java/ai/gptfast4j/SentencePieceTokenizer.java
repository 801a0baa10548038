package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** SentencePiece (tokenizer.model), run natively; text crosses JNI as UTF-8 bytes. */
public final class SentencePieceTokenizer implements Tokenizer {
    private final GptFastNative.SentencePieceTokenizer processor;
    private final int vocabSize, bosId, eosId;
    private final String[] pieces;
    private final java.util.Map<String, Integer> controls;
    /**
     * Decodes of one or two ids, memoized: that is the streaming detokenizer's window in ordinary
     * text (see StreamingDetokenizer), two decodes per token, and a JNI decode costs microseconds,
     * several percent of a small model's decode step. Exact: the same ids always decode to the
     * same text. Keys: -1 - id for one id, (a << 32 | b) for two. Cleared when full.
     */
    private final java.util.HashMap<Long, String> shortDecodes = new java.util.HashMap<>();
    static final int SHORT_DECODES_LIMIT = 1 << 16;

    public SentencePieceTokenizer(Path modelFile) {
        if (!Files.isRegularFile(modelFile)) throw new GptFastException("tokenizer not found: " + modelFile);
        try {
            NativeLibrary.load();  // one-line error if the natives are missing or mismatched
            processor = new GptFastNative.SentencePieceTokenizer(modelFile.toString());
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        vocabSize = processor.vocab_size();
        bosId = processor.bos_id();
        eosId = processor.eos_id();
        java.util.List<SentencePieceModelFile.Piece> list = SentencePieceModelFile.pieces(modelFile);
        pieces = new String[list.size()];
        java.util.Map<String, Integer> c = new java.util.LinkedHashMap<>();
        for (int i = 0; i < pieces.length; i++) {
            pieces[i] = list.get(i).text();
            if (list.get(i).type() == SentencePieceModelFile.CONTROL) c.put(pieces[i], i);
        }
        controls = java.util.Collections.unmodifiableMap(c);
    }

    /** Control pieces (<s>, </s>, Mistral's [INST] ...): SentencePiece never produces them from text. */
    @Override
    public java.util.Map<String, Integer> specialTokens() {
        return controls;
    }

    @Override
    public String piece(int id) {
        Tokenizer.checkId(id, pieces.length);
        return pieces[id];
    }

    @Override
    public synchronized int[] encode(String text) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[utf8.length + 16];  // byte fallback gives at most one id per byte
        int n = call(() -> processor.encode(utf8, utf8.length, ids, ids.length));
        if (n > ids.length) throw new GptFastException("SentencePiece returned more ids than bytes");
        return java.util.Arrays.copyOf(ids, n);
    }

    @Override
    public String decode(int[] ids) {
        return decode(ids, 0, ids.length);
    }

    @Override
    public synchronized String decode(int[] ids, int from, int to) {
        java.util.Objects.checkFromToIndex(from, to, ids.length);
        if (processor.isNull()) throw new GptFastException("tokenizer is closed");
        int n = to - from;
        if (n < 1 || n > 2 || !inVocab(ids[from]) || !inVocab(ids[to - 1])) return decodeNative(ids, from, to);
        long key = n == 1 ? -1L - ids[from] : (long) ids[from] << 32 | ids[from + 1];
        String text = shortDecodes.get(key);
        if (text == null) {
            if (shortDecodes.size() >= SHORT_DECODES_LIMIT) shortDecodes.clear();
            text = decodeNative(ids, from, to);
            shortDecodes.put(key, text);
        }
        return text;
    }

    private boolean inVocab(int id) {
        return id >= 0 && id < vocabSize;
    }

    /** SentencePiece's own decode, through JNI (out-of-vocabulary ids: its one-line error). */
    synchronized String decodeNative(int[] ids, int from, int to) {
        int[] range = from == 0 ? ids : java.util.Arrays.copyOfRange(ids, from, to);  // native reads ids[0..n)
        int n = to - from;
        byte[] utf8 = new byte[Math.max(64, n * 16)];
        int len = call(() -> processor.decode(range, n, utf8, utf8.length));
        if (len > utf8.length) {
            byte[] bigger = new byte[len];
            call(() -> processor.decode(range, n, bigger, bigger.length));
            return new String(bigger, StandardCharsets.UTF_8);
        }
        return new String(utf8, 0, len, StandardCharsets.UTF_8);
    }

    private int call(java.util.function.IntSupplier nativeCall) {
        if (processor.isNull()) throw new GptFastException("tokenizer is closed");
        try {
            return nativeCall.getAsInt();
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    @Override public int vocabSize() { return vocabSize; }
    @Override public int bosId() { return bosId; }
    @Override public int eosId() { return eosId; }

    @Override
    public synchronized void close() {
        processor.close();
    }
}
