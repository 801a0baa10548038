package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes weight-only quantized checkpoints (GPT-Fast's int8 and int4 formats; the formats and the
 * math are owned natively, in linear_weight.h). The same quantization runs at load time with
 * {@link EngineOptions#withQuantize}, so a written file and {@code --quantize} give the same tokens.
 */
public final class Quantization {
    private Quantization() {}

    /** Told after each layer: layers done, layers in all, the layer's name. */
    public interface Progress {
        void layerDone(int done, int total, String layer);
    }

    /**
     * Quantizes {@code checkpoint} (any format {@link Engine#load} reads) as {@code quantize} asks
     * ("int8", "int4" or "int4:G") and writes a torch.save file to {@code output}, or, when that is
     * null, beside the checkpoint under GPT-Fast's name ({@code model_int8.pth},
     * {@code model_int4.g{G}.pth}). Returns the file written.
     */
    public static Path quantize(Path checkpoint, Path config, String quantize, Path output, Progress progress) {
        Path file = CheckpointFormat.resolveFile(checkpoint);
        ModelConfig modelConfig = ConfigResolver.resolve(file, config).config();
        NativeLibrary.load();  // one-line error if the natives are missing or mismatched
        try (GptFastNative.ModelSpec spec = modelConfig.toNative();
             GptFastNative.Quantizer q = new GptFastNative.Quantizer(file.toString(),
                     CheckpointFormat.detect(file).nativeName, spec, quantize)) {
            Path target = output != null ? output : file.toAbsolutePath().getParent().resolve(fileName(q.quantization()));
            if (Files.exists(target) && Files.isSameFile(target, file)) {
                throw new GptFastException("output " + target + " is the checkpoint itself; choose another --output");
            }
            int total = q.layers();
            for (int i = 0; i < total; i++) {
                String layer = q.next();
                if (progress != null) progress.layerDone(i + 1, total, layer);
            }
            q.save(target.toString());
            return target;
        } catch (java.io.IOException e) {
            throw new GptFastException("cannot check output path: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    /** GPT-Fast's file names: model_int8.pth, model_int4.g32.pth, ... */
    static String fileName(String quantization) {
        if (quantization.startsWith("int4:")) return "model_int4.g" + quantization.substring(5) + ".pth";
        return "model_" + quantization + ".pth";
    }
}
