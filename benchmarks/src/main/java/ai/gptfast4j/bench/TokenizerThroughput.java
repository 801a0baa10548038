package ai.gptfast4j.bench;

import ai.gptfast4j.Tokenizer;
import ai.gptfast4j.Tokenizers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Encode throughput of the tokenizer files given, on one text file: the median of runs of
 * encode(text) (special-token strings as plain text, like tiktoken's encode_ordinary) after
 * warm-up runs. Prints one line per tokenizer: MB/s, tokens/s, token count and a checksum of the
 * ids (to compare with benchmarks/tokenizer_throughput.py).
 *
 * <pre>java -cp ... ai.gptfast4j.bench.TokenizerThroughput TEXT_FILE RUNS TOKENIZER...</pre>
 */
public final class TokenizerThroughput {
    public static void main(String[] args) throws Exception {
        String text = Files.readString(Path.of(args[0]), StandardCharsets.UTF_8);
        int runs = Integer.parseInt(args[1]);
        double mb = text.getBytes(StandardCharsets.UTF_8).length / 1e6;
        for (int i = 2; i < args.length; i++) {
            try (Tokenizer t = Tokenizers.open(Path.of(args[i]))) {
                int[] ids = null;
                for (int w = 0; w < 3; w++) ids = t.encode(text);  // warm-up (JIT)
                double[] seconds = new double[runs];
                for (int r = 0; r < runs; r++) {
                    long start = System.nanoTime();
                    ids = t.encode(text);
                    seconds[r] = (System.nanoTime() - start) / 1e9;
                }
                Arrays.sort(seconds);
                double median = seconds[runs / 2];
                long checksum = 0;
                for (int id : ids) checksum = checksum * 31 + id;
                System.out.printf("java %-28s %-22s %7.2f MB/s %10.0f tokens/s  %d tokens  checksum %d%n",
                        t.getClass().getSimpleName(), Path.of(args[i]).getFileName(), mb / median,
                        ids.length / median, ids.length, checksum);
            }
        }
    }
}
