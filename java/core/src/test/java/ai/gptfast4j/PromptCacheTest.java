package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A prompt that starts with what a free slot's KV cache holds (a chat's next turn) prefills only
 * the rest, in the slot that holds the most of it, and generates what a fresh engine generates
 * from the whole prompt (stories260K, greedy).
 */
public class PromptCacheTest {
    static final int NEW = 40;

    static GenerationParams greedy(boolean cache) {
        return GenerationParams.builder().greedy().maxNewTokens(NEW).stopTokens(-1).cachePrompt(cache).build();
    }

    /** The first turn, 20 of its tokens, then the next "message". */
    static int[] nextTurn(Engine engine, int[] prompt, int[] generated) {
        int[] message = engine.promptTokens(" The next day, a big dog came.");
        List<Integer> ids = new ArrayList<>();
        for (int id : prompt) ids.add(id);
        for (int i = 0; i < 20; i++) ids.add(generated[i]);
        for (int i = 1; i < message.length; i++) ids.add(message[i]);  // without its BOS
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Tokens the cache holds after a run (all but the last generated) shared with the new prompt,
     * at most n - 2 (also what the server tests expect).
     */
    public static int expectedKept(int[] prompt, int[] generated, int[] next) {
        int[] held = new int[prompt.length + generated.length - 1];
        System.arraycopy(prompt, 0, held, 0, prompt.length);
        System.arraycopy(generated, 0, held, prompt.length, generated.length - 1);
        int common = 0;
        while (common < held.length && common < next.length && held[common] == next[common]) common++;
        return Math.min(common, next.length - 2);
    }

    @Test
    void theNextTurnRunsOnlyWhatTheCacheLacksAndGeneratesWhatAFreshEngineDoes() {
        int[] prompt = SharedData.greedyCases().get(0).promptTokens();
        try (Engine engine = Engine.load(EngineOptions.of(SharedData.storiesPth()));
             Engine fresh = Engine.load(EngineOptions.of(SharedData.storiesPth()))) {
            GenerationResult first = engine.generate(prompt, greedy(true), null, new CancellationToken());
            assertEquals(0, first.stats().cachedPromptTokens(), "nothing ran before");
            int[] next = nextTurn(engine, prompt, first.generatedTokens());
            int kept = expectedKept(prompt, first.generatedTokens(), next);
            assertEquals(prompt.length + 20, kept, "the turn shares the prompt and 20 generated tokens");

            GenerationResult cached = engine.generate(next, greedy(true), null, new CancellationToken());
            assertEquals(kept, cached.stats().cachedPromptTokens());
            GenerationResult whole = fresh.generate(next, greedy(false), null, new CancellationToken());
            assertEquals(0, whole.stats().cachedPromptTokens());
            assertArrayEquals(whole.generatedTokens(), cached.generatedTokens());

            // Without the cache the same engine prefills everything again, and gets the same tokens.
            GenerationResult again = engine.generate(next, greedy(false), null, new CancellationToken());
            assertEquals(0, again.stats().cachedPromptTokens());
            assertArrayEquals(whole.generatedTokens(), again.generatedTokens());
        }
    }

    @Test
    void aSequenceStartsInTheSlotHoldingMostOfItsPrompt() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        int[] a = cases.get(0).promptTokens();
        int[] b = cases.stream().map(SharedData.GreedyCase::promptTokens).filter(p -> p.length > 1 && p[1] != a[1]).findFirst().orElseThrow();
        try (Engine batch = Engine.load(EngineOptions.of(SharedData.storiesPth()).withBatchSize(3))) {
            Engine.Sequence sa = batch.start(a, greedy(true), null, new CancellationToken());
            Engine.Sequence sb = batch.start(b, greedy(true), null, new CancellationToken());
            while (batch.active() > 0) batch.step();
            int[] next = nextTurn(batch, b, sb.result().generatedTokens());
            int kept = expectedKept(b, sb.result().generatedTokens(), next);
            int keptFromA = expectedKept(a, sa.result().generatedTokens(), next);
            assertEquals(b.length + 20, kept);
            assertEquals(1, keptFromA, "a shares only BOS with b");
            GenerationResult r = batch.generate(next, greedy(true), null, new CancellationToken());
            assertEquals(kept, r.stats().cachedPromptTokens(), "started in b's slot");
            try (Engine fresh = Engine.load(EngineOptions.of(SharedData.storiesPth()))) {
                assertArrayEquals(fresh.generate(next, greedy(false), null, new CancellationToken()).generatedTokens(),
                        r.generatedTokens(), Arrays.toString(next));
            }
        }
    }
}
