package ai.gptfast4j.cli;

import ai.gptfast4j.GptFastException;
import ai.gptfast4j.Quantization;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = "Write a weight-only int8 or int4 copy of a checkpoint in GPT-Fast's formats "
                + "(default file name: model_int8.pth or model_int4.g{G}.pth beside the checkpoint).")
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "model.pth, *.safetensors, index.json, llama2.c .bin, or a directory")
    Path checkpoint;

    @Option(names = "--config", description = "model config JSON (default: resolved as for generate)")
    Path config;

    @Option(names = "--mode", required = true, description = "int8 or int4")
    String mode;

    @Option(names = "--groupsize", description = "int4 group size: 32, 64, 128 or 256 (default: 128, as GPT-Fast)")
    Integer groupsize;

    @Option(names = "--output", description = "file to write (default: GPT-Fast's name beside the checkpoint)")
    Path output;

    @CommandLine.Mixin QuietOption quiet;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (!mode.equals("int8") && !mode.equals("int4")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--mode must be int8 or int4, got '" + mode + "'");
        }
        if (groupsize != null && mode.equals("int8")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--groupsize applies to --mode int4 only");
        }
        String quantize = groupsize == null ? mode : mode + ":" + groupsize;
        try {  // the native check of the value (group sizes), before the checkpoint is read
            new ai.gptfast4j.EngineOptions(checkpoint, null, null, null, null, 0, 0).withQuantize(quantize, "");
        } catch (GptFastException e) {
            throw GptFastCli.argumentError(spec, e);
        }
        long start = System.nanoTime();
        java.io.PrintWriter err = spec.commandLine().getErr();
        Path written;
        try (ProgressBar bar = new ProgressBar("quantizing", "layers", err, quiet.quiet)) {
            written = Quantization.quantize(checkpoint, config, quantize, output, bar::update);
        }
        err.printf("wrote %s (%.1f MB) in %.1f s%n", written, written.toFile().length() / 1e6,
                (System.nanoTime() - start) / 1e9);
        err.flush();
        System.out.println(written);
        return 0;
    }
}
