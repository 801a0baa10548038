package ai.gptfast4j.bench;

import ai.gptfast4j.CancellationToken;
import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.TokenListener;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH: time of one greedy generation of {@code newTokens} tokens after a short prompt.
 * Decode tok/s = newTokens / score. Run: see README ("Benchmarks").
 * listener "none": the Java engine without a listener (no detokenization); "text": a
 * {@link ai.gptfast4j.TokenListener} that receives every token's text, as a streaming client does.
 * Against {@code gptfast_decode_bench} (the native step alone) this is the end-to-end overhead:
 * benchmarks/end-to-end-overhead.sh.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class DecodeBenchmark {
    @Param("../shared/models/stories260K/model.pth")
    public String checkpoint;

    @Param({"1", "2"})
    public int threads;

    @Param("256")
    public int newTokens;

    @Param({"none", "text"})
    public String listener;

    private long characters;  // what the text listener received, so that it is not optimized away

    private Engine engine;
    private int[] prompt;
    private GenerationParams params;

    @Setup
    public void setUp() {
        engine = Engine.load(EngineOptions.of(Path.of(checkpoint)).withThreads(threads));
        prompt = engine.promptTokens("Once upon a time");
        params = GenerationParams.builder().greedy().maxNewTokens(newTokens).stopTokens(-1).build();
    }

    @Benchmark
    public int generate() {
        TokenListener l = listener.equals("text") ? (id, text) -> characters += text.length() : null;
        return engine.generate(prompt, params, l, new CancellationToken()).generatedTokens().length;
    }

    @TearDown
    public void tearDown() {
        engine.close();
    }
}
