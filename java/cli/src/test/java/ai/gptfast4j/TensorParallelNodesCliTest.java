package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.cli.GptFastCli;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `--nnodes 2` on loopback: node 0 runs in this JVM, node 1 in a second JVM started with the same
 * command and {@code --node-rank 1}; node 0 prints the tokens of in-process {@code --tp 2}, which are
 * the stories260K reference's, and node 1 exits 0 when node 0 is done. {@code serve} does the same
 * from model-config.yaml's torchrun keys, both nodes in JVMs of their own.
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

    private static int freePort() throws Exception {
        try (ServerSocket free = new ServerSocket(0)) {  // a port nobody else uses right now
            return free.getLocalPort();
        }
    }

    /** The CLI in a JVM of its own (another node), stdout and stderr into log. */
    private static Process startCli(List<String> args, File log) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), GptFastCli.class.getName()));
        command.addAll(args);
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log).start();
    }

    @Test
    void twoProcessesGiveTheTokensOfOneProcess() throws Exception {
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        int[] inProcess = generated(CliTest.run(generate(c.prompt()).toArray(String[]::new)));
        assertArrayEquals(java.util.Arrays.copyOf(c.generatedTokens(), 24), inProcess);

        List<String> nodes = generate(c.prompt());
        nodes.addAll(List.of("--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", "" + freePort(),
                "--join-timeout", "120"));
        List<String> follower = new ArrayList<>(nodes);
        follower.addAll(List.of("--node-rank", "1"));
        File log = Files.createTempFile("gptfast-node1", ".log").toFile();
        Process node1 = startCli(follower, log);
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

    /**
     * serve from two copies of a model-config.yaml that differ only in torchrun.node-rank: node 1
     * follows, node 0 answers a greedy /v1/completions with in-process --tp 2's completion (whose
     * tokens are the reference's); on SIGTERM node 0 stops and node 1 exits 0 after it.
     */
    @Test
    void serveRunsOnTwoNodesFromTheYamlsTorchrunKeys(@TempDir Path dir) throws Exception {
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        CliTest.Run local = CliTest.run(generate(c.prompt()).toArray(String[]::new));
        assertArrayEquals(java.util.Arrays.copyOf(c.generatedTokens(), 24), generated(local));
        String completion = new ObjectMapper().readTree(local.out()).get("completion").asText();

        int masterPort = freePort();
        Process[] node = new Process[2];
        File[] log = new File[2];
        try {
            for (int rank : new int[] {1, 0}) {  // the follower first: it waits for node 0
                Path yaml = dir.resolve("node" + rank + ".yaml");
                Files.writeString(yaml, "minWorkers: 1\nmaxWorkers: 1\nparallelType: tp\ntorchrun:\n"
                        + "  nproc-per-node: 1\n  nnodes: 2\n  node-rank: " + rank + "\n  master-addr: 127.0.0.1\n"
                        + "  master-port: " + masterPort + "\nhandler:\n  model_path: " + SharedData.storiesPth()
                        + "\n  threads: 1\n  stream: false\n");
                log[rank] = dir.resolve("node" + rank + ".log").toFile();
                node[rank] = startCli(List.of("serve", "--config", yaml.toString(), "--port", "0", "--join-timeout", "120"),
                        log[rank]);
            }
            // node 0 prints its HTTP port once the model is loaded over both nodes
            Matcher listening = Pattern.compile("listening on http://127\\.0\\.0\\.1:(\\d+) ").matcher("");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
            while (!listening.reset(Files.readString(log[0].toPath())).find()) {
                assertTrue(node[0].isAlive() && node[1].isAlive() && System.nanoTime() < deadline,
                        "node 0 did not start serving:\n" + Files.readString(log[0].toPath()) + "\nnode 1:\n"
                                + Files.readString(log[1].toPath()));
                Thread.sleep(200);
            }
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + listening.group(1) + "/v1/completions"))
                    .timeout(Duration.ofSeconds(120)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"" + c.prompt()
                            + "\",\"max_tokens\":24,\"temperature\":0}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode answer = new ObjectMapper().readTree(r.body());
            assertEquals(completion, answer.get("choices").get(0).get("text").asText(), r.body());
            assertEquals(24, answer.get("usage").get("completion_tokens").asInt(), r.body());

            node[0].destroy();  // SIGTERM: a graceful stop
            assertTrue(node[0].waitFor(120, TimeUnit.SECONDS), "node 0 did not stop");
            assertEquals(0, node[0].exitValue(), Files.readString(log[0].toPath()));
            assertTrue(node[1].waitFor(120, TimeUnit.SECONDS), "node 1 did not exit");
            String node1Log = Files.readString(log[1].toPath());
            assertEquals(0, node[1].exitValue(), node1Log);
            assertTrue(node1Log.contains("node 0 is done"), node1Log);
        } finally {
            for (Process p : node) if (p != null) p.destroyForcibly();
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
