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
        CliTest.assertOneLineError(CliTest.run("serve"), 2, "--config model-config.yaml or --checkpoint");
        Path yaml = dir.resolve("model-config.yaml");
        Files.writeString(yaml, "handler:\n  model_path: m.pth\n  speculative: true\n");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", yaml.toString()), 2, "draft_model_path");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", SharedData.storiesPth().toString(),
                "--workers", "0"), 2, "maxWorkers");
        CliTest.assertOneLineError(CliTest.run("serve", "--checkpoint", SharedData.storiesPth().toString(),
                "--queue-size", "many"), 2, "--queue-size");
        CliTest.assertOneLineError(CliTest.run("serve", "--config", dir.resolve("missing.yaml").toString()), 2,
                "missing.yaml");
    }
}
