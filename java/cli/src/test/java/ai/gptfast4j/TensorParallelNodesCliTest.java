package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.cli.GptFastCli;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * `--nnodes 2` on loopback: node 0 runs in this JVM, node 1 in a second JVM started with the same
 * command and {@code --node-rank 1}; node 0 prints the tokens of in-process {@code --tp 2}, which are
 * the stories260K reference's, and node 1 exits 0 when node 0 is done.
 */
class TensorParallelNodesCliTest {
    private static int[] generated(CliTest.Run r) throws Exception {
        assertEquals(0, r.exitCode(), r.err());
        return new ObjectMapper().treeToValue(new ObjectMapper().readTree(r.out()).get("generated_tokens"), int[].class);
    }

    private static List<String> generate(String prompt) {
        return new ArrayList<>(List.of("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", prompt,
                "--temperature", "0", "--max-new-tokens", "24", "--json", "--tp", "2"));
    }

    @Test
    void twoProcessesGiveTheTokensOfOneProcess() throws Exception {
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        int[] inProcess = generated(CliTest.run(generate(c.prompt()).toArray(String[]::new)));
        assertArrayEquals(java.util.Arrays.copyOf(c.generatedTokens(), 24), inProcess);

        int port;
        try (ServerSocket free = new ServerSocket(0)) {  // a port nobody else uses right now
            port = free.getLocalPort();
        }
        List<String> nodes = generate(c.prompt());
        nodes.addAll(List.of("--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", "" + port,
                "--join-timeout", "120"));
        List<String> follower = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), GptFastCli.class.getName()));
        follower.addAll(nodes);
        follower.addAll(List.of("--node-rank", "1"));
        File log = Files.createTempFile("gptfast-node1", ".log").toFile();
        Process node1 = new ProcessBuilder(follower).redirectErrorStream(true).redirectOutput(log).start();
        try {
            nodes.addAll(List.of("--node-rank", "0"));
            CliTest.Run r = CliTest.run(nodes.toArray(String[]::new));
            assertArrayEquals(inProcess, generated(r));
            assertTrue(node1.waitFor(120, TimeUnit.SECONDS), "node 1 did not exit");
            String node1Log = Files.readString(log.toPath());
            assertEquals(0, node1.exitValue(), node1Log);
            assertTrue(node1Log.contains("node 0 is done"), node1Log);
        } finally {
            node1.destroyForcibly();
            log.delete();
        }
    }

    @Test
    void aNodeThatNeverComesIsAOneLineErrorWithinTheTimeout() throws Exception {
        List<String> args = generate("Hello");
        args.addAll(List.of("--nnodes", "2", "--node-rank", "0", "--master-port", "0", "--join-timeout", "1"));
        long start = System.nanoTime();
        CliTest.Run r = CliTest.run(args.toArray(String[]::new));
        assertEquals(1, r.exitCode(), r.err());
        String last = r.err().strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.contains("node(s) 1 of 2 did not join within 1 s"), r.err());
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(60));
    }

    @Test
    void commandsThatDoNotRunOnNodesRefuseNnodes() {
        CliTest.Run r = CliTest.run("serve-bench", "--nnodes", "2");
        assertTrue(r.exitCode() != 0 && r.err().contains("--nnodes is not supported by serve-bench"), r.err());
    }
}
