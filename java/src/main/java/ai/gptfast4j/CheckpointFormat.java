package ai.gptfast4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The checkpoint file formats the native loaders read, told apart by name and magic bytes. */
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

    public static CheckpointFormat detect(Path file) {
        String name = file.getFileName().toString().toLowerCase();
        if (name.endsWith(".safetensors") || name.endsWith(".safetensors.index.json")) return SAFETENSORS;
        byte[] head = new byte[4];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, 4);
        } catch (IOException e) {
            throw new GptFastException("cannot read checkpoint " + file + ": " + e.getMessage(), e);
        }
        if (n == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return PTH;
        if (n == 4 && head[0] == '2' && head[1] == '4' && head[2] == 'k' && head[3] == 'a') return LLAMA2C; // "ak42" LE
        if (name.endsWith(".bin")) return LLAMA2C;
        if (name.endsWith(".pth") || name.endsWith(".pt")) {
            throw new GptFastException("checkpoint " + file + " is not a torch.save zip archive (bad magic)");
        }
        throw new GptFastException("cannot tell the format of checkpoint " + file
                + " (expected .pth, .safetensors, .safetensors.index.json or llama2.c .bin)");
    }
}
