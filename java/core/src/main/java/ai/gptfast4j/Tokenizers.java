package ai.gptfast4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Opens a tokenizer by its content, not its name: a SentencePiece model (protobuf), tiktoken
 * ranks (base64-rank lines: Llama 3.x's tokenizer.model), or a Hugging Face tokenizer.json.
 */
public final class Tokenizers {
    /** File names looked for beside a checkpoint, in this order. */
    public static final List<String> DEFAULT_NAMES = List.of("tokenizer.model", "tokenizer.json");

    private Tokenizers() {}

    public enum Kind { SENTENCEPIECE, TIKTOKEN, HUGGINGFACE_JSON }

    /** A file, or a directory holding tokenizer.model or tokenizer.json. */
    public static Tokenizer open(Path path) {
        Path file = resolve(path);
        return switch (detect(file)) {
            case SENTENCEPIECE -> new SentencePieceTokenizer(file);
            case TIKTOKEN -> TiktokenTokenizer.llama3(file);
            case HUGGINGFACE_JSON -> HuggingFaceJsonTokenizer.open(file);
        };
    }

    /** The tokenizer file a path stands for (a directory: the first of {@link #DEFAULT_NAMES} in it). */
    public static Path resolve(Path path) {
        if (Files.isDirectory(path)) {
            for (String name : DEFAULT_NAMES) {
                Path p = path.resolve(name);
                if (Files.isRegularFile(p)) return p;
            }
            throw new GptFastException("tokenizer not found in " + path + " (looked for " + String.join(", ", DEFAULT_NAMES) + ")");
        }
        if (!Files.isRegularFile(path)) throw new GptFastException("tokenizer not found: " + path);
        return path;
    }

    public static Kind detect(Path file) {
        byte[] head = new byte[256];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, head.length);
        } catch (IOException e) {
            throw new GptFastException("cannot read tokenizer " + file + ": " + e.getMessage(), e);
        }
        head = java.util.Arrays.copyOf(head, n);
        int first = 0;
        while (first < n && Character.isWhitespace(head[first])) first++;
        if (first < n && head[first] == '{') return Kind.HUGGINGFACE_JSON;
        if (TiktokenTokenizer.looksLikeTiktoken(head)) return Kind.TIKTOKEN;
        if (SentencePieceModelFile.looksLikeModelProto(head)) return Kind.SENTENCEPIECE;
        throw new GptFastException("tokenizer " + file + " is neither a SentencePiece model, tiktoken ranks nor a "
                + "Hugging Face tokenizer.json");
    }
}
