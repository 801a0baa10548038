package ai.gptfast4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.GptFastException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** model-config.yaml reading: the seed's keys, path resolution, notes for what is not honoured, bad values. */
class ServeConfigTest {
    @TempDir Path dir;

    private ServeConfig load(String yaml) throws IOException {
        Path f = dir.resolve("model-config.yaml");
        Files.writeString(f, yaml);
        return ServeConfig.fromYaml(f).build();
    }

    @Test
    void exampleConfigPointsAtTheEmbeddedModelBesideIt() throws IOException {
        ServeConfig c = ServeConfig.fromYaml(ServeTestSupport.exampleYaml()).build();
        assertEquals(ServeTestSupport.exampleYaml().toAbsolutePath().normalize().resolveSibling("model.pth"), c.checkpoint());
        // the embedded copy is the shared stories260K model, byte for byte
        assertEquals(-1L, java.nio.file.Files.mismatch(c.checkpoint(), ServeTestSupport.storiesPth()));
        assertEquals("stories260K", c.modelName());
        assertEquals(50, c.defaultMaxNewTokens());
        assertFalse(c.stream());
        assertTrue(c.notes().isEmpty(), c.notes().toString());
    }

    @Test
    void seedConfigIsAcceptedAndWhatCannotBeHonouredIsReported() throws IOException {
        ServeConfig c = load("""
                minWorkers: 1
                maxWorkers: 2
                maxBatchDelay: 200
                responseTimeout: 300
                parallelType: "tp"
                deviceType: "gpu"
                torchrun:
                    nproc-per-node: 4
                handler:
                    converted_ckpt_dir: "checkpoints/meta-llama/Llama-2-7b-hf/model.pth"
                    max_new_tokens: 50
                    compile: true
                    stream: false
                    speculative: false
                    draft_checkpoint_path: "checkpoints/draft/model.pth"
                    speculate_k: 8
                    some_future_key: 1
                """);
        assertEquals(dir.resolve("checkpoints/meta-llama/Llama-2-7b-hf/model.pth"), c.checkpoint());
        assertEquals("Llama-2-7b-hf", c.modelName());
        assertEquals(2, c.maxWorkers());
        assertEquals(300, c.requestTimeoutSeconds());
        assertEquals("cuda:0", c.deviceFor(0));
        assertEquals(4, c.tp(), "parallelType tp with torchrun.nproc-per-node 4: four tensor-parallel ranks");
        String notes = String.join("\n", c.notes());
        for (String k : new String[] {"compile", "maxBatchDelay", "minWorkers 1", "draft_model_path", "some_future_key"}) {
            assertTrue(notes.contains(k), "no note for " + k + " in:\n" + notes);
        }
        assertFalse(notes.contains("parallelType"), notes);
    }

    @Test
    void tensorParallelKeys() throws IOException {
        String handler = "handler:\n  model_path: m/model.pth\n";
        assertEquals(1, load(handler).tp());
        assertEquals(2, load("parallelType: tp\ntorchrun:\n  nproc-per-node: 2\n  nnodes: 1\n" + handler).tp());
        assertTrue(String.join("\n", load("parallelType: tp\ntorchrun:\n  nproc-per-node: 2\n  max-restarts: 3\n" + handler)
                .notes()).contains("torchrun.max-restarts ignored"));
        ServeConfig pp = load("parallelType: pp\ntorchrun:\n  nproc-per-node: 2\n" + handler);
        assertEquals(1, pp.tp());
        assertTrue(String.join("\n", pp.notes()).contains("parallelType \"pp\" accepted but not honoured"), pp.notes().toString());
        GptFastException missing = assertThrows(GptFastException.class, () -> load("parallelType: tp\n" + handler));
        assertTrue(missing.getMessage().contains("nproc-per-node"), missing.getMessage());
        GptFastException range = assertThrows(GptFastException.class,
                () -> load("parallelType: tp\ntorchrun:\n  nproc-per-node: 0\n" + handler));
        assertTrue(range.getMessage().contains("tp"), range.getMessage());
    }

    /** torchrun's multi-node keys, as the CLI's --nnodes ... (which override them, see ServeCommand). */
    @Test
    void multiNodeTorchrunKeys() throws IOException {
        String handler = "handler:\n  model_path: m/model.pth\n";
        String twoNodes = "parallelType: tp\ntorchrun:\n  nproc-per-node: 2\n  nnodes: 2\n  node-rank: 1\n"
                + "  master-addr: 10.0.0.1\n  master-port: 29600\n";
        ServeConfig c = load(twoNodes + handler);
        assertEquals(4, c.tp(), "as in torchrun: nproc-per-node ranks on each of nnodes nodes");
        assertEquals(new ServeConfig.Nodes(2, 1, "10.0.0.1", 29600), c.nodes());
        assertTrue(c.notes().isEmpty(), c.notes().toString());
        assertEquals(ServeConfig.Nodes.single(), load(handler).nodes());
        // the command line's values win: ServeCommand puts --tp, --node-rank, ... into the builder
        Files.writeString(dir.resolve("two.yaml"), twoNodes + handler);
        ServeConfig.Builder b = ServeConfig.fromYaml(dir.resolve("two.yaml"));
        b.tp = 2;
        b.nodeRank = 0;
        b.masterPort = 0;
        ServeConfig o = b.build();
        assertEquals(2, o.tp());
        assertEquals(new ServeConfig.Nodes(2, 0, "10.0.0.1", 0), o.nodes());
        // bad values fail naming the key
        String[][] bad = {
            {"parallelType: tp\ntorchrun:\n  nproc-per-node: 1\n  nnodes: 2\n  node-rank: 2\n", "node-rank"},
            {"parallelType: tp\ntorchrun:\n  nproc-per-node: 1\n  nnodes: 0\n", "nnodes must be >= 1"},
            {"parallelType: tp\ntorchrun:\n  nproc-per-node: 1\n  master-port: 70000\n", "master-port"},
            {"torchrun:\n  master-addr: \"\"\n", "torchrun.master-addr must be a non-empty string"},
            {"torchrun:\n  nnodes: two\n", "torchrun.nnodes must be an integer"},
            {"torchrun:\n  nnodes: 2\n", "nnodes 2 needs tensor-parallel ranks"},
        };
        for (String[] t : bad) {
            GptFastException e = assertThrows(GptFastException.class, () -> load(t[0] + handler), t[0]);
            assertTrue(e.getMessage().contains(t[1]), e.getMessage());
        }
    }

    @Test
    void speculativeUsesEitherDraftKey() throws IOException {
        for (String key : new String[] {"draft_model_path", "draft_checkpoint_path"}) {
            ServeConfig c = load("handler:\n  model_path: m/model.pth\n  speculative: true\n  " + key
                    + ": d/draft.pth\n  speculate_k: 4\n");
            assertTrue(c.speculative());
            assertEquals(dir.resolve("d/draft.pth"), c.draftModel());
            assertEquals(4, c.speculateK());
        }
    }

    @Test
    void impossibleOrMistypedSettingsFailNamingTheKey() {
        assertMessage("handler:\n  model_path: m.pth\n  speculative: true\n", "draft_model_path");
        assertMessage("handler:\n  model_path: m.pth\n  max_new_tokens: lots\n", "handler.max_new_tokens");
        assertMessage("handler:\n  model_path: m.pth\n  stream: 1\n", "handler.stream");
        assertMessage("maxWorkers: 0\nhandler:\n  model_path: m.pth\n", "maxWorkers");
        assertMessage("minWorkers: 3\nmaxWorkers: 2\nhandler:\n  model_path: m.pth\n", "minWorkers");
        assertMessage("deviceType: tpu\nhandler:\n  model_path: m.pth\n", "deviceType must be \"cpu\", \"gpu\" or \"auto\"");
        assertMessage("minWorkers: 1\n", "handler");
        assertMessage("handler:\n  compile: true\n", "model_path");
        assertMessage("handler:\n  model_path: m.pth\n  max_new_tokens: 2000\n  max_new_tokens_cap: 100\n", "cap");
        assertMessage("handler: [unclosed\n", "model-config.yaml");
    }

    /** deviceType auto (gptfast4j's own value): every worker asks its engine for "auto"; deviceIds do not apply. */
    @Test
    void deviceTypeAutoLeavesTheChoiceToEachWorkersEngine() throws IOException {
        ServeConfig c = load("deviceType: auto\ndeviceIds: [1]\nmaxWorkers: 2\nhandler:\n  model_path: m.pth\n");
        assertEquals("auto", c.deviceFor(0));
        assertEquals("auto", c.deviceFor(1));
        assertTrue(c.notes().stream().anyMatch(n -> n.contains("deviceIds [1] ignored")), c.notes().toString());
        assertEquals("cuda:1", load("deviceType: gpu\ndeviceIds: [1]\nhandler:\n  model_path: m.pth\n").deviceFor(0));
        assertEquals("cpu", load("handler:\n  model_path: m.pth\n").deviceFor(0));
    }

    /** handler.cache_prompt sets what requests get when they do not say (on unless set false). */
    @Test
    void cachePromptIsOnUnlessTheConfigTurnsItOff() throws IOException {
        ServeConfig on = load("handler:\n  model_path: m.pth\n");
        ServeConfig off = load("handler:\n  model_path: m.pth\n  cache_prompt: false\n");
        assertTrue(on.cachePrompt());
        assertFalse(off.cachePrompt());
        assertTrue(GptHandler.sampling(on, null, "max_new_tokens", null, null, 1L, b -> { }).cachePrompt());
        assertFalse(GptHandler.sampling(off, null, "max_new_tokens", null, null, 1L, b -> { }).cachePrompt());
        assertMessage("handler:\n  model_path: m.pth\n  cache_prompt: 1\n", "handler.cache_prompt");
    }

    private void assertMessage(String yaml, String part) {
        GptFastException e = assertThrows(GptFastException.class, () -> load(yaml), yaml);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void accessSettingsAreCheckedAndKeysNeverPrinted() {
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = Path.of("m.pth");
        b.apiKeys = java.util.List.of("sk-very-secret");
        b.corsOrigins = java.util.List.of("https://app.example:8443", "*");
        ServeConfig c = b.build();
        assertEquals(java.util.List.of("sk-very-secret"), c.access().apiKeys());
        assertFalse(c.toString().contains("sk-very-secret"), c.toString());
        assertTrue(c.toString().contains("1 key(s)"), c.toString());
        assertEquals(ai.gptfast4j.Defaults.SHUTDOWN_TIMEOUT_SECONDS, c.shutdownTimeoutSeconds());

        b.apiKeys = java.util.List.of("two words");
        GptFastException e = assertThrows(GptFastException.class, b::build);
        assertFalse(e.getMessage().contains("two words"), e.getMessage());
        b.apiKeys = java.util.List.of();
        b.corsOrigins = java.util.List.of("app.example");
        assertTrue(assertThrows(GptFastException.class, b::build).getMessage().contains("CORS origin"));
        b.corsOrigins = java.util.List.of();
        b.threadsPerWorker = 100_000;
        assertTrue(assertThrows(GptFastException.class, b::build).getMessage().contains("threads must be at most"));
    }
}
