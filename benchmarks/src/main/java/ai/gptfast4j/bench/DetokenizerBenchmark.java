package ai.gptfast4j.bench;

import ai.gptfast4j.SentencePieceTokenizer;
import ai.gptfast4j.StreamingDetokenizer;
import ai.gptfast4j.Tokenizer;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH: cost per token of streaming text (append + update + takeFinalText) when {@code position}
 * tokens were already streamed after a 16-token prompt, with the Llama 2 tokenizer and two stop
 * sequences: each invocation gets a detokenizer freshly pre-filled token by token (not
 * measured) and streams the next {@value #TOKENS} tokens (the same text at every position), so
 * the cache-cold first token after the pre-fill does not dominate. {@code wholeDecode} is what
 * the previous detokenizer did per token: decode prompt + completion. Run: see README
 * ("Benchmarks").
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class DetokenizerBenchmark {
    @Param("../shared/tokenizers/llama2-tokenizer.model")
    public String tokenizerModel;

    @Param({"1", "100", "2000"})
    public int position;

    private static final String TEXT = "Once upon a time, there was a little girl named Lily. She loved to play "
            + "outside in the park with her friend Tom, who liked café au lait, crème brûlée and 中文 books 📚. "
            + "One day they found a big red ball under a tree and played until the sun went down.\n";

    static final int TOKENS = 64;

    private Tokenizer tokenizer;
    private int[] prompt, tokens, wholeSequence;

    @Setup(Level.Trial)
    public void load() {
        tokenizer = new SentencePieceTokenizer(Path.of(tokenizerModel));
        int[] unit = tokenizer.encode(TEXT);
        int[] all = new int[16 + position + TOKENS];
        // the text repeats so that the measured token is the same at every position: the
        // text's first ("▁Once", after the "\n" that ends the text)
        for (int i = 0; i < all.length; i++) all[i] = unit[Math.floorMod(i - 16 - position, unit.length)];
        prompt = java.util.Arrays.copyOf(all, 16);
        tokens = java.util.Arrays.copyOfRange(all, 16, all.length);
        wholeSequence = java.util.Arrays.copyOf(all, 16 + position + 1);  // prompt + completion up to the token
    }

    /** A detokenizer that has streamed {@code position} tokens, made afresh for every invocation. */
    @State(Scope.Thread)
    public static class Prefilled {
        StreamingDetokenizer detokenizer;

        @Setup(Level.Invocation)
        public void prefill(DetokenizerBenchmark b) {
            detokenizer = new StreamingDetokenizer(b.tokenizer, b.prompt, List.of("The End", "\n\n\n"));
            for (int i = 0; i < b.position; i++) {
                detokenizer.append(b.tokens[i]);
                detokenizer.update();
                detokenizer.takeFinalText();
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(TOKENS)
    public int nextToken(Prefilled p) {
        int chars = 0;
        for (int i = position; i < position + TOKENS; i++) {
            p.detokenizer.append(tokens[i]);
            p.detokenizer.update();
            chars += p.detokenizer.takeFinalText().length();
        }
        return chars;
    }

    @Benchmark
    public String wholeDecode() {
        return tokenizer.decode(wholeSequence);
    }

    @TearDown(Level.Trial)
    public void close() {
        tokenizer.close();
    }
}
