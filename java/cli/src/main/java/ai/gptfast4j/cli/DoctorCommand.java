package ai.gptfast4j.cli;

import ai.gptfast4j.EmbeddedModel;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import org.bytedeco.javacpp.Loader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * What a bug report needs, in one paste: versions, CPU features, which libtorch was loaded from
 * where and whether it matches the natives, threads, the default model. Exit 1 when the natives
 * cannot be used (the report still prints everything it could find).
 */
@Command(name = "doctor", mixinStandardHelpOptions = true,
        description = "Print the Java, CPU, libtorch, CUDA and thread facts of this machine (for bug reports).")
final class DoctorCommand implements Callable<Integer> {
    /** CPU flags (as /proc/cpuinfo names them) that decide which kernels run. */
    private static final List<String> CPU_FLAGS = List.of("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
            "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8");

    @Spec CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        String version = DoctorCommand.class.getPackage().getImplementationVersion();
        out.println("gptfast4j: " + (version == null ? "(development build)" : version));
        out.println("java: " + System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ", "
                + System.getProperty("java.home") + ")");
        out.println("os: " + System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch"));
        Runtime rt = Runtime.getRuntime();
        out.println("processors: " + rt.availableProcessors() + ", max heap: " + rt.maxMemory() / (1 << 20) + " MiB");
        cpu(out);
        for (String env : List.of("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GPTFAST_CACHE", NativeLibrary.LIBTORCH_ENV,
                NativeLibrary.VARIANT_ENV, "CUDA_VISIBLE_DEVICES", "GPTFAST_CUDA_GRAPHS", "GPTFAST_DEVICE_SAMPLING",
                "GPTFAST_CUDA_QUANT_MATMUL")) {
            String v = System.getenv(env);
            if (v != null) out.println("env " + env + "=" + v);
        }
        // This report prints what loading would announce on stderr: once, here.
        NativeLibrary.quiet();
        int status = 0;
        try {
            out.println("nvidia driver: " + NativeLibrary.driver());
            out.println("variant: " + NativeLibrary.variantReason());
            // what JavaCPP reads to pick the resource folders it loads from (the choice sets the extension)
            String extension = Loader.loadProperties().getProperty("platform.extension", "");
            out.println("javacpp: platform " + Loader.getPlatform() + ", extension " + (extension.isEmpty() ? "(none)" : extension));
            out.println("natives: " + NativeLibrary.variant() + ", built against libtorch " + NativeLibrary.builtAgainst());
            out.println("libtorch loaded: " + NativeLibrary.loadedTorch());
            for (String line : GptFastNative.runtimeReport().split("\n")) out.println(line);
        } catch (GptFastException e) {
            out.println("natives: NOT USABLE: " + GptFastCli.oneLine(e.getMessage()));
            status = 1;
        }
        try {
            out.println("default model: " + EmbeddedModel.NAME + " at " + EmbeddedModel.checkpoint());
        } catch (GptFastException e) {
            out.println("default model: unavailable: " + GptFastCli.oneLine(e.getMessage()));
            status = 1;
        }
        out.flush();
        return status;
    }

    private static void cpu(PrintWriter out) {
        CpuInfo cpu;
        try {
            cpu = CpuInfo.read();
        } catch (IOException e) {
            out.println("cpu: /proc/cpuinfo unreadable (" + e.getMessage() + ")");
            return;
        }
        out.println("cpu: " + cpu.label());
        StringBuilder features = new StringBuilder();
        for (String f : CPU_FLAGS) features.append(' ').append(f).append(cpu.flags().contains(f) ? "+" : "-");
        out.println("cpu features:" + features);
    }
}
