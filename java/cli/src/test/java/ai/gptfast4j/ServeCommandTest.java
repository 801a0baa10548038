package ai.gptfast4j;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `gptfast serve` argument and config errors: one line, exit code 2, nothing started. */
class ServeCommandTest {
    @TempDir Path dir;

    @Test
    void badServeArgumentsExitWithTwo() throws Exception {
        CliTest.assertOneLineError(CliTest.run("serve", "--port", "70000"), 2, "--port");  // no checkpoint: embedded
        Path yaml = dir.resolve("model-config.yaml");
        Files.writeString(yaml, "handler:\n  model_path: m.pth\n  speculative: true\n");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", yaml.toString()), 2, "draft_model_path");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", SharedData.storiesPth().toString(),
                "--workers", "0"), 2, "maxWorkers");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", SharedData.storiesPth().toString(),
                "--queue-size", "many"), 2, "--queue-size");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", dir.resolve("missing.yaml").toString()), 2,
                "missing.yaml");
        Path broken = dir.resolve("broken.yaml");
        Files.writeString(broken, "handler:\n  model_path: [1\n");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", broken.toString()), 2, "broken.yaml");
    }

    /** A checkpoint that does not exist: each error must be found before loading would fail (exit 1). */
    @Test
    void argumentErrorsAreFoundBeforeTheModelLoads() {
        String missing = "/nonexistent/model.pth";
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--port", "70000"), 2, "--port");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--port", "-1"), 2, "--port");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--device", "tpu"), 2, "tpu");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--threads", "999"), 2, "threads");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--batch-size", "0"), 2, "batch size");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--max-seq-len", "-3"), 2, "max_seq_len");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--shutdown-timeout-s", "-1"), 2,
                "shutdown timeout");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--cors-origins", "evil.com"), 2,
                "CORS origin");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--api-key", "has space"), 2, "API key");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", missing, "--api-key-file",
                dir.resolve("none.txt").toString()), 2, "--api-key-file");
    }

    /** --nnodes, --node-rank, --master-addr, --master-port override the YAML's torchrun keys. */
    @Test
    void nodeFlagsOverrideTheYaml() throws Exception {
        Path yaml = dir.resolve("model-config.yaml");
        // node-rank 5 of 2 is wrong; the missing draft is the error that follows the node check
        Files.writeString(yaml, "parallelType: tp\ntorchrun:\n  nproc-per-node: 1\n  nnodes: 2\n  node-rank: 5\n"
                + "handler:\n  model_path: m.pth\n  speculative: true\n");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", yaml.toString()), 2, "node-rank");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", yaml.toString(), "--node-rank", "1"), 2,
                "draft_model_path");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", yaml.toString(), "--node-rank", "1", "--nnodes",
                "3", "--tp", "2"), 2, "nnodes 3 needs tensor-parallel ranks");
    }

    @Test
    void anApiKeyNeverAppearsInAMessage() throws Exception {
        Path keys = Files.writeString(dir.resolve("keys.txt"), "# comment\nsecret-one\n");
        CliTest.Run r = CliTest.run("serve", "--checkpoint", "/nonexistent/model.pth", "--api-key", "secret-two",
                "--api-key-file", keys.toString(), "--port", "70000");
        CliTest.assertOneLineError(r, 2, "--port");
        org.junit.jupiter.api.Assertions.assertFalse(r.err().contains("secret") || r.out().contains("secret"), r.err());
    }
}
