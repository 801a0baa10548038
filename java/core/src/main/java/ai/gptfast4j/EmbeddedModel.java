package ai.gptfast4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The model every gptfast4j jar carries: stories260K (llama2.c's tinyllamas, MIT; see
 * models/stories260K/README.md), used when no checkpoint is given. Its files are jar resources;
 * {@link #checkpoint()} extracts them once into the cache directory and returns the model.pth
 * path (tokenizer.model and config.json beside it, where loading finds them).
 */
public final class EmbeddedModel {
    public static final String NAME = "stories260K";
    private static final String RESOURCES = "/ai/gptfast4j/models/stories260K/";
    private static final List<String> FILES = List.of("model.pth", "tokenizer.model", "config.json");

    private EmbeddedModel() {}

    /** model.pth of the embedded model, extracted on first use (safe against concurrent callers). */
    public static synchronized Path checkpoint() {
        try {
            byte[][] contents = new byte[FILES.size()][];
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (int i = 0; i < FILES.size(); i++) {
                try (InputStream in = EmbeddedModel.class.getResourceAsStream(RESOURCES + FILES.get(i))) {
                    if (in == null) throw new GptFastException("this gptfast4j jar has no embedded model ("
                            + RESOURCES + FILES.get(i) + " missing)");
                    contents[i] = in.readAllBytes();
                }
                sha.update(contents[i]);
            }
            // A directory per content hash: a new jar with other weights never reads stale files.
            String hash = HexFormat.of().formatHex(sha.digest()).substring(0, 16);
            Path dir = cacheDir().resolve("embedded").resolve(NAME + "-" + hash);
            if (!Files.isRegularFile(dir.resolve(FILES.get(0)))) {
                Files.createDirectories(dir.getParent());
                Path tmp = Files.createTempDirectory(dir.getParent(), NAME + ".tmp");
                for (int i = 0; i < FILES.size(); i++) Files.write(tmp.resolve(FILES.get(i)), contents[i]);
                try {
                    Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
                } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                    deleteTree(tmp);  // another process extracted it first
                } catch (AtomicMoveNotSupportedException e) {
                    deleteTree(tmp);
                    throw new GptFastException("cannot extract the embedded model into " + dir + ": " + e.getMessage());
                }
            }
            return dir.resolve(FILES.get(0));
        } catch (IOException e) {
            throw new GptFastException("cannot extract the embedded model: " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** $GPTFAST_CACHE, else ~/.cache/gptfast4j (the directory build.sh also uses). */
    static Path cacheDir() {
        String env = System.getenv("GPTFAST_CACHE");
        return env != null && !env.isEmpty() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache", "gptfast4j");
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) Files.deleteIfExists(f);
        }
        Files.deleteIfExists(dir);
    }
}
