package ai.gptfast4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** Draft models for speculative tests, written into a temp dir beside copies of config/tokenizer. */
final class Drafts {
    private Drafts() {}

    /** stories260K itself, as a second engine. */
    static Path self() {
        return SharedData.storiesPth();
    }

    /** stories260K truncated to its first `layers` layers (llama2.c legacy .bin, header-configured). */
    static Path truncated(Path dir, int layers) throws IOException {
        Path d = Files.createDirectories(dir.resolve("truncated" + layers));
        Files.copy(SharedData.storiesTokenizer(), d.resolve("tokenizer.model"));
        Path bin = d.resolve("draft.bin");
        Llama2cWeights.read(SharedData.storiesBin()).write(bin, layers, false);
        return bin;
    }

    /** Same shapes and vocabulary, weights drawn at random (seeded): a differently initialised model. */
    static Path randomlyInitialised(Path dir, long seed) throws IOException {
        Path d = Files.createDirectories(dir.resolve("random" + seed));
        Files.copy(SharedData.storiesTokenizer(), d.resolve("tokenizer.model"));
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(SharedData.storiesBin())).order(ByteOrder.LITTLE_ENDIAN);
        Random rnd = new Random(seed);
        for (int at = 28; at + 4 <= bytes.capacity(); at += 4) bytes.putFloat(at, (float) (rnd.nextGaussian() * 0.1));
        Path bin = d.resolve("draft.bin");
        Files.write(bin, bytes.array());
        return bin;
    }
}
