package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Exact fp32 greedy decoding against the llama2.c-style reference in ../shared: same prompt
 * tokens (our tokenizer + BOS), same generated ids, same early stop on BOS, same text — from
 * model.pth and from the llama2.c .bin.
 */
class ReferenceGreedyTest {

    static Stream<Arguments> checkpoints() {
        return Stream.of(Arguments.of(SharedData.storiesPth()), Arguments.of(SharedData.storiesBin()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("checkpoints")
    void everyReferenceCaseMatchesExactly(Path checkpoint) {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        assertFalse(cases.isEmpty());
        try (Engine engine = Engine.load(EngineOptions.of(checkpoint).withTokenizer(SharedData.storiesTokenizer()))) {
            for (SharedData.GreedyCase c : cases) {
                int[] prompt = engine.promptTokens(c.prompt());
                assertArrayEquals(c.promptTokens(), prompt, "prompt tokens of '" + c.prompt() + "'");
                GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(c.maxNewTokens())
                        .stopTokens(1).build();  // the reference stops when the model emits BOS
                List<Integer> streamed = new ArrayList<>();
                StringBuilder text = new StringBuilder(c.prompt());
                GenerationResult r = engine.generate(c.prompt(), params, (id, piece) -> {
                    streamed.add(id);
                    text.append(piece);
                });
                assertArrayEquals(c.generatedTokens(), r.generatedTokens(), "generated tokens of '" + c.prompt() + "'");
                assertArrayEquals(c.generatedTokens(), streamed.stream().mapToInt(Integer::intValue).toArray(),
                        "streamed ids");
                assertEquals(c.stoppedOnBos(), r.stopReason() == GenerationResult.StopReason.STOP_TOKEN,
                        "stop on BOS for '" + c.prompt() + "'");
                assertEquals(c.text(), c.prompt() + r.completion(), "decoded text");
                assertEquals(c.text(), text.toString(), "streamed text pieces");
            }
        }
    }
}
