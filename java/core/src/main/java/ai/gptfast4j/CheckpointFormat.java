package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The checkpoint file formats the native loaders read (told apart natively, by name and magic bytes). */
public enum CheckpointFormat {
    /** GPT-Fast model.pth: torch.save zip of a flat state dict. */
    PTH("pth"),
    /** Hugging Face safetensors, single file or model.safetensors.index.json with shards. */
    SAFETENSORS("safetensors"),
    /** llama2.c .bin, legacy or version 1 header, fp32. */
    LLAMA2C("llama2c");

    final String nativeName;

    CheckpointFormat(String nativeName) {
        this.nativeName = nativeName;
    }

    private static final List<String> DIRECTORY_CANDIDATES =
            List.of("model.pth", "model.safetensors.index.json", "model.safetensors");

    /** A directory stands for the checkpoint file inside it, GPT-Fast or Hugging Face style. */
    public static Path resolveFile(Path checkpoint) {
        if (!Files.exists(checkpoint)) throw new GptFastException("checkpoint not found: " + checkpoint);
        if (!Files.isDirectory(checkpoint)) return checkpoint;
        for (String name : DIRECTORY_CANDIDATES) {
            Path candidate = checkpoint.resolve(name);
            if (Files.isRegularFile(candidate)) return candidate;
        }
        throw new GptFastException("directory " + checkpoint + " holds no checkpoint (looked for "
                + String.join(", ", DIRECTORY_CANDIDATES) + ")");
    }

    /** By name and magic bytes, decided natively (where the loaders live). */
    public static CheckpointFormat detect(Path file) {
        String name;
        try {
            NativeLibrary.load();  // one-line error if the natives are missing or mismatched
            name = GptFastNative.checkpointFormat(file.toString());
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        for (CheckpointFormat f : values()) if (f.nativeName.equals(name)) return f;
        throw new IllegalStateException("unknown native checkpoint format " + name);
    }
}
