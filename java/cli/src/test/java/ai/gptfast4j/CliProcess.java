package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The CLI in a JVM of its own, with a class path and JVM options of the test's choosing (another
 * libtorch, the GPU natives), its own JavaCPP cache and crash-file path in {@code dir}, so that a
 * crash would leave evidence there.
 */
final class CliProcess {
    record Result(int code, String out, String err) {}

    private CliProcess() {}

    /** This test JVM's class path, the start for the variations. */
    static List<String> testClassPath() {
        return new ArrayList<>(List.of(System.getProperty("java.class.path").split(File.pathSeparator)));
    }

    static Result run(Path dir, List<String> classPath, List<String> jvmOptions, String... args) throws Exception {
        return run(dir, classPath, jvmOptions, Map.of(), args);
    }

    /** The same, with {@code env} added to (or, for an empty value, removed from) the child's environment. */
    static Result run(Path dir, List<String> classPath, List<String> jvmOptions, Map<String, String> env, String... args)
            throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dorg.bytedeco.javacpp.cachedir=" + dir.resolve("javacpp"), "-XX:ErrorFile=" + dir.resolve("hs_err.log")));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", String.join(File.pathSeparator, classPath), "ai.gptfast4j.cli.GptFastCli"));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).directory(dir.toFile())
                .redirectOutput(dir.resolve("out.txt").toFile()).redirectError(dir.resolve("err.txt").toFile());
        env.forEach((k, v) -> {
            if (v.isEmpty()) builder.environment().remove(k);
            else builder.environment().put(k, v);
        });
        Process p = builder.start();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the CLI did not exit");
        return new Result(p.exitValue(), Files.readString(dir.resolve("out.txt"), StandardCharsets.UTF_8),
                Files.readString(dir.resolve("err.txt"), StandardCharsets.UTF_8));
    }
}
