package ai.gptfast4j.natives;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.gptfast4j.natives.VariantChooser.GpuVariant;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU variants the loader finds on a class path: natives folders with cuda=true in their
 * gptfast4j-native.properties, in jars (as Maven packages them, with directory entries) and in
 * directories, whatever their names; the CPU folder, folders whose natives are not CUDA ones and
 * other platforms' folders are not.
 */
class GpuVariantsTest {
    private static final String P = Loader.getPlatform();

    @TempDir Path dir;

    private static String properties(String cuda) {
        return "torch.version=2.10.0\n" + (cuda == null ? "cuda=false\n" : "cuda=true\n" + cuda);
    }

    @Test
    void jarsAndDirectoriesAreListed() throws Exception {
        Path jar = dir.resolve("natives-gpu.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
            for (String folder : List.of("ai/", "ai/gptfast4j/", "ai/gptfast4j/natives/", "ai/gptfast4j/natives/" + P + "-gpu/",
                    "ai/gptfast4j/natives/" + P + "-gpu-cuda14/")) {
                out.putNextEntry(new JarEntry(folder));
                out.closeEntry();
            }
            out.putNextEntry(new JarEntry("ai/gptfast4j/natives/" + P + "-gpu/gptfast4j-native.properties"));
            out.write(properties("cuda.version=13.0\n").getBytes(StandardCharsets.UTF_8));
            out.closeEntry();
            // a name the loader can only know by listing the jar
            out.putNextEntry(new JarEntry("ai/gptfast4j/natives/" + P + "-gpu-cuda14/gptfast4j-native.properties"));
            out.write(properties("cuda.version=14.0\n").getBytes(StandardCharsets.UTF_8));
            out.closeEntry();
        }
        Path classes = dir.resolve("classes");
        write(classes.resolve("ai/gptfast4j/natives/" + P + "/gptfast4j-native.properties"), properties(null));
        write(classes.resolve("ai/gptfast4j/natives/" + P + "-gpu-cuda12/gptfast4j-native.properties"),
                properties("cuda.version = 12.8 \n"));
        write(classes.resolve("ai/gptfast4j/natives/" + P + "-gpu-old/gptfast4j-native.properties"), properties(""));
        // a folder of this platform whose natives are not CUDA ones (cuda=false) is no GPU variant
        write(classes.resolve("ai/gptfast4j/natives/" + P + "-other/gptfast4j-native.properties"), properties(null));
        write(classes.resolve("ai/gptfast4j/natives/other-platform-gpu/gptfast4j-native.properties"),
                properties("cuda.version=13.0\n"));
        try (URLClassLoader cl = new URLClassLoader(new URL[] {jar.toUri().toURL(), classes.toUri().toURL()}, null)) {
            assertEquals(List.of(new GpuVariant(P + "-gpu", "-gpu", "13.0"), new GpuVariant(P + "-gpu-cuda12", "-gpu-cuda12", "12.8"),
                    new GpuVariant(P + "-gpu-cuda14", "-gpu-cuda14", "14.0"), new GpuVariant(P + "-gpu-old", "-gpu-old", null)),
                    NativeLibrary.gpuVariants(cl));
        }
        try (URLClassLoader none = new URLClassLoader(new URL[] {classes.resolve("ai").toUri().toURL()}, null)) {
            assertEquals(List.of(), NativeLibrary.gpuVariants(none));
        }
    }

    private static void write(Path file, String text) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, text);
    }
}
